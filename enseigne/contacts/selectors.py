"""Scoped reads of contacts: every query starts from the acting user's scope."""

from __future__ import annotations

import uuid

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import Http404

from enseigne.contacts.models import (
    VALID_CONSENT,
    Contact,
    ContactImport,
    Segment,
    Suppression,
)
from enseigne.contacts.records import export_parts
from enseigne.lib.folding import Fold, fold
from enseigne.lib.hashing import identifier_hash
from enseigne.lib.ids import parse_uuid
from enseigne.network.access import access_for, path_filter
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode, User


def contacts_for_user(user: User) -> QuerySet[Contact]:
    paths = access_for(user).paths_with(Capability.VIEW_CONTACTS)
    # Filter on unit ids rather than LIKE on unit_path: under PostgreSQL row-level
    # security only leakproof operators (integer equality, not LIKE) may drive an index
    # scan, so this is what keeps one unit's queries from scanning the whole network.
    return Contact.objects.filter(_in_units_under(paths))


def _in_units_under(paths) -> Q:
    units = OrgNode.objects.filter(path_filter(paths, "path"), kind=OrgNode.Kind.UNIT)
    return Q(unit__in=units.values("pk"))


def in_subtree(node: OrgNode) -> Q:
    """Contacts of the units under ``node`` (or of ``node`` itself), by unit id (see above)."""
    return _in_units_under([node.path])


def _uuid_or_404(public_id) -> uuid.UUID:
    parsed = parse_uuid(public_id)
    if parsed is None:
        raise Http404("Not found.")
    return parsed


def get_contact_for_user(user: User, public_id, capability: str | None = None) -> Contact:
    """404 when missing or in another unit; 403 when visible but ``capability`` is lacking."""
    contact = (
        contacts_for_user(user)
        .select_related("unit")
        .filter(public_id=_uuid_or_404(public_id))
        .first()
    )
    if contact is None:
        raise Http404("No such contact.")
    if capability and not access_for(user).can(capability, contact.unit):
        raise PermissionDenied
    return contact


def _search_condition(text: str) -> Q:
    """A name matches when each word of the query starts its first or last name, case and
    accents ignored ("dupre" finds "Dupré", "lea dup" finds "Léa Dupont"), or when the
    query starts a name of several words ("de la" finds "de la Tour"). A query written like
    an address ("lea.d", "lea@") also matches addresses from their start, and one of 4
    digits or more the phone numbers that contain them.

    A name search is answered from the folded-name indexes on PostgreSQL; the other kinds
    read the contacts the user may see."""
    folded = " ".join((fold(text) or "").split())
    condition = Q(pk__in=[])
    if any(c.isalpha() for c in folded):
        words = Q()
        for word in folded.split():
            words &= Q(folded_last__prefix=word) | Q(folded_first__prefix=word)
        condition = words
        if " " in folded:  # a name of several words ("de la Tour") typed as it is written
            condition |= Q(folded_last__prefix=folded) | Q(folded_first__prefix=folded)
    if " " not in text and ("@" in text or "." in text):
        condition |= Q(email__startswith=text.lower())
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) >= 4:
        condition |= Q(phone__contains=digits.lstrip("0"))
    return condition


def contact_search(
    user: User,
    *,
    query: str = "",
    unit=None,
    tag: str = "",
    consent: str = "",
) -> QuerySet[Contact]:
    """The contacts list: free-text search plus filters, newest first."""
    contacts = contacts_for_user(user)
    if unit is not None:
        contacts = contacts.filter(in_subtree(unit))
    text = query.strip()
    if text:
        contacts = contacts.alias(
            folded_last=Fold("last_name"), folded_first=Fold("first_name")
        ).filter(_search_condition(text))
    if tag:
        contacts = contacts.filter(tags__name=tag)
    if consent == "email":
        contacts = contacts.filter(email_consent__in=VALID_CONSENT)
    elif consent == "sms":
        contacts = contacts.filter(sms_consent__in=VALID_CONSENT)
    elif consent == "none":
        contacts = contacts.exclude(email_consent__in=VALID_CONSENT).exclude(
            sms_consent__in=VALID_CONSENT
        )
    return contacts.select_related("unit").order_by("-created_at", "-id")


def contact_suppressions(contact: Contact) -> QuerySet[Suppression]:
    hashes = []
    if contact.email:
        hashes.append(identifier_hash("email", contact.email))
    if contact.phone:
        hashes.append(identifier_hash("phone", contact.phone))
    return Suppression.objects.filter(value_hash__in=hashes).filter(
        Q(unit_path="") | Q(unit_path=contact.unit_path)
    )


def contact_data_export(contact: Contact) -> dict:
    """Everything Enseigne holds about one contact (GDPR access and portability)."""
    return {
        "format": "enseigne.contact.v1",
        "id": str(contact.public_id),
        "unit": {"id": str(contact.unit.public_id), "name": contact.unit.name},
        "email": contact.email,
        "phone": contact.phone,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "birthday": contact.birthday.isoformat() if contact.birthday else None,
        "language": contact.language,
        "is_customer": contact.is_customer,
        "attributes": contact.attributes,
        "tags": sorted(t.name for t in contact.tags.all()),
        "consent": {"email": contact.email_consent, "sms": contact.sms_consent},
        "consent_history": [
            {
                "channel": e.channel,
                "purpose": e.purpose,
                "status": e.status,
                "occurred_at": e.occurred_at.isoformat(),
                "source": e.source,
                "source_ref": e.source_ref,
                "wording_version": e.wording_version,
                "ip_address": e.ip_address,
                "user_agent": e.user_agent,
                "confirmed_at": e.confirmed_at.isoformat() if e.confirmed_at else None,
            }
            for e in contact.consent_events.order_by("occurred_at", "id")
        ],
        "suppressions": [
            {
                "channel": s.channel,
                "reason": s.reason,
                "scope": "brand" if not s.unit_path else "unit",
                "created_at": s.created_at.isoformat(),
            }
            for s in contact_suppressions(contact)
        ],
        "created_at": contact.created_at.isoformat(),
        "updated_at": contact.updated_at.isoformat(),
        # Purchases, messages sent and what they did: held by later apps (records.py).
        **export_parts(contact),
    }


def imports_for_user(user: User) -> QuerySet[ContactImport]:
    paths = access_for(user).paths_with(Capability.IMPORT_CONTACTS)
    return ContactImport.objects.filter(path_filter(paths)).select_related("unit", "created_by")


def get_import_for_user(user: User, public_id) -> ContactImport:
    found = imports_for_user(user).filter(public_id=_uuid_or_404(public_id)).first()
    if found is None:
        # A visible-but-not-importing role gets 404 too: imports are not listed for it.
        raise Http404("No such import.")
    return found


def segments_for_user(user: User) -> QuerySet[Segment]:
    paths = access_for(user).paths_with(Capability.VIEW_CONTACTS)
    return Segment.objects.filter(path_filter(paths)).select_related("owner")


def get_segment_for_user(user: User, public_id, capability: str | None = None) -> Segment:
    segment = segments_for_user(user).filter(public_id=_uuid_or_404(public_id)).first()
    if segment is None:
        raise Http404("No such segment.")
    if capability and not access_for(user).can(capability, segment.owner):
        raise PermissionDenied
    return segment


def unit_contact_counts(user: User, units) -> dict[int, int]:
    """Contacts per unit id, for the units given, within the user's scope."""
    rows = contacts_for_user(user).filter(unit__in=units).values("unit_id").annotate(n=Count("id"))
    return {row["unit_id"]: row["n"] for row in rows}


def unit_contact_stats(user: User, unit) -> dict:
    contacts = contacts_for_user(user).filter(unit=unit)
    stats = contacts.aggregate(
        total=Count("id"),
        email_ok=Count("id", filter=Q(email_consent__in=VALID_CONSENT)),
        sms_ok=Count("id", filter=Q(sms_consent__in=VALID_CONSENT)),
    )
    stats["recent_imports"] = list(imports_for_user(user).filter(unit=unit)[:5])
    stats["segments"] = list(segments_for_user(user).filter(owner=unit)[:5])
    return stats
