"""Writing one validated batch of an import: new people in one statement, the rest matched.

Two ways through a batch, with one outcome. Most rows of a real file are one new person
each: a row whose email and phone appear on no other row of its batch ("fresh") is
created, with its consent proof and tags, by a single statement on PostgreSQL that skips
any row whose address the unit already holds. Every other row (a repeat within the
batch, a person the unit already has, and everything on other databases) goes through
the matching path, which looks the addresses up and merges: existing contacts are never
damaged, only their empty fields are filled, tags are added, and consent from a file is
recorded only where the contact has no consent history for that channel.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from enseigne.contacts.models import (
    Channel,
    ConsentEvent,
    ConsentStatus,
    Contact,
    ContactImport,
    ContactTagging,
    ImportRejection,
    Suppression,
    Tag,
)
from enseigne.contacts.records import (
    Record,
    records_changed,
    records_preparer,
    records_written,
)
from enseigne.contacts.services import tags_get_or_create
from enseigne.lib.bulk import bulk_insert, copy_text_row
from enseigne.lib.hashing import identifier_hash
from enseigne.lib.imports import reason_stored, reasons_as_source

FILL_FIELDS = ("email", "phone", "first_name", "last_name", "birthday", "language")
_stage_names = itertools.count()


@dataclass
class Row:
    number: int
    values: dict = field(default_factory=dict)
    attributes: dict = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    consent: dict[str, bool] = field(default_factory=dict)
    matched: int | None = None
    created: bool = False
    # What the record hooks prepared for the contact this row creates (``BatchWriter.prepare``).
    prepared: tuple = ()


@dataclass
class BatchResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejections: list[ImportRejection] = field(default_factory=list)


@dataclass
class Chunk:
    """One batch of the file, validated (in the helper thread) and split for the writer."""

    height: int
    fresh: list[Row]
    repeats: list[Row]
    rejections: list[ImportRejection]
    # The fresh rows as COPY text, built beside the validation (PostgreSQL only).
    fresh_copy: str = ""


def split_repeats(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """(rows whose email and phone appear on no other row, the others), file order kept."""
    emails = Counter(r.values["email"] for r in rows if r.values.get("email"))
    phones = Counter(r.values["phone"] for r in rows if r.values.get("phone"))
    fresh, repeats = [], []
    for row in rows:
        email, phone = row.values.get("email"), row.values.get("phone")
        alone = (not email or emails[email] == 1) and (not phone or phones[phone] == 1)
        (fresh if alone else repeats).append(row)
    return fresh, repeats


def new_rejection(
    contact_import: ContactImport,
    number: int,
    column: str,
    value: str,
    reason: str,
    kind: str = ImportRejection.Kind.REFUSED,
) -> ImportRejection:
    return ImportRejection(
        contact_import=contact_import,
        unit_path=contact_import.unit_path,
        row_number=number,
        field=column[:60],
        value=value[:200],
        reason=reason_stored(reason, 500),  # read with ``reason_text``, in the reader's language
        kind=kind,
    )


@dataclass(slots=True, eq=False)
class NewContact:
    """A contact this batch creates; later rows for the same person merge into it."""

    values: dict
    attributes: dict
    pk: int | None = None
    email_consent: str = ConsentStatus.NONE
    sms_consent: str = ConsentStatus.NONE
    prepared: tuple = ()  # what the hooks prepared for the row creating it (they check it)

    @property
    def email(self) -> str | None:
        return self.values.get("email")

    @property
    def phone(self) -> str | None:
        return self.values.get("phone")

    def consent_for(self, channel: str) -> str:
        return self.email_consent if channel == Channel.EMAIL else self.sms_consent

    def merge(self, row: Row) -> None:
        fills = blanks_filled_by(row, self.values.get, self.attributes)
        self.attributes = fills.pop("attributes", self.attributes)
        self.values.update(fills)


def blanks_filled_by(row: Row, current, attributes: dict) -> dict:
    """What ``row`` adds to a contact without overwriting anything: empty fields, the
    customer flag, attributes it does not have yet. ``current(name)`` reads a field."""
    fills = {
        name: row.values[name] for name in FILL_FIELDS if row.values.get(name) and not current(name)
    }
    if row.values.get("is_customer") and not current("is_customer"):
        fills["is_customer"] = True
    missing = {k: v for k, v in row.attributes.items() if k not in attributes}
    if missing:
        fills["attributes"] = {**attributes, **missing}
    return fills


CONTACT_COLUMNS = (
    "public_id",
    "unit",
    "unit_path",
    "source_import",
    "email",
    "phone",
    "first_name",
    "last_name",
    "birthday",
    "language",
    "is_customer",
    "attributes",
    "email_consent",
    "sms_consent",
    "created_at",
    "updated_at",
)
CONSENT_COLUMNS = (
    "contact",
    "unit_path",
    "channel",
    "purpose",
    "status",
    "occurred_at",
    "source",
    "source_ref",
    "wording_version",
    "user_agent",
    "recorded_by",
    "recorded_at",
)


class BatchWriter:
    """Writes one batch of valid rows for one unit, in one transaction."""

    def __init__(self, contact_import: ContactImport):
        self.imp = contact_import
        self.unit = contact_import.unit
        self.source_ref = f"import:{contact_import.public_id} sha256:{contact_import.file_sha256}"
        self.declared_consent = set(contact_import.consent_channels or [])
        self.import_tags = list(contact_import.tag_names or [])
        self.phone_column = next(
            (c for c, t in (contact_import.mapping or {}).items() if t == "phone"), "phone"
        )
        # Read here, in the writer's thread: ``prepare`` runs where there is no database.
        self.preparer = records_preparer(contact_import.unit_path)

    def prepare(self, rows: list[Row]) -> None:
        """Let the record hooks prepare the contacts these rows would create (identity:
        their matching keys), with no database: the import calls it in its helper thread,
        beside the validation, so this work leaves the writer's thread. Only the fresh
        rows are worth it (each creates its contact from its own values); a hook checks
        what it gets against the record it is told of, so a row that ends up otherwise
        is simply prepared again."""
        if self.preparer is None or not rows:
            return
        addresses = [(row.values.get("email"), row.values.get("phone")) for row in rows]
        for row, prepared in zip(rows, self.preparer(addresses), strict=True):
            row.prepared = prepared

    def write_chunk(self, chunk: Chunk) -> BatchResult:
        """Write one validated batch: its fresh rows in one statement (PostgreSQL), then
        every other row, and any fresh row the unit turned out to know, by matching."""
        result = BatchResult()
        fresh, repeats = chunk.fresh, chunk.repeats
        kept = self._drop_erased([*fresh, *repeats], result)
        if len(kept) < len(fresh) + len(repeats):
            ids = {id(r) for r in kept}
            fresh, repeats = (
                [r for r in fresh if id(r) in ids],
                [r for r in repeats if id(r) in ids],
            )
        tag_ids = self._tag_ids([*fresh, *repeats])  # both paths need the batch's tags to exist
        if fresh and connection.vendor == "postgresql":
            copy_text = (
                chunk.fresh_copy
                if fresh is chunk.fresh and chunk.fresh_copy
                else self.fresh_copy(fresh)
            )
            matching = [*self._insert_fresh(fresh, copy_text, result), *repeats]
        else:
            matching = [*fresh, *repeats]
        # In file order: the first row for a person wins.
        matching.sort(key=lambda r: r.number)
        self._write_matching(matching, tag_ids, result)
        return result

    def _tag_ids(self, rows: list[Row]) -> dict[str, int]:
        """The import's and the rows' tags, created where new: name -> id."""
        names = set(self.import_tags)
        for row in rows:
            names.update(row.tags)
        return {t.name: t.pk for t in tags_get_or_create(sorted(names))} if names else {}

    def grants(self, row: Row, channel: str, address: str | None) -> bool:
        """Whether the file gives consent for ``channel`` on this row (its own column, or
        the channels declared for the whole file), given the address it would go to."""
        return bool(address) and row.consent.get(channel, channel in self.declared_consent)

    def _write_matching(
        self, rows: list[Row], tag_ids: dict[str, int], result: BatchResult
    ) -> None:
        """Look the rows' addresses up in the unit, then create, complete and count."""
        if not rows:
            return
        by_email: dict[str, Contact | NewContact] = {}
        by_phone: dict[str, Contact | NewContact] = {}
        for contact in self._existing(rows):
            if contact.email:
                by_email[contact.email] = contact
            if contact.phone:
                by_phone[contact.phone] = contact
        new: list[NewContact] = []
        touched: dict[int, Contact] = {}
        rekeyed: set[int] = set()  # existing contacts the file gave a first email or phone
        changed_fields: set[str] = set()
        pairs: list[tuple[Contact | NewContact, Row]] = []
        for row in rows:
            email, phone = row.values.get("email"), row.values.get("phone")
            # A phone is shared (a family's landline, the shop's number): it identifies
            # the person only on a row with no email. A row whose email is new, or another
            # contact's, is that person; the phone, held by someone else, stays with them.
            target = by_email.get(email) if email else by_phone.get(phone) if phone else None
            holder = by_phone.get(phone) if email and phone else None
            if holder is not None and holder is not target:
                row.values.pop("phone")
                with reasons_as_source():  # stored as source: read in the reader's language
                    result.rejections.append(
                        new_rejection(
                            self.imp,
                            row.number,
                            self.phone_column,
                            phone,
                            _(
                                "possible duplicate: another contact already has this phone number "
                                "(a shared phone, or the same person with two email addresses?); "
                                "imported without it"
                            ),
                            ImportRejection.Kind.POSSIBLE_DUPLICATE,
                        )
                    )
            if target is None:
                target = NewContact(
                    values=dict(row.values), attributes=dict(row.attributes), prepared=row.prepared
                )
                new.append(target)
                row.created = True
            elif isinstance(target, NewContact):
                target.merge(row)  # a repeat, within this batch, of a person it creates
            else:
                fields = self._fill_blanks(target, row)
                if fields:
                    changed_fields.update(fields)
                    touched[target.pk] = target
                    if {"email", "phone"} & set(fields):
                        rekeyed.add(target.pk)
                row.matched = target.pk
            # The row may have given the contact its first email or phone: later rows find it.
            if target.email:
                by_email[target.email] = target
            if target.phone:
                by_phone[target.phone] = target
            pairs.append((target, row))
        consent = self._plan_consent(pairs)
        self._create(new)
        result.created += len(new)
        if touched:
            now = timezone.now()  # bulk_update runs no auto_now
            for contact in touched.values():
                contact.updated_at = now
            Contact.objects.bulk_update(
                list(touched.values()), [*changed_fields, "updated_at"], batch_size=1000
            )
            records_changed(
                [
                    Record(pk, self.unit.path, c.email, c.phone, c.birthday)
                    for pk, c in touched.items()
                    if pk in rekeyed
                ]
            )
        tag_changes = self._write_tags(pairs, tag_ids)
        consent_changes = self._write_consent(consent)
        # Every valid row is counted once: created, updated (the first row that changed an
        # existing contact) or unchanged (nothing new, including a repeat within the file).
        counted: set[int] = set()
        for target, row in pairs:
            if row.created:
                counted.add(target.pk)
                continue
            changed = (
                target.pk in touched or target.pk in tag_changes or target.pk in consent_changes
            )
            if row.matched is not None and changed and target.pk not in counted:
                result.updated += 1
            else:
                result.unchanged += 1
            counted.add(target.pk)

    def _insert_fresh(self, rows: list[Row], copy_text: str, result: BatchResult) -> list[Row]:
        """Create the batch's fresh rows in one statement (PostgreSQL); return those skipped.

        The rows go by COPY into a temporary table that numbers them from the contacts'
        sequence, then one statement inserts the contacts (skipping any whose email or
        phone the unit already holds: those return to the matching path), the consent
        proof of each new contact and its tags. A fresh row is a new person with no
        history, so its consent is what the file grants and its values are the row's.
        """
        quote = connection.ops.quote_name
        contacts, consent, tagging, tag = (
            quote(m._meta.db_table) for m in (Contact, ConsentEvent, ContactTagging, Tag)
        )
        stage = quote(f"_stage_fresh_{next(_stage_names)}")
        with connection.cursor() as cursor:
            sequence = self._contact_sequence.replace("'", "''")
            # Identifiers come from the models' metadata or the catalogue, quoted; values
            # travel by COPY or as parameters. The planner knows nothing of a fresh
            # temporary table and would compile this one-pass statement (JIT) for nothing.
            cursor.execute("SET LOCAL jit = off")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS SELECT 0 AS seq, id, email, phone, first_name, "  # noqa: S608
                f"last_name, birthday, language, is_customer, attributes, email_consent, sms_consent, "
                f"NULL::text[] AS tags FROM {contacts} WITH NO DATA"
            )
            cursor.execute(
                f"ALTER TABLE {stage} ALTER COLUMN id SET DEFAULT nextval('{sequence}'::regclass)"
            )
            with cursor.cursor.copy(
                f"COPY {stage} (seq, email, phone, first_name, last_name, birthday, language, is_customer, "
                f"attributes, email_consent, sms_consent, tags) FROM STDIN"
            ) as copy:
                copy.write(copy_text)
            now = timezone.now()
            cursor.execute(
                f"""
                WITH new AS (
                    INSERT INTO {contacts} (id, public_id, unit_id, unit_path, source_import_id, email, phone,
                        first_name, last_name, birthday, language, is_customer, attributes, email_consent,
                        sms_consent, created_at, updated_at)
                    SELECT id, gen_random_uuid(), %(unit)s, %(path)s, %(import)s, email, phone, first_name,
                        last_name, birthday, language, is_customer, attributes, email_consent, sms_consent,
                        %(now)s, %(now)s
                    FROM {stage}
                    ON CONFLICT DO NOTHING
                    RETURNING id, email_consent, sms_consent
                ), proof AS (
                    INSERT INTO {consent} (contact_id, unit_path, channel, purpose, status, occurred_at, source,
                        source_ref, wording_version, user_agent, recorded_by_id, recorded_at)
                    SELECT new.id, %(path)s, channel.name, 'marketing', %(granted)s, %(now)s, %(source)s, %(ref)s,
                        %(wording)s, '', %(user)s, %(now)s
                    FROM new JOIN (VALUES (%(email)s), (%(sms)s)) AS channel (name)
                      ON (channel.name = %(email)s AND new.email_consent = %(granted)s)
                      OR (channel.name = %(sms)s AND new.sms_consent = %(granted)s)
                ), tagged AS (
                    INSERT INTO {tagging} (contact_id, tag_id, unit_path)
                    SELECT new.id, tag.id, %(path)s
                    FROM new JOIN {stage} AS stage ON stage.id = new.id JOIN {tag} AS tag ON tag.name = ANY (stage.tags)
                )
                SELECT stage.seq, new.id FROM {stage} AS stage LEFT JOIN new ON new.id = stage.id
                """,  # noqa: S608
                {
                    "unit": self.unit.pk,
                    "path": self.unit.path,
                    "import": self.imp.pk,
                    "now": now,
                    "granted": ConsentStatus.GRANTED,
                    "source": ConsentEvent.Source.IMPORT,
                    "ref": self.source_ref,
                    "wording": self.imp.consent_wording,
                    "user": self.imp.created_by_id,
                    "email": Channel.EMAIL,
                    "sms": Channel.SMS,
                },
            )
            skipped, written = [], []
            for seq, pk in cursor.fetchall():
                if pk is None:
                    skipped.append(rows[seq])
                else:
                    row = rows[seq]
                    values = row.values
                    written.append(
                        Record(
                            pk,
                            self.unit.path,
                            values.get("email"),
                            values.get("phone"),
                            values.get("birthday"),
                            row.prepared,
                        )
                    )
        records_written(written)
        result.created += len(written)
        return skipped

    @cached_property
    def _contact_sequence(self) -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Contact._meta.db_table])
            return cursor.fetchone()[0]

    def fresh_copy(self, rows: list[Row]) -> str:
        """The fresh rows in COPY text form, numbered in order (no database needed)."""
        lines = []
        for seq, row in enumerate(rows):
            values = row.values
            email, phone = values.get("email"), values.get("phone")
            lines.append(
                copy_text_row(
                    (
                        seq,
                        email,
                        phone,
                        values.get("first_name", ""),
                        values.get("last_name", ""),
                        values.get("birthday"),
                        values.get("language", ""),
                        values.get("is_customer", False),
                        json.dumps(row.attributes) if row.attributes else "{}",
                        ConsentStatus.GRANTED
                        if self.grants(row, Channel.EMAIL, email)
                        else ConsentStatus.NONE,
                        ConsentStatus.GRANTED
                        if self.grants(row, Channel.SMS, phone)
                        else ConsentStatus.NONE,
                        sorted({*self.import_tags, *row.tags}) or None,
                    )
                )
            )
        return "".join(lines)

    def _existing(self, rows: list[Row]) -> list[Contact]:
        emails = sorted({r.values["email"] for r in rows if r.values.get("email")})
        phones = sorted({r.values["phone"] for r in rows if r.values.get("phone")})
        if not emails and not phones:
            return []
        # What matching reads and completes; the rest of the row stays in the database.
        columns = Contact.objects.only(
            *FILL_FIELDS, "is_customer", "attributes", "email_consent", "sms_consent", "updated_at"
        )
        if connection.vendor == "postgresql":
            # One probe of the unit's unique index per address. Asked as "unit and email
            # among these", the planner, whose statistics lag far behind a table an import
            # is filling, walked the whole unit instead (9 ms a batch at 40k contacts, 21 ms
            # at 100k, growing with the unit). The LIMIT keeps each probe a subquery of its
            # own, which the planner cannot turn into such a scan and join.
            table = connection.ops.quote_name(Contact._meta.db_table)
            probes = " UNION ".join(
                f"SELECT contact.id FROM unnest(%s::text[]) AS wanted (address) CROSS JOIN LATERAL "  # noqa: S608
                f"(SELECT id FROM {table} WHERE unit_id = %s AND {column} = wanted.address LIMIT 1) AS contact"
                for column in ("email", "phone")
            )
            with connection.cursor() as cursor:
                cursor.execute(probes, [emails, self.unit.pk, phones, self.unit.pk])
                ids = [pk for (pk,) in cursor.fetchall()]
            return list(columns.filter(pk__any=ids)) if ids else []  # the ids are the unit's
        # Within SQLite's limit on bound variables.
        found: dict[int, Contact] = {}
        for start in range(0, max(len(emails), len(phones)), 10_000):
            condition = Q(email__in=emails[start : start + 10_000]) | Q(
                phone__in=phones[start : start + 10_000]
            )
            for contact in columns.filter(condition, unit=self.unit):
                found[contact.pk] = contact
        return list(found.values())

    def _create(self, new: list[NewContact]) -> None:
        if not new:
            return
        now = timezone.now()
        unit_id, path, import_id = self.unit.pk, self.unit.path, self.imp.pk
        rows = (
            (
                uuid.uuid4(),
                unit_id,
                path,
                import_id,
                c.values.get("email"),
                c.values.get("phone"),
                c.values.get("first_name", ""),
                c.values.get("last_name", ""),
                c.values.get("birthday"),
                c.values.get("language", ""),
                c.values.get("is_customer", False),
                c.attributes,
                c.email_consent,
                c.sms_consent,
                now,
                now,
            )
            for c in new
        )
        by_email = {c.email: c for c in new if c.email}
        by_phone = {c.phone: c for c in new if c.phone}
        written = []
        for pk, email, phone in bulk_insert(
            Contact, CONTACT_COLUMNS, rows, returning=("id", "email", "phone")
        ):
            target = by_email[email] if email else by_phone[phone]
            target.pk = pk
            written.append(
                Record(pk, path, email, phone, target.values.get("birthday"), target.prepared)
            )
        records_written(written)

    def _drop_erased(self, rows: list[Row], result: BatchResult) -> list[Row]:
        if not Suppression.objects.filter(
            unit_path=self.unit.path, reason=Suppression.Reason.ERASURE
        ).exists():
            return rows
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
                unit_path=self.unit.path,
                reason=Suppression.Reason.ERASURE,
                value_hash__any=list(hashes),
            ).values_list("value_hash", flat=True)
        )
        refused = {id(hashes[h]) for h in erased}
        for row in rows:
            if id(row) in refused:
                with reasons_as_source():  # stored as source: read in the reader's language
                    result.rejections.append(
                        new_rejection(
                            self.imp,
                            row.number,
                            "",
                            "",
                            _(
                                "this person asked to be erased from this unit (GDPR); they cannot be imported again"
                            ),
                        )
                    )
        return [r for r in rows if id(r) not in refused]

    @staticmethod
    def _fill_blanks(contact: Contact, row: Row) -> list[str]:
        fills = blanks_filled_by(row, lambda name: getattr(contact, name), contact.attributes)
        for name, value in fills.items():
            setattr(contact, name, value)
        return list(fills)

    def _write_tags(
        self, pairs: list[tuple[Contact | NewContact, Row]], tag_ids: dict[str, int]
    ) -> set[int]:
        if not tag_ids:
            return set()
        wanted: set[tuple[int, int]] = set()
        for target, row in pairs:
            for name in {*self.import_tags, *row.tags}:
                wanted.add((target.pk, tag_ids[name]))
        matched = {t.pk for t, _ in pairs if isinstance(t, Contact)}
        existing = set()
        if matched:
            existing = set(
                ContactTagging.objects.filter(
                    contact_id__in=matched, tag_id__in=list(tag_ids.values())
                ).values_list("contact_id", "tag_id")
            )
        missing = wanted - existing
        path = self.unit.path
        bulk_insert(
            ContactTagging,
            ("contact", "tag", "unit_path"),
            ((c, t, path) for c, t in missing),
            ignore_conflicts=True,
        )
        return {c for c, _ in missing}

    def _plan_consent(
        self, pairs: list[tuple[Contact | NewContact, Row]]
    ) -> list[tuple[Contact | NewContact, str]]:
        """Consent the file grants: only where the contact has no history for the channel."""
        planned = []
        for target, row in pairs:
            for channel, address in ((Channel.EMAIL, target.email), (Channel.SMS, target.phone)):
                if (
                    not self.grants(row, channel, address)
                    or target.consent_for(channel) != ConsentStatus.NONE
                ):
                    continue
                planned.append((target, channel))
                setattr(target, f"{channel}_consent", ConsentStatus.GRANTED)
        return planned

    def _write_consent(self, planned: list[tuple[Contact | NewContact, str]]) -> set[int]:
        """Record the planned grants; new contacts were created with their status already."""
        now = timezone.now()
        path, ref, wording, user_id = (
            self.unit.path,
            self.source_ref,
            self.imp.consent_wording,
            self.imp.created_by_id,
        )
        bulk_insert(
            ConsentEvent,
            CONSENT_COLUMNS,
            (
                (
                    target.pk,
                    path,
                    channel,
                    "marketing",
                    ConsentStatus.GRANTED,
                    now,
                    ConsentEvent.Source.IMPORT,
                    ref,
                    wording,
                    "",
                    user_id,
                    now,
                )
                for target, channel in planned
            ),
        )
        updates: dict[str, list[int]] = {"email": [], "sms": []}
        for target, channel in planned:
            if isinstance(target, Contact):
                updates[channel].append(target.pk)
        for channel, ids in updates.items():
            for start in range(0, len(ids), 5000):
                Contact.objects.filter(
                    pk__in=ids[start : start + 5000], **{f"{channel}_consent": ConsentStatus.NONE}
                ).update(**{f"{channel}_consent": ConsentStatus.GRANTED})
        return {target.pk for target, _ in planned}
