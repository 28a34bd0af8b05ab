"""Composing the messages: what one unit's messages share, then each recipient's message.

Everything a unit's messages have in common (its approved content, its data, the brand's,
the envelope, the link rewriter) is prepared once per run; per recipient only the
personalisation, the tracked links and the MIME assembly remain.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from liquid import BoundTemplate

from enseigne.brand.models import TemplateVersion
from enseigne.brand.previews import brand_context, unit_context
from enseigne.brand.rendering import Compiled, Personaliser, ZoneData, render_subject, text_template
from enseigne.brand.zones import Zone
from enseigne.campaigns.content import approved_content
from enseigne.campaigns.models import Campaign
from enseigne.contacts.models import Channel
from enseigne.delivery.channels.base import EmailOut, SmsOut
from enseigne.delivery.links import LinkRewriter
from enseigne.delivery.messages import Envelope, bounce_address, build_email, message_id
from enseigne.identity.models import RecordLink
from enseigne.lib.signing import sign_id
from enseigne.network.models import OrgNode
from enseigne.network.selectors import root_of, unit_time_zone
from enseigne.personas.models import Persona, PersonaPerson, PersonaRecord


def _unsubscribe_prefix() -> str:
    return f"{settings.BASE_URL.rstrip('/')}/u/"


def unsubscribe_url(recipient_id: int) -> str:
    return f"{_unsubscribe_prefix()}{sign_id('unsubscribe', recipient_id)}/"


@dataclass
class UnitContent:
    """Everything one unit's messages share, prepared once per run (content is fixed at
    approval, so a run's content does not move under it; the content gate stops the run
    before its next batch when what was approved may no longer be sent)."""

    unit: OrgNode
    version: TemplateVersion
    unit_data: dict
    brand_data: dict
    time_zone: str
    domain: str
    zones: ZoneData
    email: EmailParts | None = None
    sms: SmsParts | None = None


@dataclass
class EmailParts:
    personaliser: Personaliser
    envelope: Envelope
    links: LinkRewriter
    subject: BoundTemplate | None  # the version's subject, parsed once (None: the campaign's name)


@dataclass
class SmsParts:
    sender: str
    body: BoundTemplate


def prepare(campaign: Campaign, unit_id: int) -> UnitContent:
    """What every message of ``campaign`` from this unit shares, built once per run."""
    is_email = campaign.channel == Channel.EMAIL
    unit = OrgNode.objects.select_related("profile").get(pk=unit_id)
    # What was approved (the snapshot, following HQ's newer version where it still fits), never
    # what the unit's version holds now.
    approved = approved_content(campaign, unit)
    version, values = approved.version, approved.values
    root = root_of(unit)
    network = getattr(root, "network", None)
    domain = network.sending_domain if network else "localhost"
    profile = getattr(unit, "profile", None)
    zones = tuple(Zone.from_dict(z) for z in version.zones)
    content = UnitContent(
        unit=unit,
        version=version,
        unit_data=unit_context(unit),
        brand_data=brand_context(unit),
        time_zone=unit_time_zone(unit, network=network),
        domain=domain,
        # Head office's variants per persona are part of the version. The SMS body prints the
        # zones' text, and so may an e-mail's subject (a free message's is its title).
        zones=ZoneData(zones, values, version.variants),
    )
    if is_email:
        compiled = Compiled(html=version.compiled_html, text=version.compiled_text, zones=zones)
        envelope = Envelope.build(
            unit_name=unit.name,
            brand_name=root.name,
            from_address=f"{unit.code}@{domain}",
            reply_to=(profile.email if profile else "") or "",
            list_id=f"{unit.code}.{domain}",
            return_path=f"bounces@{domain}",
        )
        content.email = EmailParts(
            personaliser=Personaliser(compiled, content.zones),
            envelope=envelope,
            # The unsubscribe link stays as it is: it is not a click, and must work on its own.
            links=LinkRewriter(
                campaign_id=campaign.pk,
                unit_id=unit.pk,
                unit_path=unit.path,
                base_url=settings.BASE_URL,
                keep_prefix=_unsubscribe_prefix(),
            ),
            subject=text_template(version.subject) if version.subject else None,
        )
    else:
        content.sms = SmsParts(
            sender=content.brand_data["sms_sender"], body=text_template(version.compiled_text)
        )
    return content


def personas_of(campaign: Campaign, contact_ids: list[int]) -> dict[int, str]:
    """Contact id → the public id of the persona that picks head office's zone variants for
    it, for a whole chunk in one query: the record's own persona, or, for a campaign that
    sends one message a person (national), the person's (a record not linked yet is its own
    person). A contact without one is left out (it gets the usual content)."""
    if not contact_ids:
        return {}
    marks = ", ".join(["%s"] * len(contact_ids))
    persona, by_record = Persona._meta.db_table, PersonaRecord._meta.db_table
    if campaign.is_national:
        by_person, links = PersonaPerson._meta.db_table, RecordLink._meta.db_table
        # The person's row first; a record's own row counts only where it has no person.
        sql = (
            f"SELECT l.contact_id, p.public_id, 0 FROM {links} l "  # noqa: S608
            f"JOIN {by_person} pp ON pp.person_id = l.person_id "
            f"JOIN {persona} p ON p.id = pp.persona_id WHERE l.contact_id IN ({marks}) "
            f"UNION ALL SELECT pp.contact_id, p.public_id, 1 FROM {by_person} pp "
            f"JOIN {persona} p ON p.id = pp.persona_id WHERE pp.contact_id IN ({marks})"
        )
        params = [*contact_ids, *contact_ids]
    else:
        sql = (
            f"SELECT r.contact_id, p.public_id, 0 FROM {by_record} r "  # noqa: S608
            f"JOIN {persona} p ON p.id = r.persona_id WHERE r.contact_id IN ({marks})"
        )
        params = list(contact_ids)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = sorted(cursor.fetchall(), key=lambda row: -row[2])
    # Sorted so that the person's row (rank 0) is written last and wins.
    return {contact: _uuid_text(public_id) for contact, public_id, _rank in rows}


def _uuid_text(value) -> str:
    """A UUID column as text, whichever way the driver returns it (SQLite: 32 hex digits)."""
    return str(uuid.UUID(str(value)))


def message(
    campaign: Campaign, content: UnitContent, row: dict, contact: dict, persona: str | None = None
) -> EmailOut | SmsOut:
    """One ledger row's message, personalised for its contact (``persona``: its persona's
    public id, which picks head office's variants of zones; see ``personas_of``)."""
    person = {
        "first_name": contact["first_name"],
        "last_name": contact["last_name"],
        "email": contact["email"] or "",
        "phone": contact["phone"] or "",
        "language": contact["language"],
        "attributes": contact["attributes"] or {},
    }
    mid = message_id(campaign.pk, row["id"], content.domain)
    unsubscribe = unsubscribe_url(row["id"])
    links = {"unsubscribe": unsubscribe, "preferences": unsubscribe, "view_online": ""}
    data = {
        "contact": person,
        "unit": content.unit_data,
        "brand": content.brand_data,
        "links": links,
    }
    if content.email is not None:
        parts = content.email
        html, text = parts.personaliser.render(**data, persona=persona)
        if settings.TRACK_CLICKS:
            html, text = parts.links.html(html, row["id"]), parts.links.text(text, row["id"])
        if settings.TRACK_OPENS:
            # The pixel names the ledger row only for a person who accepted per-person opens.
            html = parts.links.pixel(html, row["id"] if contact.get("open_tracking") else 0)
        # One line whatever a zone held (encode_word would keep a line break, encoded).
        subject = (
            render_subject(parts.subject, **data, zones=content.zones.text(persona))
            if parts.subject
            else campaign.name
        )
        raw = build_email(
            envelope=parts.envelope,
            to=contact["email"],
            subject=subject,
            html=html,
            text=text,
            message_id=mid,
            unsubscribe_url=links["unsubscribe"],
        )
        return EmailOut(
            recipient_id=row["id"],
            mail_from=bounce_address(row["id"], content.domain),
            to=contact["email"],
            data=raw,
            message_id=mid,
        )
    if content.sms is None:
        raise ValueError(f"campaign {campaign.pk}: no SMS content prepared")
    body = content.sms.body.render(**data, zones=content.zones.text(persona)).strip()
    text = f"{content.sms.sender}: {body} {content.version.sms_stop}".strip()
    return SmsOut(
        recipient_id=row["id"],
        sender=content.sms.sender,
        to=contact["phone"],
        text=text,
        message_id=mid,
    )
