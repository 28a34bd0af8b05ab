"""CSV import engine: validate, deduplicate within the unit, write in batches.

Each batch commits on its own, so progress is visible and a crashed import can simply be
run again: rows already written match their contact and create nothing. Existing
contacts are never damaged: only their empty fields are filled, tags are added, and
consent from a file is recorded only where the contact has no consent history for that
channel (an import never overrides an unsubscribe).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from enseigne.contacts.models import (
    Channel,
    ConsentEvent,
    ConsentStatus,
    Contact,
    ContactImport,
    ContactTagging,
    CustomAttribute,
    ImportRejection,
    Suppression,
)
from enseigne.contacts.services import tags_get_or_create, unit_country
from enseigne.contacts.validation import (
    FieldError,
    clean_attribute,
    clean_birthday,
    clean_boolean,
    clean_email,
    clean_language,
    clean_phone,
)
from enseigne.lib.hashing import identifier_hash
from enseigne.lib.rowsecurity import ALL, db_scope

BASE_TARGETS = (
    "email", "phone", "first_name", "last_name", "birthday", "language", "is_customer",
    "tags", "consent_email", "consent_sms",
)
FILL_FIELDS = ("email", "phone", "first_name", "last_name", "birthday", "language")


def import_targets() -> list[str]:
    return [*BASE_TARGETS, *(f"attributes.{k}" for k in CustomAttribute.objects.values_list("key", flat=True))]


_GUESSES = {
    "email": {"email", "e-mail", "mail", "courriel", "adresse email", "adresse e-mail"},
    "phone": {"phone", "mobile", "telephone", "téléphone", "tel", "tél", "portable", "gsm"},
    "first_name": {"first_name", "firstname", "first name", "prenom", "prénom"},
    "last_name": {"last_name", "lastname", "last name", "nom", "name", "surname"},
    "birthday": {"birthday", "birthdate", "date de naissance", "naissance", "anniversaire"},
    "language": {"language", "langue", "lang"},
    "is_customer": {"customer", "client", "is_customer"},
    "tags": {"tags", "étiquettes", "etiquettes"},
    "consent_email": {"optin_email", "opt-in email", "consent_email", "consentement email"},
    "consent_sms": {"optin_sms", "opt-in sms", "consent_sms", "consentement sms"},
}


def guess_mapping(columns: list[str]) -> dict[str, str]:
    mapping = {}
    targets = import_targets()
    for column in columns:
        key = column.strip().lower()
        for target, names in _GUESSES.items():
            if key in names and target not in mapping.values():
                mapping[column] = target
                break
        else:
            if f"attributes.{key}" in targets:
                mapping[column] = f"attributes.{key}"
    return mapping


def sniff_separator(header_line: str) -> str:
    return max((";", ",", "\t", "|"), key=header_line.count)


def read_frame(path: str | Path, columns: list[str] | None = None) -> pl.DataFrame:
    """The file as strings only: nothing is guessed, every value is validated by us."""
    with open(path, encoding="utf-8") as handle:
        header = handle.readline()
    return pl.read_csv(
        path,
        separator=sniff_separator(header),
        infer_schema=False,
        columns=columns,
        truncate_ragged_lines=True,
        raise_if_empty=False,
    )


@dataclass
class Row:
    number: int
    values: dict = field(default_factory=dict)
    attributes: dict = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    consent: dict[str, bool] = field(default_factory=dict)
    matched: int | None = None
    created: bool = False


@dataclass
class BatchResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejections: list[ImportRejection] = field(default_factory=list)


class RowValidator:
    def __init__(self, contact_import: ContactImport):
        self.mapping = {c: t for c, t in contact_import.mapping.items() if t}
        self.country = unit_country(contact_import.unit)
        keys = [t.split(".", 1)[1] for t in self.mapping.values() if t.startswith("attributes.")]
        self.attributes = {a.key: a for a in CustomAttribute.objects.filter(key__in=keys)}

    def validate(self, number: int, raw: dict) -> tuple[Row | None, list[tuple[str, str, str]]]:
        row = Row(number=number)
        errors: list[tuple[str, str, str]] = []
        for column, target in self.mapping.items():
            value = raw.get(column) or ""
            value = value.strip()
            if not value:
                continue
            try:
                if target == "email":
                    row.values["email"] = clean_email(value)
                elif target == "phone":
                    row.values["phone"] = clean_phone(value, self.country)
                elif target in {"first_name", "last_name"}:
                    row.values[target] = value[:100]
                elif target == "birthday":
                    row.values["birthday"] = clean_birthday(value)
                elif target == "language":
                    row.values["language"] = clean_language(value)
                elif target == "is_customer":
                    row.values["is_customer"] = clean_boolean(value)
                elif target == "tags":
                    row.tags = [t for t in (p.strip().lower()[:50] for p in value.replace(";", ",").split(",")) if t]
                elif target in {"consent_email", "consent_sms"}:
                    row.consent[target.removeprefix("consent_")] = clean_boolean(value)
                elif target.startswith("attributes."):
                    key = target.split(".", 1)[1]
                    row.attributes[key] = clean_attribute(self.attributes[key], value)
            except FieldError as exc:
                errors.append((column, value[:200], str(exc)))
        if not errors and not row.values.get("email") and not row.values.get("phone"):
            errors.append(("", "", "no email address and no phone number: nothing to contact"))
        return (None if errors else row), errors


def _new_rejection(contact_import: ContactImport, number: int, column: str, value: str, reason: str):
    return ImportRejection(
        contact_import=contact_import, unit_path=contact_import.unit_path, row_number=number,
        field=column[:60], value=value[:200], reason=reason[:300],
    )


class BatchWriter:
    """Writes one batch of valid rows for one unit, in one transaction."""

    def __init__(self, contact_import: ContactImport):
        self.imp = contact_import
        self.unit = contact_import.unit
        self.source_ref = f"import:{contact_import.public_id} sha256:{contact_import.file_sha256}"
        self.declared_consent = set(contact_import.consent_channels or [])
        self.import_tags = list(contact_import.tag_names or [])

    def write(self, rows: list[Row]) -> BatchResult:
        result = BatchResult()
        rows = self._drop_erased(rows, result)
        emails = {r.values["email"] for r in rows if r.values.get("email")}
        phones = {r.values["phone"] for r in rows if r.values.get("phone")}
        existing = Contact.objects.filter(unit=self.unit).filter(
            _in("email", emails) | _in("phone", phones)
        )
        by_email: dict[str, Contact] = {}
        by_phone: dict[str, Contact] = {}
        for contact in existing:
            if contact.email:
                by_email[contact.email] = contact
            if contact.phone:
                by_phone[contact.phone] = contact
        new: list[tuple[Contact, Row]] = []
        touched: dict[int, Contact] = {}
        changed_fields: set[str] = set()
        consent_rows: list[tuple[Contact, Row]] = []
        for row in rows:
            email, phone = row.values.get("email"), row.values.get("phone")
            match_email = by_email.get(email) if email else None
            match_phone = by_phone.get(phone) if phone else None
            if match_email and match_phone and match_email is not match_phone:
                result.rejections.append(_new_rejection(
                    self.imp, row.number, "phone", "",
                    "the email belongs to one contact and the phone number to another; fix the file or merge them first",
                ))
                continue
            contact = match_email or match_phone
            if contact is None:
                contact = Contact(
                    unit=self.unit, unit_path=self.unit.path, source_import=self.imp,
                    attributes=row.attributes, **row.values,
                )
                new.append((contact, row))
                row.created = True
                if email:
                    by_email[email] = contact
                if phone:
                    by_phone[phone] = contact
                consent_rows.append((contact, row))
                continue
            fields = self._fill_blanks(contact, row)
            if contact.pk is None:
                # A second row for a contact this batch creates: merged in memory.
                consent_rows.append((contact, row))
                continue
            if fields:
                changed_fields.update(fields)
                touched[contact.pk] = contact
                if email and contact.email == email:
                    by_email[email] = contact
                if phone and contact.phone == phone:
                    by_phone[phone] = contact
            consent_rows.append((contact, row))
            row.matched = contact.pk
        created = Contact.objects.bulk_create([c for c, _ in new], batch_size=2000)
        result.created = len(created)
        if touched:
            Contact.objects.bulk_update(list(touched.values()), [*changed_fields, "updated_at"], batch_size=1000)
        tag_changes = self._write_tags(consent_rows)
        consent_changes = self._write_consent(consent_rows)
        # Every valid row is counted once: created, updated (the first row that changed an
        # existing contact) or unchanged (nothing new, including a repeat within the file).
        counted: set[int] = set()
        for contact, row in consent_rows:
            if row.created:
                counted.add(contact.pk)
                continue
            changed = contact.pk in touched or contact.pk in tag_changes or contact.pk in consent_changes
            if row.matched is not None and changed and contact.pk not in counted:
                result.updated += 1
            else:
                result.unchanged += 1
            counted.add(contact.pk)
        return result

    def _drop_erased(self, rows: list[Row], result: BatchResult) -> list[Row]:
        hashes = {}
        for row in rows:
            if row.values.get("email"):
                hashes[identifier_hash("email", row.values["email"])] = row
            if row.values.get("phone"):
                hashes[identifier_hash("phone", row.values["phone"])] = row
        if not hashes:
            return rows
        erased = set(
            Suppression.objects.filter(
                unit_path=self.unit.path, reason=Suppression.Reason.ERASURE,
                value_hash__in=list(hashes),
            ).values_list("value_hash", flat=True)
        )
        refused = {id(hashes[h]) for h in erased}
        for row in rows:
            if id(row) in refused:
                result.rejections.append(_new_rejection(
                    self.imp, row.number, "", "",
                    "this person asked to be erased from this unit (GDPR); they cannot be imported again",
                ))
        return [r for r in rows if id(r) not in refused]

    @staticmethod
    def _fill_blanks(contact: Contact, row: Row) -> list[str]:
        fields = []
        for name in FILL_FIELDS:
            value = row.values.get(name)
            if value and not getattr(contact, name):
                setattr(contact, name, value)
                fields.append(name)
        if row.values.get("is_customer") and not contact.is_customer:
            contact.is_customer = True
            fields.append("is_customer")
        missing = {k: v for k, v in row.attributes.items() if k not in contact.attributes}
        if missing:
            contact.attributes = {**contact.attributes, **missing}
            fields.append("attributes")
        return fields

    def _write_tags(self, pairs: list[tuple[Contact, Row]]) -> set[int]:
        names = set(self.import_tags)
        for _, row in pairs:
            names.update(row.tags)
        if not names:
            return set()
        tag_ids = {t.name: t.pk for t in tags_get_or_create(sorted(names))}
        wanted = {}
        for contact, row in pairs:
            for name in {*self.import_tags, *row.tags}:
                wanted[(contact.pk, tag_ids[name])] = contact
        existing = set(
            ContactTagging.objects.filter(
                contact_id__in={c.pk for c, _ in pairs}, tag_id__in=list(tag_ids.values())
            ).values_list("contact_id", "tag_id")
        )
        missing = [key for key in wanted if key not in existing]
        ContactTagging.objects.bulk_create(
            [ContactTagging(contact_id=c, tag_id=t, unit_path=self.unit.path) for c, t in missing],
            batch_size=2000, ignore_conflicts=True,
        )
        return {c for c, _ in missing}

    def _write_consent(self, pairs: list[tuple[Contact, Row]]) -> set[int]:
        now = timezone.now()
        events: list[ConsentEvent] = []
        updates: dict[str, list[int]] = {"email": [], "sms": []}
        for contact, row in pairs:
            for channel in (Channel.EMAIL, Channel.SMS):
                wants = row.consent.get(channel, channel in self.declared_consent)
                address = contact.email if channel == Channel.EMAIL else contact.phone
                if not wants or not address or contact.consent_for(channel) != ConsentStatus.NONE:
                    continue
                events.append(ConsentEvent(
                    contact=contact, unit_path=self.unit.path, channel=channel,
                    status=ConsentStatus.GRANTED, occurred_at=now, source=ConsentEvent.Source.IMPORT,
                    source_ref=self.source_ref, wording_version=self.imp.consent_wording,
                    recorded_by_id=self.imp.created_by_id,
                ))
                updates[channel].append(contact.pk)
                setattr(contact, f"{channel}_consent", ConsentStatus.GRANTED)
        ConsentEvent.objects.bulk_create(events, batch_size=2000)
        for channel, ids in updates.items():
            for start in range(0, len(ids), 5000):
                Contact.objects.filter(
                    pk__in=ids[start:start + 5000], **{f"{channel}_consent": ConsentStatus.NONE}
                ).update(**{f"{channel}_consent": ConsentStatus.GRANTED})
        return {pk for ids in updates.values() for pk in ids}


def _in(field_name: str, values: set[str]) -> Q:
    if not values:
        return Q(pk__in=[])
    return Q(**{f"{field_name}__in": list(values)})


def run_import(import_id: int) -> ContactImport:
    """Run (or resume) one import; safe to call twice."""
    with db_scope(ALL):
        claimed = ContactImport.objects.filter(
            pk=import_id, status__in=[ContactImport.Status.QUEUED, ContactImport.Status.RUNNING]
        ).update(status=ContactImport.Status.RUNNING, started_at=timezone.now())
        contact_import = ContactImport.objects.select_related("unit__profile").get(pk=import_id)
    if not claimed:
        return contact_import
    scope = [contact_import.unit_path]
    try:
        frame = read_frame(contact_import.file_path)
    except (pl.exceptions.PolarsError, UnicodeDecodeError, OSError) as exc:
        with db_scope(scope):
            ContactImport.objects.filter(pk=import_id).update(
                status=ContactImport.Status.FAILED, error=f"The file could not be read as CSV: {exc}",
                finished_at=timezone.now(),
            )
        contact_import.refresh_from_db()
        return contact_import
    batch_rows = settings.IMPORT_BATCH_ROWS
    with db_scope(scope):
        ContactImport.objects.filter(pk=import_id).update(total_rows=frame.height)
    validator = RowValidator(contact_import)
    writer = BatchWriter(contact_import)
    start = contact_import.processed_rows
    columns = list(validator.mapping)
    for offset in range(start, frame.height, batch_rows):
        chunk = frame.slice(offset, batch_rows).select(columns)
        valid: list[Row] = []
        rejections: list[ImportRejection] = []
        for index, raw in enumerate(chunk.iter_rows(named=True)):
            number = offset + index + 2  # line 1 is the header
            row, errors = validator.validate(number, raw)
            if row is None:
                rejections.extend(_new_rejection(contact_import, number, c, v, r) for c, v, r in errors)
            else:
                valid.append(row)
        with db_scope(scope), transaction.atomic():
            result = writer.write(valid)
            rejections.extend(result.rejections)
            ImportRejection.objects.bulk_create(rejections, batch_size=2000)
            ContactImport.objects.filter(pk=import_id).update(
                processed_rows=offset + chunk.height,
                created_count=F("created_count") + result.created,
                updated_count=F("updated_count") + result.updated,
                unchanged_count=F("unchanged_count") + result.unchanged,
                rejected_count=F("rejected_count") + len({r.row_number for r in rejections}),
            )
    with db_scope(scope):
        ContactImport.objects.filter(pk=import_id).update(
            status=ContactImport.Status.DONE, finished_at=timezone.now(),
            processed_rows=frame.height,
        )
        contact_import.refresh_from_db()
    return contact_import
