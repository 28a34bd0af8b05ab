"""Free messages: a unit writes its own words inside Enseigne's frame of the brand.

Where the permission tree allows it (``create_free_campaigns``), a unit may write a
campaign without an HQ template. Its text still goes through everything a local version
goes through: the zones store it as data (never template source), the network's
guardrails check it, the campaign needs approval unless the writer may send without.
What the unit cannot write is the frame: the brand's logo, the unit's identity and
address, the legal footer and the unsubscribe link (e-mail), the sender and HQ's STOP
mention (SMS).

Each (unit, channel) has one frame, a ``Template`` with ``is_free`` shared with that unit
only; each message the unit writes is a ``LocalVersion`` of it, so the zone editor, its
live preview, the SMS length counter and the send pipeline are the ones HQ templates use.
The frame's fixed words are in the language of the person who first opened it.
"""

from __future__ import annotations

import html

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from enseigne.brand.models import Template, TemplateVersion
from enseigne.brand.services import compiled_version_fields
from enseigne.contacts.models import Channel
from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode, User
from enseigne.network.services import audit

# The subject is the headline the unit writes (a zone value: data, like in the body).
EMAIL_SUBJECT = "{{ zones.headline }}"


def _labels() -> dict[str, str]:
    """The zone labels the editor shows, in the writer's language (attribute-escaped)."""
    labels = {
        "picture": _("Picture"),
        "headline": _("Title (also the e-mail's subject)"),
        "message": _("Your message"),
        "offer": _("Offer (optional)"),
    }
    return {key: html.escape(label, quote=True) for key, label in labels.items()}


def _email_source() -> str:
    hello, unsubscribe, label = _("Hello"), _("Unsubscribe"), _labels()
    return f"""<mjml>
  <mj-head><mj-attributes><mj-all font-family="Helvetica, Arial, sans-serif" /></mj-attributes></mj-head>
  <mj-body background-color="#f4f4f4">
    <mj-section background-color="#ffffff"><mj-column>
      <mj-text align="center">{{% if brand.logo_url %}}<img src="{{{{ brand.logo_url }}}}" alt="{{{{ brand.name }}}}" style="display:block;margin:0 auto;max-width:200px;height:auto;border:0">{{% else %}}<strong style="font-size:20px">{{{{ brand.name }}}}</strong>{{% endif %}}</mj-text>
      <ens-zone name="picture" kind="image" label="{label["picture"]}" upload="true" />
      <mj-text font-size="24px" color="#222222"><ens-zone name="headline" kind="text" max="90" label="{label["headline"]}" required="true"></ens-zone></mj-text>
      <mj-text font-size="15px" line-height="1.5">{hello}{{% if contact.first_name %}} {{{{ contact.first_name }}}}{{% endif %}},</mj-text>
      <mj-text font-size="15px" line-height="1.5"><ens-zone name="message" kind="rich" max="3000" label="{label["message"]}" required="true"></ens-zone></mj-text>
      <ens-zone name="offer" kind="offer" label="{label["offer"]}" />
    </mj-column></mj-section>
    <mj-section><mj-column>
      <mj-text font-size="12px" color="#555555" line-height="1.5">{{{{ unit.name }}}} · {{{{ unit.address }}}} · {{{{ unit.phone }}}}<br/>{{{{ brand.legal_footer }}}}<br/><a href="{{{{ links.unsubscribe }}}}">{unsubscribe}</a></mj-text>
    </mj-column></mj-section>
  </mj-body>
</mjml>
"""


def _sms_source() -> str:
    return f'<ens-zone name="message" kind="text" max="300" label="{_labels()["message"]}" required="true"></ens-zone>'


def hq_stop_mention(unit: OrgNode) -> str:
    """The STOP mention of head office's newest SMS template: the number HQ declared."""
    root_path = unit.path[: OrgNode.steplen]
    version = (
        TemplateVersion.objects.filter(
            template__channel=Channel.SMS,
            template__is_free=False,
            template__shared_path__startswith=root_path,
        )
        .exclude(sms_stop="")
        .order_by("-created_at")
        .first()
    )
    if version is None:
        raise ValidationError(
            _(
                "Head office has not published an SMS template yet, so its STOP mention is not "
                "known; a free SMS cannot be written before that."
            )
        )
    return version.sms_stop


def can_write_free(user: User, unit: OrgNode) -> bool:
    return unit.kind == OrgNode.Kind.UNIT and access_for(user).can(
        Capability.CREATE_FREE_CAMPAIGNS, unit
    )


def free_frame(*, actor: User, unit: OrgNode, channel: str) -> Template:
    """The unit's free frame for ``channel``, created the first time someone allowed asks."""
    if not can_write_free(actor, unit):
        raise PermissionDenied
    if channel not in Channel.values:
        raise ValidationError({"channel": _("Unknown channel.")})
    existing = Template.objects.filter(is_free=True, shared_path=unit.path, channel=channel).first()
    if existing is not None:
        return existing
    if channel == Channel.SMS:
        source, subject, stop = _sms_source(), "", hq_stop_mention(unit)
    else:
        source, subject, stop = _email_source(), EMAIL_SUBJECT, ""
    fields = compiled_version_fields(channel, source, sms_stop=stop)
    with transaction.atomic():
        frame = Template.objects.create(
            channel=channel,
            name=_("Free message – %(unit)s") % {"unit": unit.name},
            shared_path=unit.path,
            is_free=True,
            description=_("Your own text in the brand's frame."),
        )
        version = TemplateVersion.objects.create(
            template=frame,
            number=1,
            source=source,
            subject=subject,
            sms_stop=stop,
            max_segments=2,
            created_by=actor,
            **fields,
        )
        frame.current = version
        frame.save(update_fields=["current"])
    audit(
        actor=actor,
        action="template.free_frame",
        target=frame,
        node_path=unit.path,
        changes={"channel": channel},
    )
    return frame
