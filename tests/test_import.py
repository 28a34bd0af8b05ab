"""CSV import: row-by-row report, dedup, idempotence, and nothing existing damaged."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from enseigne.contacts import services
from enseigne.contacts.import_services import import_prepare, import_start
from enseigne.contacts.models import (
    ConsentEvent,
    ConsentStatus,
    Contact,
    ContactImport,
    ImportRejection,
)
from tests.exports import export_rows
from tests.factories import ContactFactory

GOOD_AND_BAD = (
    "Prénom;Nom;Email;Mobile;Naissance;Tags\n"
    "Léa;Martin;lea.martin@example.com;06 12 34 56 78;1990-04-12;vip\n"
    "Hugo;Bernard;not-an-email;;;\n"
    "Inès;Petit;ines.petit@example.com;12;;\n"
    "Paul;Durand;;;31/02/1980;\n"
    "Zoé;Moreau;ZOE.MOREAU@Example.com;+33 6 98 76 54 32;;cuisine, textile\n"
    "Zoé;Moreau;zoe.moreau@example.com;;;\n"
    ";;;;;\n"
)


def run(
    world,
    content: str | bytes,
    *,
    user=None,
    consent=(),
    wording="",
    mapping=None,
    tags=None,
    django_capture_on_commit_callbacks=None,
):
    user = user or world.manager_a
    raw = content.encode() if isinstance(content, str) else content
    imp = import_prepare(actor=user, unit=world.unit_a, file_name="contacts.csv", content=raw)
    with django_capture_on_commit_callbacks(execute=True):
        import_start(
            actor=user,
            contact_import=imp,
            mapping=mapping or imp.mapping,
            consent_channels=list(consent),
            consent_wording=wording,
            tags=tags,
        )
    imp.refresh_from_db()
    return imp


@pytest.fixture
def do_import(world, django_capture_on_commit_callbacks):
    def _run(content, **kwargs):
        return run(
            world,
            content,
            django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
            **kwargs,
        )

    return _run


FRENCH = [
    "adresse e-mail non valide (pas de signe @)",
    "numéro de téléphone non valide pour FR",  # the start of it
    "ni adresse e-mail ni numéro de téléphone : rien pour le contacter",
    "pas une date (utilisez AAAA-MM-JJ ou JJ/MM/AAAA)",
]
# Row, column, value: the same whatever the language.
ROWS = [
    (3, "Email", "not-an-email"),
    (4, "Mobile", "12"),
    (5, "", ""),
    (5, "Naissance", "31/02/1980"),
    (8, "", ""),
]
ENGLISH = [
    "not a valid email address (no @ sign)",
    "not a valid phone number for FR",
    "no email address and no phone number: nothing to contact",
    "not a date (use YYYY-MM-DD or DD/MM/YYYY)",
]


@pytest.mark.parametrize(("made_in", "read_in"), [("fr", "en"), ("en", "fr"), ("fr", "fr")])
def test_the_report_reads_in_the_readers_language_whoever_ran_the_import(
    world, do_import, client, made_in, read_in
):
    from django.utils import translation

    with translation.override(made_in):
        imp = do_import(GOOD_AND_BAD)
    expected = FRENCH if read_in == "fr" else ENGLISH
    with translation.override(read_in):
        lines = [(r.row_number, r.field, r.value, r.reason_text) for r in imp.rejections.all()]
    assert [(n, f, v) for n, f, v, _r in lines] == ROWS
    reasons = [r for _n, _f, _v, r in lines]
    assert reasons[0] == expected[0]
    assert reasons[1].startswith(expected[1])
    assert reasons[2] == expected[2]
    assert reasons[3] == expected[3]
    assert reasons[4] == reasons[2]
    # The page's report and the CSV download, in the reader's language too.
    client.force_login(world.manager_a)
    page = client.get(f"/imports/{imp.public_id}/", HTTP_ACCEPT_LANGUAGE=read_in)
    download = client.get(f"/imports/{imp.public_id}/rejections.csv", HTTP_ACCEPT_LANGUAGE=read_in)
    assert expected[0] in page.content.decode()
    rows = export_rows(download)
    assert [row[3] for row in rows[1:]] == reasons
    assert [row[:3] for row in rows[1:]] == [[str(n), f, v] for n, f, v, _r in lines]


def test_a_report_line_written_as_text_before_shows_as_it_was(world, do_import, client):
    from django.utils import translation

    imp = do_import(GOOD_AND_BAD)
    ImportRejection.objects.filter(contact_import=imp).update(reason="adresse ancienne façon")
    with translation.override("en"):
        assert {r.reason_text for r in imp.rejections.all()} == {"adresse ancienne façon"}
    client.force_login(world.manager_a)
    rows = export_rows(client.get(f"/imports/{imp.public_id}/rejections.csv"))
    assert {row[3] for row in rows[1:]} == {"adresse ancienne façon"}


def test_mapping_is_guessed_from_french_headers(world):
    imp = import_prepare(
        actor=world.manager_a, unit=world.unit_a, file_name="c.csv", content=GOOD_AND_BAD.encode()
    )
    assert imp.columns == ["Prénom", "Nom", "Email", "Mobile", "Naissance", "Tags"]
    assert imp.mapping == {
        "Prénom": "first_name",
        "Nom": "last_name",
        "Email": "email",
        "Mobile": "phone",
        "Naissance": "birthday",
        "Tags": "tags",
    }
    assert imp.status == ContactImport.Status.MAPPING


def test_good_rows_land_and_bad_rows_are_reported_by_row_field_and_reason(world, do_import):
    imp = do_import(GOOD_AND_BAD, consent=["email"], wording="in-store-v2")
    assert imp.status == ContactImport.Status.DONE
    assert (imp.total_rows, imp.processed_rows) == (7, 7)
    assert imp.created_count == 3  # Inès, whose phone is left out, too
    assert imp.unchanged_count == 1  # row 7 repeats row 6
    assert imp.rejected_count == 3
    assert imp.created_count + imp.updated_count + imp.unchanged_count + imp.rejected_count == 7
    report = [(r.row_number, r.field, r.kind, r.reason_text) for r in imp.rejections.all()]
    assert [(row, field, kind) for row, field, kind, _ in report] == [
        (3, "Email", "refused"),
        (4, "Mobile", "skipped"),
        (5, "", "refused"),
        (5, "Naissance", "refused"),
        (8, "", "refused"),
    ]
    assert report[0][3] == "not a valid email address (no @ sign)"
    assert "not a valid phone number" in report[1][3]
    assert report[2][3] == "no email address and no phone number: nothing to contact"
    assert report[3][3] == "not a date (use YYYY-MM-DD or DD/MM/YYYY)"
    ines = Contact.objects.get(email="ines.petit@example.com")
    assert (ines.phone, ines.first_name) == (None, "Inès")
    lea = Contact.objects.get(email="lea.martin@example.com")
    assert (lea.phone, lea.first_name, str(lea.birthday)) == ("+33612345678", "Léa", "1990-04-12")
    assert lea.email_consent == ConsentStatus.GRANTED
    assert sorted(t.name for t in lea.tags.all()) == ["vip"]
    event = lea.consent_events.get()
    assert (event.source, event.wording_version) == ("import", "in-store-v2")
    assert event.source_ref == f"import:{imp.public_id} sha256:{imp.file_sha256}"
    # Row 7 is the same person as row 6 (case differs): merged, not duplicated.
    zoe = Contact.objects.get(email="zoe.moreau@example.com")
    assert sorted(t.name for t in zoe.tags.all()) == ["cuisine", "textile"]
    assert zoe.consent_events.count() == 1


def test_reimporting_the_same_file_creates_nothing(world, do_import):
    first = do_import(GOOD_AND_BAD, consent=["email"], wording="v1")
    events = ConsentEvent.objects.count()
    second = do_import(GOOD_AND_BAD, consent=["email"], wording="v1")
    assert first.created_count == 3
    assert (second.created_count, second.updated_count, second.rejected_count) == (0, 0, 3)
    assert second.unchanged_count == 4
    assert Contact.objects.filter(unit=world.unit_a).count() == 3
    assert ConsentEvent.objects.count() == events


def test_existing_contacts_are_completed_never_overwritten(world, do_import):
    existing = ContactFactory(
        unit=world.unit_a,
        email="lea.martin@example.com",
        first_name="Léa-Marie",
        last_name="",
        phone=None,
    )
    imp = do_import(GOOD_AND_BAD)
    existing.refresh_from_db()
    assert existing.first_name == "Léa-Marie"  # kept
    assert existing.last_name == "Martin"  # was empty: filled
    assert existing.phone == "+33612345678"
    assert imp.updated_count == 1
    assert existing.updated_at >= imp.started_at  # bulk_update runs no auto_now: set by the import


def test_an_import_never_overrides_an_unsubscribe(world, do_import):
    contact = ContactFactory(unit=world.unit_a, email="lea.martin@example.com")
    services.consent_record(
        actor=None, contact=contact, channel="email", status="granted", source="form"
    )
    services.consent_record(
        actor=None, contact=contact, channel="email", status="withdrawn", source="unsubscribe"
    )
    do_import(GOOD_AND_BAD, consent=["email"], wording="v1")
    contact.refresh_from_db()
    assert contact.email_consent == ConsentStatus.WITHDRAWN
    assert contact.consent_events.count() == 2


def test_erased_person_is_refused_with_a_clear_reason(world, do_import):
    contact = ContactFactory(unit=world.unit_a, email="lea.martin@example.com")
    services.contact_erase(actor=world.manager_a, contact=contact)
    imp = do_import(GOOD_AND_BAD)
    assert not Contact.objects.filter(email="lea.martin@example.com").exists()
    reasons = {r.row_number: r.reason_text for r in imp.rejections.all()}
    assert (
        reasons[2]
        == "this person asked to be erased from this unit (GDPR); they cannot be imported again"
    )


def test_same_email_in_another_unit_is_a_different_contact(world, do_import):
    ContactFactory(unit=world.unit_b, email="lea.martin@example.com", first_name="Autre")
    imp = do_import(GOOD_AND_BAD)
    assert imp.created_count == 3
    assert Contact.objects.filter(email="lea.martin@example.com").count() == 2


def test_windows_1252_file_with_comma_separator(world, do_import):
    content = "email,first_name\nfrancois@example.com,François\n".encode("cp1252")
    imp = do_import(content)
    assert imp.created_count == 1
    assert Contact.objects.get(email="francois@example.com").first_name == "François"


def test_batches_crossing_boundaries_keep_row_numbers(world, do_import, settings):
    rows = ["email"] + [f"p{i}@example.com" if i % 10 else "broken" for i in range(1, 121)]
    imp = do_import("\n".join(rows) + "\n")
    assert imp.created_count == 108
    assert [r.row_number for r in imp.rejections.all()] == [i + 1 for i in range(10, 121, 10)]


def test_rejection_report_download_is_formula_safe(world, do_import, client):
    imp = do_import('email\n=HYPERLINK("x")\n')
    client.force_login(world.manager_a)
    response = client.get(f"/imports/{imp.public_id}/rejections.csv")
    rows = export_rows(response)
    assert rows[0] == ["Row", "Column", "Value", "Reason", "Kind"]
    assert rows[1][0:3] == ["2", "email", '\'=HYPERLINK("x")']


def test_mapping_errors_name_the_problem(world):
    imp = import_prepare(
        actor=world.manager_a, unit=world.unit_a, file_name="c.csv", content=b"nom,ville\nA,B\n"
    )
    with pytest.raises(ValidationError) as exc:
        import_start(
            actor=world.manager_a,
            contact_import=imp,
            mapping={"nom": "last_name"},
            consent_channels=[],
        )
    assert exc.value.message_dict == {"mapping": ["Map at least one column to email or phone."]}
    with pytest.raises(ValidationError) as exc:
        import_start(
            actor=world.manager_a,
            contact_import=imp,
            mapping={"nom": "email"},
            consent_channels=["email"],
            consent_wording="",
        )
    assert "consent_wording" in exc.value.message_dict


def test_binary_files_are_refused(world):
    with pytest.raises(ValidationError) as exc:
        import_prepare(
            actor=world.manager_a,
            unit=world.unit_a,
            file_name="c.xlsx",
            content=b"PK\x03\x04\x00\x00",
        )
    assert exc.value.message_dict["file"][0].startswith(
        "This file is an Excel workbook (.xlsx), not a CSV text file. Save it as CSV"
    )


def _snapshot(unit):
    """Everything an import writes for a unit, without ids or timestamps."""
    people = {}
    for contact in Contact.objects.filter(unit=unit).prefetch_related("tags", "consent_events"):
        key = contact.email or contact.phone
        people[key] = (
            contact.email,
            contact.phone,
            contact.first_name,
            contact.last_name,
            contact.birthday,
            contact.language,
            contact.is_customer,
            contact.attributes,
            contact.email_consent,
            contact.sms_consent,
            sorted(t.name for t in contact.tags.all()),
            sorted(
                (e.channel, e.status, e.source, e.wording_version)
                for e in contact.consent_events.all()
            ),
        )
    return people


def test_the_one_statement_path_and_the_matching_path_write_the_same_contacts(
    world, do_import, settings, monkeypatch
):
    """A large file's new people take the single-statement path on PostgreSQL; repeats and
    known people the matching path. Forcing every row through the matching path must give
    the same contacts, consent proof, tags and counts."""
    from django.db import connection

    from enseigne.contacts.import_writer import BatchWriter
    from enseigne.contacts.models import CustomAttribute

    CustomAttribute.objects.create(key="fidelite", label="Fidélité")
    settings.IMPORT_BATCH_ROWS = 40
    lines = ["email;mobile;prenom;nom;naissance;client;optin_sms;tags;fidelite"]
    for i in range(150):
        email = f"p{i}@example.com" if i % 7 else ""
        phone = f"06 {10 + i // 100:02d} {i % 100:02d} 00 00" if i % 3 else ""
        if not email and not phone:
            email = f"only{i}@example.com"
        tags = "vip, cuisine" if i % 5 == 0 else ("textile" if i % 5 == 1 else "")
        lines.append(
            f"{email};{phone};Prénom{i};Nom{i};19{50 + i % 50}-0{1 + i % 9}-1{i % 10};"
            f"{'oui' if i % 4 == 0 else ''};{'oui' if i % 6 == 0 else ''};{tags};{'or' if i % 2 else ''}"
        )
    # Repeats: the same person again within a batch (another phone, a filled blank) and in
    # a later batch; one row whose email and phone belong to two different people.
    lines.append("p1@example.com;06 99 00 00 01;Autre;;;;;soldes;")
    lines.append("p2@example.com;;;;;oui;;;argent")
    lines.append("p8@example.com;06 10 10 00 00;;;;;;;")  # p8's email, p10's phone
    lines.append("nouveau@example.com;;Nouveau;;;;;;")
    # A new email with a phone already seen (p10's): a new person, kept without the phone.
    lines.append("famille@example.com;06 10 10 00 00;Famille;;;;oui;;")
    lines.append("famille2@example.com;06 10 10 00 00;;;;;;;")  # twice, in one batch
    content = "\n".join(lines) + "\n"
    for unit in (world.unit_a, world.unit_b):
        ContactFactory(
            unit=unit, email="p3@example.com", first_name="", last_name="Connue", phone=None
        )

    calls = []
    original = BatchWriter._insert_fresh

    def spy(self, rows, copy_text, result):
        skipped = original(self, rows, copy_text, result)
        calls.append((len(rows), len(skipped)))
        return skipped

    monkeypatch.setattr(BatchWriter, "_insert_fresh", spy)
    fast = do_import(content, consent=["email"], wording="v3")
    if connection.vendor == "postgresql":
        assert sum(rows for rows, _ in calls) > 100  # most rows took the one-statement path…
        # …but p3, whom the unit already had, and p1 and p2, written by an earlier batch (p8
        # and the two "famille" rows share a phone in their batch: they go to matching)
        assert sum(skipped for _, skipped in calls) == 3
    else:
        assert calls == []  # one path only on other databases

    monkeypatch.setattr(BatchWriter, "_insert_fresh", lambda self, rows, copy_text, result: rows)
    world.unit_a, saved = world.unit_b, world.unit_a
    try:
        matching = do_import(content, consent=["email"], wording="v3", user=world.manager_b)
    finally:
        world.unit_a = saved

    counts = ("created_count", "updated_count", "unchanged_count", "rejected_count")
    assert [getattr(fast, c) for c in counts] == [getattr(matching, c) for c in counts]
    assert [getattr(fast, c) for c in counts] == [152, 3, 1, 0]
    # p8's email with p10's phone: p8, kept without the phone, flagged as a possible duplicate;
    # so are the two new people who give p10's phone with their own email.
    expected = [(n, "duplicate", "+33610100000") for n in (154, 156, 157)]
    assert [(r.row_number, r.kind, r.value) for r in fast.rejections.all()] == expected
    assert [(r.row_number, r.kind, r.value) for r in matching.rejections.all()] == expected
    famille = Contact.objects.get(unit=world.unit_a, email="famille@example.com")
    assert (famille.phone, famille.sms_consent) == (None, "none")  # no phone, no SMS consent
    assert _snapshot(world.unit_a) == _snapshot(world.unit_b)
    known = Contact.objects.get(unit=world.unit_a, email="p3@example.com")
    assert (known.first_name, known.last_name) == (
        "Prénom3",
        "Connue",
    )  # completed, not overwritten
    p1 = Contact.objects.get(unit=world.unit_a, email="p1@example.com")
    assert (p1.first_name, p1.phone) == ("Prénom1", "+33610010000")
    assert sorted(t.name for t in p1.tags.all()) == ["soldes", "textile"]
    assert Contact.objects.get(unit=world.unit_a, email="p2@example.com").attributes == {
        "fidelite": "argent"
    }


def test_names_and_tags_with_tabs_quotes_and_backslashes_land_as_written(world, do_import):
    content = (
        "email;prenom;nom;tags\n"
        'a@example.com;"Jean\tPaul";"O\'Brien \\ ""Le Grand""";"a\\b, dit ""x"", {y}"\n'
        'b@example.com;"Line\nBreak";\\N;\n'
    )
    imp = do_import(content)
    assert imp.created_count == 2
    a = Contact.objects.get(email="a@example.com")
    assert (a.first_name, a.last_name) == ("Jean\tPaul", 'O\'Brien \\ "Le Grand"')
    assert sorted(t.name for t in a.tags.all()) == ["a\\b", 'dit "x"', "{y}"]
    b = Contact.objects.get(email="b@example.com")
    assert (b.first_name, b.last_name) == ("Line\nBreak", "\\N")


def test_copy_text_rows_escape_what_postgresql_would_read_otherwise():
    import datetime

    from enseigne.lib.bulk import copy_text_row

    line = copy_text_row(
        (
            7,
            None,
            True,
            False,
            datetime.date(1990, 4, 12),
            "a\tb\\c\nd\re",
            ["x", 'y"z', "w\\v"],
            [],
        )
    )
    assert (
        line == '7\t\\N\tt\tf\t1990-04-12\ta\\tb\\\\c\\nd\\re\t{"x","y\\\\"z","w\\\\\\\\v"}\t{}\n'
    )
    with pytest.raises(TypeError, match="no COPY text form for float"):
        copy_text_row((1.5,))


def test_contacts_keep_which_import_created_them_until_it_is_deleted(world, do_import):
    imp = do_import(GOOD_AND_BAD)
    lea = Contact.objects.get(email="lea.martin@example.com")
    assert lea.source_import_id == imp.pk
    imp.delete()  # no database constraint (docs/decisions.md): Django clears the reference
    lea.refresh_from_db()
    assert lea.source_import_id is None


def test_custom_attributes_are_checked_by_kind_row_by_row(world, do_import):
    from enseigne.contacts.models import CustomAttribute

    CustomAttribute.objects.create(key="points", label="Points", kind=CustomAttribute.Kind.NUMBER)
    CustomAttribute.objects.create(key="adhesion", label="Adhésion", kind=CustomAttribute.Kind.DATE)
    imp = do_import(
        "email;points;adhesion\n"
        "a@example.com;12,5;2024-03-01\n"
        "b@example.com;nan;\n"
        "c@example.com;Infinity;\n"
        "d@example.com;douze;\n"
        "e@example.com;3;hier\n",
        mapping={
            "email": "email",
            "points": "attributes.points",
            "adhesion": "attributes.adhesion",
        },
    )
    # A bad value is left out of the contact, not the contact out of the unit.
    assert (imp.created_count, imp.rejected_count) == (5, 0)
    assert Contact.objects.get(email="a@example.com").attributes == {
        "points": 12.5,
        "adhesion": "2024-03-01",
    }
    assert Contact.objects.get(email="e@example.com").attributes == {"points": 3}
    report = [(r.row_number, r.field, r.value, r.kind) for r in imp.rejections.all()]
    assert report == [
        (3, "points", "nan", "skipped"),
        (4, "points", "Infinity", "skipped"),
        (5, "points", "douze", "skipped"),
        (6, "adhesion", "hier", "skipped"),
    ]
    assert {r.reason_text for r in imp.rejections.filter(field="points")} == {"not a number"}


def test_an_import_that_fails_its_last_attempt_says_where_it_stopped(world, settings, monkeypatch):
    from types import SimpleNamespace

    from enseigne.contacts.import_writer import BatchWriter
    from enseigne.contacts.tasks import run_contact_import

    settings.IMPORT_BATCH_ROWS = 50
    rows = "\n".join(["email", *(f"p{i}@example.com" for i in range(120))]) + "\n"
    imp = import_prepare(
        actor=world.manager_a, unit=world.unit_a, file_name="c.csv", content=rows.encode()
    )
    ContactImport.objects.filter(pk=imp.pk).update(
        status=ContactImport.Status.QUEUED, mapping={"email": "email"}
    )
    original, calls = BatchWriter.write_chunk, []

    def second_batch_breaks(self, chunk):
        calls.append(chunk)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return original(self, chunk)

    monkeypatch.setattr(BatchWriter, "write_chunk", second_batch_breaks)
    with pytest.raises(RuntimeError):  # an attempt with retries left: the queue retries it
        run_contact_import.call_local(imp.pk, task=SimpleNamespace(retries=1))
    imp.refresh_from_db()
    assert (imp.status, imp.processed_rows, imp.created_count) == (
        ContactImport.Status.RUNNING,
        50,
        50,
    )

    calls.clear()
    calls.append(None)  # the resumed attempt breaks on its first batch (rows 51-100)
    with pytest.raises(RuntimeError):
        run_contact_import.call_local(imp.pk, task=SimpleNamespace(retries=0))
    imp.refresh_from_db()
    assert imp.status == ContactImport.Status.FAILED
    assert imp.error.startswith(
        "Stopped by an unexpected error at line 52. The lines before it were imported;"
    )
    assert (
        Contact.objects.filter(unit=world.unit_a).count() == 50
    )  # nothing lost, nothing half-written
