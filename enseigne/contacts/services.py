"""Writes to contacts and their consent ledger. The ledger is append-only."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from enseigne.contacts.models import (
    Channel,
    ConsentEvent,
    ConsentStatus,
    Contact,
    ContactTagging,
    CustomAttribute,
    Segment,
    Suppression,
    Tag,
)
from enseigne.contacts.records import record_of, records_changed, records_erased, records_written
from enseigne.contacts.segments import compile_rules
from enseigne.contacts.validation import (
    FieldError,
    clean_attribute,
    clean_birthday,
    clean_email,
    clean_language,
    clean_phone,
)
from enseigne.lib.hashing import identifier_hash
from enseigne.lib.rowsecurity import erase_consent_events
from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode, User
from enseigne.network.services import audit

EDITABLE_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "birthday",
    "language",
    "is_customer",
)


def _require(actor: User | None, capability: str, unit: OrgNode) -> None:
    if actor is not None and not access_for(actor).can(capability, unit):
        raise PermissionDenied


def unit_country(unit: OrgNode) -> str:
    profile = getattr(unit, "profile", None)
    return profile.country if profile else "FR"


def clean_contact_data(data: dict, *, country: str) -> dict:
    """Validate what a form or API sends; errors name the field."""
    cleaned: dict = {}
    errors: dict[str, str] = {}
    cleaners = {
        "email": clean_email,
        "phone": lambda v: clean_phone(v, country),
        "birthday": clean_birthday,
        "language": clean_language,
    }
    for field in EDITABLE_FIELDS:
        if field not in data:
            continue
        value = data[field]
        if field == "is_customer":
            cleaned[field] = bool(value)
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            cleaned[field] = None if field in {"email", "phone", "birthday"} else ""
            continue
        if isinstance(value, dt.date) and field == "birthday":
            cleaned[field] = value
            continue
        try:
            cleaned[field] = (
                cleaners[field](str(value)) if field in cleaners else str(value).strip()[:100]
            )
        except FieldError as exc:
            errors[field] = str(exc)
    if "attributes" in data:
        declared = {a.key: a for a in CustomAttribute.objects.all()}
        attributes = {}
        for key, value in (data["attributes"] or {}).items():
            if key not in declared:
                errors[f"attributes.{key}"] = "HQ has not declared this attribute"
                continue
            if value in (None, ""):
                continue
            try:
                attributes[key] = clean_attribute(declared[key], str(value))
            except FieldError as exc:
                errors[f"attributes.{key}"] = str(exc)
        cleaned["attributes"] = attributes
    if errors:
        raise ValidationError(errors)
    return cleaned


def erased_hashes(unit: OrgNode, hashes: list[str]) -> set[str]:
    return set(
        Suppression.objects.filter(
            unit_path=unit.path, reason=Suppression.Reason.ERASURE, value_hash__in=hashes
        ).values_list("value_hash", flat=True)
    )


def _refuse_erased(unit: OrgNode, email: str | None, phone: str | None) -> None:
    hashes = {}
    if email:
        hashes[identifier_hash("email", email)] = "email"
    if phone:
        hashes[identifier_hash("phone", phone)] = "phone"
    for value_hash in erased_hashes(unit, list(hashes)):
        raise ValidationError(
            {
                hashes[value_hash]: _(
                    "This person asked to be erased from this unit; they cannot be added again."
                )
            }
        )


@transaction.atomic
def contact_create(
    *,
    actor: User | None,
    unit: OrgNode,
    data: dict,
    tags: list[str] | None = None,
    consents: dict[str, str] | None = None,
    consent_source: str = ConsentEvent.Source.STAFF,
    consent_wording: str = "",
    source_ref: str = "",
) -> Contact:
    _require(actor, Capability.EDIT_CONTACTS, unit)
    if unit.kind != OrgNode.Kind.UNIT:
        raise ValidationError(
            {"unit": _("Contacts belong to a unit, not to a region or the network.")}
        )
    cleaned = clean_contact_data(data, country=unit_country(unit))
    if not cleaned.get("email") and not cleaned.get("phone"):
        raise ValidationError({"email": _("Give at least an email address or a phone number.")})
    _refuse_erased(unit, cleaned.get("email"), cleaned.get("phone"))
    contact = Contact(unit=unit, unit_path=unit.path, **cleaned)
    try:
        with transaction.atomic():
            contact.save()
    except IntegrityError:
        raise ValidationError(
            {"email": _("A contact with this email or phone already exists in this unit.")}
        ) from None
    records_written([record_of(contact)])
    if tags:
        contact_set_tags(contact=contact, tags=tags)
    for channel, status in (consents or {}).items():
        consent_record(
            actor=actor,
            contact=contact,
            channel=channel,
            status=status,
            source=consent_source,
            wording_version=consent_wording,
            source_ref=source_ref,
        )
    audit(actor=actor, action="contact.create", target=contact, node_path=unit.path)
    return contact


@transaction.atomic
def contact_update(
    *, actor: User | None, contact: Contact, data: dict, tags: list[str] | None = None
) -> Contact:
    _require(actor, Capability.EDIT_CONTACTS, contact.unit)
    cleaned = clean_contact_data(data, country=unit_country(contact.unit))
    email = cleaned.get("email", contact.email)
    phone = cleaned.get("phone", contact.phone)
    if not email and not phone:
        raise ValidationError({"email": _("Give at least an email address or a phone number.")})
    changed = [f for f, v in cleaned.items() if getattr(contact, f) != v]
    if "email" in changed or "phone" in changed:
        _refuse_erased(
            contact.unit,
            email if "email" in changed else None,
            phone if "phone" in changed else None,
        )
    for field in changed:
        setattr(contact, field, cleaned[field])
    if changed:
        try:
            with transaction.atomic():
                contact.save(update_fields=[*changed, "updated_at"])
        except IntegrityError:
            raise ValidationError(
                {"email": _("Another contact of this unit already has this email or phone.")}
            ) from None
        if {"email", "phone", "birthday"} & set(changed):
            records_changed([record_of(contact)])
    if tags is not None:
        contact_set_tags(contact=contact, tags=tags)
        changed.append("tags")
    if changed:
        # Field names only: the audit log never holds personal data.
        audit(
            actor=actor,
            action="contact.update",
            target=contact,
            node_path=contact.unit_path,
            changes={"fields": changed},
        )
    return contact


def tags_get_or_create(names: list[str]) -> list[Tag]:
    clean = sorted({n.strip().lower()[:50] for n in names if n and n.strip()})
    existing = {t.name: t for t in Tag.objects.filter(name__in=clean)}
    missing = [Tag(name=n) for n in clean if n not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {t.name: t for t in Tag.objects.filter(name__in=clean)}
    return [existing[n] for n in clean]


@transaction.atomic
def contact_set_tags(*, contact: Contact, tags: list[str]) -> None:
    wanted = {t.pk: t for t in tags_get_or_create(tags)}
    ContactTagging.objects.filter(contact=contact).exclude(tag_id__in=list(wanted)).delete()
    ContactTagging.objects.bulk_create(
        [ContactTagging(contact=contact, tag_id=pk, unit_path=contact.unit_path) for pk in wanted],
        ignore_conflicts=True,
    )


@transaction.atomic
def consent_record(
    *,
    actor: User | None,
    contact: Contact,
    channel: str,
    status: str,
    source: str,
    occurred_at: dt.datetime | None = None,
    wording_version: str = "",
    source_ref: str = "",
    ip_address: str | None = None,
    user_agent: str = "",
    confirmed_at: dt.datetime | None = None,
) -> ConsentEvent:
    """Append a consent event and bring the contact's current status in step with it."""
    if channel not in Channel.values:
        raise ValidationError({"channel": _("Unknown channel %(value)r.") % {"value": channel}})
    if status not in ConsentStatus.values or status == ConsentStatus.NONE:
        raise ValidationError(
            {"status": _("Unknown consent status %(value)r.") % {"value": status}}
        )
    if source not in ConsentEvent.Source.values:
        raise ValidationError(
            {"source": _("Unknown consent source %(value)r.") % {"value": source}}
        )
    if status == ConsentStatus.SOFT_OPT_IN and not contact.is_customer:
        raise ValidationError(
            {"status": _("Soft opt-in is only for existing customers (a real purchase).")}
        )
    address = contact.email if channel == Channel.EMAIL else contact.phone
    if not address:
        raise ValidationError(
            {
                "channel": _("This contact has no email address to consent for.")
                if channel == Channel.EMAIL
                else _("This contact has no phone number to consent for.")
            }
        )
    event = ConsentEvent.objects.create(
        contact=contact,
        unit_path=contact.unit_path,
        channel=channel,
        status=status,
        occurred_at=occurred_at or timezone.now(),
        source=source,
        source_ref=source_ref[:128],
        wording_version=wording_version,
        ip_address=ip_address,
        user_agent=user_agent[:300],
        confirmed_at=confirmed_at,
        recorded_by=actor,
    )
    field = "email_consent" if channel == Channel.EMAIL else "sms_consent"
    Contact.objects.filter(pk=contact.pk).update(**{field: status})
    setattr(contact, field, status)
    kind = "email" if channel == Channel.EMAIL else "phone"
    value_hash = identifier_hash(kind, address)
    if status == ConsentStatus.WITHDRAWN:
        Suppression.objects.get_or_create(
            unit_path=contact.unit_path,
            channel=channel,
            value_hash=value_hash,
            defaults={"unit": contact.unit, "reason": Suppression.Reason.UNSUBSCRIBE},
        )
    elif source != ConsentEvent.Source.IMPORT:
        # A fresh, explicit opt-in lifts this unit's earlier unsubscribe (never a bounce,
        # a complaint or an erasure, and never through a file import).
        Suppression.objects.filter(
            unit_path=contact.unit_path,
            channel=channel,
            value_hash=value_hash,
            reason=Suppression.Reason.UNSUBSCRIBE,
        ).delete()
    return event


def consent_withdraw_all(
    contacts,
    *,
    channel: str,
    source: str,
    source_ref: str = "",
    ip_address: str | None = None,
    user_agent: str = "",
) -> int:
    """Withdraw ``channel`` for each of ``contacts`` not withdrawn yet; returns how many changed."""
    changed = 0
    for contact in contacts:
        if contact.consent_for(channel) != ConsentStatus.WITHDRAWN:
            consent_record(
                actor=None,
                contact=contact,
                channel=channel,
                status=ConsentStatus.WITHDRAWN,
                source=source,
                source_ref=source_ref,
                ip_address=ip_address,
                user_agent=user_agent,
            )
            changed += 1
    return changed


OPEN_TRACKING = "open_tracking"


@transaction.atomic
def open_tracking_record(
    *,
    contact: Contact,
    granted: bool,
    source: str,
    source_ref: str = "",
    ip_address: str | None = None,
    user_agent: str = "",
) -> ConsentEvent | None:
    """Record the person's choice about per-person open tracking (a ledger event with its proof)."""
    if contact.open_tracking == granted or not contact.email:
        return None
    event = ConsentEvent.objects.create(
        contact=contact,
        unit_path=contact.unit_path,
        channel=Channel.EMAIL,
        purpose=OPEN_TRACKING,
        status=ConsentStatus.GRANTED if granted else ConsentStatus.WITHDRAWN,
        occurred_at=timezone.now(),
        source=source,
        source_ref=source_ref[:128],
        ip_address=ip_address,
        user_agent=user_agent[:300],
    )
    Contact.objects.filter(pk=contact.pk).update(open_tracking=granted)
    contact.open_tracking = granted
    return event


def suppress_brand_wide(*, channel: str, address: str, reason: str) -> None:
    """Never send to ``address`` on ``channel`` again, from any unit (a hard bounce, a
    complaint); only its hash is kept. Idempotent."""
    kind = "email" if channel == Channel.EMAIL else "phone"
    Suppression.objects.get_or_create(
        unit_path="",
        channel=channel,
        value_hash=identifier_hash(kind, address),
        defaults={"reason": reason},
    )


@transaction.atomic
def contact_erase(*, actor: User, contact: Contact) -> None:
    """GDPR erasure: the person's data goes; a hash stays so no import brings them back."""
    _require(actor, Capability.ERASE_CONTACTS, contact.unit)
    for kind, channel, value in (
        ("email", Channel.EMAIL, contact.email),
        ("phone", Channel.SMS, contact.phone),
    ):
        if not value:
            continue
        Suppression.objects.update_or_create(
            unit_path=contact.unit_path,
            channel=channel,
            value_hash=identifier_hash(kind, value),
            defaults={"unit": contact.unit, "reason": Suppression.Reason.ERASURE},
        )
    public_id = contact.public_id
    unit_path = contact.unit_path
    # The consent ledger is append-only for the app role: its events go through the owner
    # function, first, and only with the contact (they name a person; proof is not needed
    # once the person is gone, the hashed suppression blocks them).
    if erase_consent_events(contact.pk) is None:
        ConsentEvent.objects.filter(contact=contact).delete()
    # Rows other apps keep about the record out of this scope's sight (HQ's review queue).
    records_erased([contact.pk])
    contact.delete()
    audit(
        actor=actor,
        action="contact.erase",
        target_type="contact",
        target_id=str(public_id),
        node_path=unit_path,
    )


@transaction.atomic
def segment_save(
    *,
    actor: User,
    owner: OrgNode,
    name: str,
    rules,
    description: str = "",
    segment=None,
):
    """Create or update a saved segment after validating its rules."""
    _require(actor, Capability.MANAGE_SEGMENTS, owner)
    if not name.strip():
        raise ValidationError({"name": _("Give the segment a name.")})
    compile_rules(actor, rules)
    if segment is None:
        segment = Segment.objects.create(
            owner=owner,
            unit_path=owner.path,
            name=name.strip()[:150],
            description=description[:300],
            rules=rules,
            created_by=actor,
        )
        audit(actor=actor, action="segment.create", target=segment, node_path=owner.path)
    else:
        segment.name, segment.description, segment.rules = (
            name.strip()[:150],
            description[:300],
            rules,
        )
        segment.save(update_fields=["name", "description", "rules", "updated_at"])
        audit(actor=actor, action="segment.update", target=segment, node_path=owner.path)
    return segment


@transaction.atomic
def segment_delete(*, actor: User, segment) -> None:
    _require(actor, Capability.MANAGE_SEGMENTS, segment.owner)
    audit(actor=actor, action="segment.delete", target=segment, node_path=segment.unit_path)
    segment.delete()


def export_recorded(*, actor: User, count: int, contact: Contact | None = None) -> None:
    """Exports of personal data are audited (who, how many, never what)."""
    if contact is not None:
        audit(actor=actor, action="contact.export", target=contact, node_path=contact.unit_path)
    else:
        # Filed under the exporter's own scope: the audit log is unit-owned (row-level
        # security), and a unit writes lines only at its own paths.
        paths = access_for(actor).paths
        audit(
            actor=actor,
            action="contacts.export",
            target_type="contacts",
            target_id="list",
            node_path=paths[0] if paths else "",
            changes={"count": count, "scope": list(paths)} if len(paths) > 1 else {"count": count},
        )
