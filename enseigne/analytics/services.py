"""Writes of the best-practice gallery: a unit copies a campaign into its drafts; HQ promotes one."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from enseigne.brand.models import LocalVersion, Template
from enseigne.brand.selectors import assets_visible_to_unit
from enseigne.brand.services import local_version_save, template_create
from enseigne.brand.zones import with_defaults
from enseigne.campaigns.models import Campaign
from enseigne.campaigns.services import campaign_create_local
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode, User
from enseigne.network.selectors import root_of


def campaign_values(campaign: Campaign) -> dict:
    """The sending unit's zone values (read for the whole network: the gallery shows them anyway)."""
    with db_scope(ALL):
        version = LocalVersion.objects.filter(pk=campaign.local_version_id).first()
    return dict(version.values) if version else {}


@transaction.atomic
def gallery_copy(*, actor: User, campaign: Campaign, unit: OrgNode) -> Campaign:
    """A draft of ``campaign`` in ``unit``: same template, same wording; pictures the unit
    cannot use (another unit's own) are left for it to choose. No audience nor date is
    copied: the unit chooses them on the draft's edit page. A wording that is not complete
    for this unit (a required zone the original left to head office's defaults, a picture it
    cannot use) still makes a draft: the unit completes it before submitting."""
    access = access_for(actor)
    if not (
        access.can(Capability.CREATE_LOCAL_CAMPAIGNS, unit)
        and access.can(Capability.PERSONALISE_TEMPLATES, unit)
    ):
        raise PermissionDenied
    template = campaign.template
    if not unit.path.startswith(template.shared_path) or template.current is None:
        raise ValidationError(
            _("This campaign's template is not available to %(unit)s.") % {"unit": unit.name}
        )
    values = campaign_values(campaign)
    usable = {str(a.public_id) for a in assets_visible_to_unit(unit)}
    values = {
        k: v
        for k, v in values.items()
        if not isinstance(v, dict) or str(v.get("asset", "")) in usable
    }
    base = campaign.name.split(" · ")[0]
    version = local_version_save(
        actor=actor,
        unit=unit,
        template=template,
        values=values,
        name=_("%(name)s (from %(unit)s)") % {"name": base, "unit": campaign.owner.name},
    )
    return campaign_create_local(
        actor=actor,
        unit=unit,
        channel=campaign.channel,
        name=base,
        template=template,
        local_version=version,
        unfinished_version=True,
    )


@transaction.atomic
def gallery_promote(*, actor: User, campaign: Campaign, rate_text: str = "") -> Template:
    """A network template made from a unit's campaign: its wording becomes the zones' defaults,
    and the description credits the unit."""
    root = root_of(campaign.owner)
    if not access_for(actor).can(Capability.MANAGE_TEMPLATES, root):
        raise PermissionDenied
    version = campaign.template.current
    if version is None:
        raise ValidationError(_("This campaign's template has no published version."))
    source = with_defaults(version.source, campaign_values(campaign), channel=campaign.channel)
    base = campaign.name.split(" · ")[0]
    credit = _("Promoted from the local campaign “%(name)s” of %(unit)s") % {
        "name": campaign.name,
        "unit": campaign.owner.name,
    }
    return template_create(
        actor=actor,
        shared_with=root,
        channel=campaign.channel,
        name=_("%(name)s (idea from %(unit)s)") % {"name": base, "unit": campaign.owner.name},
        source=source,
        subject=version.subject,
        sms_stop=version.sms_stop,
        max_segments=version.max_segments,
        description=f"{credit}{' — ' + rate_text if rate_text else ''}."[:300],
    )
