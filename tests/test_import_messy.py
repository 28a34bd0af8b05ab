"""Imports under messy input (issue 18): every row ends as a contact or as a refused row
with its reason, and whatever was left out of a contact is in the report.

Shared phones, bad fields, countries, line ends and encodings, broken quotes, headers.
"""

from __future__ import annotations

import codecs

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from enseigne.contacts.import_services import import_prepare
from enseigne.contacts.models import ConsentStatus, Contact, ContactImport
from enseigne.contacts.validation import FieldError, clean_email, clean_phone
from tests.exports import export_rows
from tests.factories import ContactFactory
from tests.test_import import run


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


def counts(imp: ContactImport) -> tuple[int, int, int, int]:
    return (imp.created_count, imp.updated_count, imp.unchanged_count, imp.rejected_count)


def report(imp: ContactImport) -> list[tuple[int, str, str, str]]:
    return [(r.row_number, r.kind, r.field, r.value) for r in imp.rejections.all()]


def unit_contacts(world) -> dict[str, tuple[str | None, str]]:
    return {
        c.email or c.phone: (c.phone, c.first_name)
        for c in Contact.objects.filter(unit=world.unit_a)
    }


def assert_every_row_accounted_for(imp: ContactImport) -> None:
    assert imp.status == ContactImport.Status.DONE, imp.error
    assert sum(counts(imp)) == imp.total_rows == imp.processed_rows


# --- Different people who share a phone -------------------------------------------------


def test_a_new_email_with_a_known_phone_is_a_new_person_flagged_as_a_possible_duplicate(
    world, do_import
):
    mother = ContactFactory(
        unit=world.unit_a, email="mere@example.com", phone="+33140000000", first_name="Anne"
    )
    imp = do_import(
        "email;telephone;prenom\n"
        "fils@example.com;01 40 00 00 00;Paul\n"  # the family's landline
        "fille@example.com;+33 1 40 00 00 00;Julie\n"
        "mere@example.com;01 40 00 00 00;\n"
    )
    assert_every_row_accounted_for(imp)
    assert counts(imp) == (2, 0, 1, 0)
    assert unit_contacts(world) == {
        "mere@example.com": ("+33140000000", "Anne"),
        "fils@example.com": (None, "Paul"),
        "fille@example.com": (None, "Julie"),
    }
    assert report(imp) == [
        (2, "duplicate", "telephone", "+33140000000"),
        (3, "duplicate", "telephone", "+33140000000"),
    ]
    mother.refresh_from_db()
    assert mother.first_name == "Anne"


def test_two_new_people_sharing_a_phone_within_the_file_are_two_contacts(world, do_import):
    imp = do_import(
        "email;mobile\n"
        "boutique@example.com;06 11 22 33 44\n"
        "gerant@example.com;06 11 22 33 44\n"
        ";06 11 22 33 44\n"  # no email: the phone names the person (the first one)
    )
    assert_every_row_accounted_for(imp)
    assert counts(imp) == (2, 0, 1, 0)
    assert unit_contacts(world) == {
        "boutique@example.com": ("+33611223344", ""),
        "gerant@example.com": (None, ""),
    }
    assert report(imp) == [(3, "duplicate", "mobile", "+33611223344")]


def test_a_row_without_email_still_matches_on_the_phone(world, do_import):
    ContactFactory(unit=world.unit_a, email="a@example.com", phone="+33611223344", last_name="")
    imp = do_import("nom;mobile\nMartin;06 11 22 33 44\n")
    assert counts(imp) == (0, 1, 0, 0)
    assert Contact.objects.get(unit=world.unit_a).last_name == "Martin"


def test_email_of_one_contact_and_phone_of_another_completes_the_first_and_flags_it(
    world, do_import
):
    ContactFactory(unit=world.unit_a, email="a@example.com", phone=None, last_name="")
    ContactFactory(unit=world.unit_a, email="b@example.com", phone="+33611223344")
    imp = do_import("email;mobile;nom\na@example.com;06 11 22 33 44;Martin\n")
    assert_every_row_accounted_for(imp)
    assert counts(imp) == (0, 1, 0, 0)  # completed (its name), not refused
    a = Contact.objects.get(unit=world.unit_a, email="a@example.com")
    assert (a.phone, a.last_name) == (None, "Martin")
    assert report(imp) == [(2, "duplicate", "mobile", "+33611223344")]


def test_reimporting_a_file_with_shared_phones_creates_nothing_more(world, do_import):
    content = "email;mobile\nx@example.com;06 11 22 33 44\ny@example.com;06 11 22 33 44\n"
    do_import(content)
    again = do_import(content)
    assert counts(again) == (0, 0, 2, 0)
    assert Contact.objects.filter(unit=world.unit_a).count() == 2
    assert report(again) == [(3, "duplicate", "mobile", "+33611223344")]


# --- One bad field no longer rejects the whole contact -----------------------------------


def test_a_bad_value_is_left_out_and_reported_the_contact_imported(world, do_import):
    imp = do_import(
        "email;mobile;naissance;langue;client\n"
        "a@example.com;12;1990-01-01;fr;oui\n"
        "b@example.com;06 12 34 56 78;31/02/1990;klingon;peut-être\n"
        "pas-un-email;06 98 76 54 32;;;\n"  # reachable by phone: imported without the email
        "c@;0800 12 34 56;;;\n"  # nothing valid to reach them by: refused, both reasons
    )
    assert_every_row_accounted_for(imp)
    assert counts(imp) == (3, 0, 0, 1)
    assert report(imp) == [
        (2, "skipped", "mobile", "12"),
        (3, "skipped", "naissance", "31/02/1990"),
        (3, "skipped", "langue", "klingon"),
        (3, "skipped", "client", "peut-être"),
        (4, "skipped", "email", "pas-un-email"),
        (5, "refused", "email", "c@"),
        (5, "refused", "mobile", "0800 12 34 56"),
    ]
    a = Contact.objects.get(email="a@example.com")
    assert (a.phone, str(a.birthday), a.language, a.is_customer) == (None, "1990-01-01", "fr", True)
    b = Contact.objects.get(email="b@example.com")
    assert (b.phone, b.birthday, b.language, b.is_customer) == ("+33612345678", None, "", False)
    assert Contact.objects.filter(phone="+33698765432", email__isnull=True).exists()
    reasons = {r.field: r.reason_text for r in imp.rejections.filter(row_number=3)}
    assert reasons["naissance"] == "not a date (use YYYY-MM-DD or DD/MM/YYYY)"
    assert reasons["client"] == "not yes/no"


def test_an_unreadable_consent_answer_is_not_consent_even_if_the_file_declares_it(world, do_import):
    imp = do_import(
        "email;optin_email\na@example.com;peut-être\nb@example.com;\n",
        consent=["email"],
        wording="v1",
    )
    assert counts(imp) == (2, 0, 0, 0)
    assert report(imp) == [(2, "skipped", "optin_email", "peut-être")]
    assert Contact.objects.get(email="a@example.com").email_consent == ConsentStatus.NONE
    assert Contact.objects.get(email="b@example.com").email_consent == ConsentStatus.GRANTED


# --- The country ----------------------------------------------------------------------


def test_a_country_column_decides_how_national_numbers_are_read(world, do_import):
    imp = do_import(
        "email;mobile;pays\n"
        "ch1@example.com;079 123 45 67;CH\n"
        "ch2@example.com;079 123 45 68;Suisse\n"
        "ch3@example.com;079 123 45 69;Switzerland\n"
        "ch4@example.com;079 123 45 70;che\n"
        "be@example.com;0470 12 34 56;Belgique\n"
        "fr@example.com;06 12 34 56 78;France\n"
        "vide@example.com;06 12 34 56 79;\n"  # empty: the unit's country
        "intl@example.com;+41 79 123 45 71;FR\n"  # international form wins
        "reu@example.com;0692 12 34 56;Réunion\n"
    )
    assert imp.mapping["pays"] == "country"
    assert_every_row_accounted_for(imp)
    assert counts(imp) == (9, 0, 0, 0)
    phones = dict(Contact.objects.filter(unit=world.unit_a).values_list("email", "phone"))
    assert phones == {
        "ch1@example.com": "+41791234567",
        "ch2@example.com": "+41791234568",
        "ch3@example.com": "+41791234569",
        "ch4@example.com": "+41791234570",
        "be@example.com": "+32470123456",
        "fr@example.com": "+33612345678",
        "vide@example.com": "+33612345679",
        "intl@example.com": "+41791234571",
        "reu@example.com": "+262692123456",
    }
    assert report(imp) == []


@pytest.mark.parametrize(
    ("header", "values", "guessed"),
    [
        ("Code", ["CH", "FR", "BE", "CH"], True),
        ("Origine", ["Suisse", "France", "", "Belgique"], True),
        ("Zone", ["CHE", "FRA", "BEL"], True),
        ("Ville", ["Genève", "Lyon", "Bruxelles"], False),
        ("Code", ["CH", "FR"], False),  # too few to tell
        ("Code", ["CH", "FR", "XX"], False),
        ("Langue", ["fr", "de", "it"], False),  # the header places it first
    ],
)
def test_a_column_of_countries_is_proposed_as_the_country_by_its_values(
    world, header, values, guessed
):
    lines = [f"email;mobile;{header}"] + [
        f"p{i}@example.com;079 123 45 6{i};{value}" for i, value in enumerate(values)
    ]
    imp = import_prepare(
        actor=world.manager_a,
        unit=world.unit_a,
        file_name="c.csv",
        content="\n".join(lines).encode(),
    )
    assert (imp.mapping.get(header) == "country") is guessed


def test_an_unknown_country_accepts_only_international_numbers(world, do_import):
    imp = do_import(
        "email;mobile;country\n"
        "a@example.com;06 12 34 56 78;Atlantide\n"
        "b@example.com;+41 79 123 45 67;Atlantide\n"
    )
    assert counts(imp) == (2, 0, 0, 0)
    assert report(imp) == [
        (2, "skipped", "mobile", "06 12 34 56 78"),
        (2, "skipped", "country", "Atlantide"),
        (3, "skipped", "country", "Atlantide"),
    ]
    assert Contact.objects.get(email="a@example.com").phone is None
    assert Contact.objects.get(email="b@example.com").phone == "+41791234567"


def test_without_a_country_column_numbers_are_read_with_the_units_country(world, do_import):
    profile = world.unit_a.profile
    profile.country = "BE"
    profile.save()
    imp = do_import("email;gsm\na@example.com;0470 12 34 56\nb@example.com;06 12 34 56 78\n")
    assert Contact.objects.get(email="a@example.com").phone == "+32470123456"
    # A French national number is not a Belgian one: left out, not read as +32 6…
    assert Contact.objects.get(email="b@example.com").phone is None
    assert report(imp) == [(3, "skipped", "gsm", "06 12 34 56 78")]


@pytest.mark.parametrize(
    ("value", "country", "expected"),
    [
        ("079 123 45 67", "CH", "+41791234567"),
        ("0041 79 123 45 67", "CH", "+41791234567"),
        ("+41 79 123 45 67", None, "+41791234567"),
        ("0692 12 34 56", "RE", "+262692123456"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("0970 12 34 56", "FR", "+33970123456"),
        ("01 40 00 00 00", "FR", "+33140000000"),
    ],
)
def test_numbers_are_read_with_the_country_given(value, country, expected):
    assert clean_phone(value, country) == expected


@pytest.mark.parametrize(
    ("value", "country", "reason"),
    [
        ("0800 12 34 56", "FR", "service number"),  # free
        ("0 800 123 456", "FR", "service number"),
        ("08 99 12 34 56", "FR", "service number"),  # premium
        ("0810 12 34 56", "FR", "service number"),  # shared cost
        ("+33 8 92 12 34 56", "FR", "service number"),
        ("0800 123 456", "CH", "service number"),
        ("+44 800 123 4567", "FR", "service number"),
        ("0262 12 34 56", "FR", "not a valid phone number for FR"),  # Réunion's, not France's
        ("06 12 34 56 78", None, "country is not known"),
        ("06 12 34 56 78", "BE", "not a valid phone number for BE"),
        ("12", "FR", "not a valid phone number"),
        ("téléphone", "FR", "not a phone number"),
    ],
)
def test_numbers_that_would_reach_no_ones_phone_are_refused(value, country, reason):
    with pytest.raises(FieldError, match=reason):
        clean_phone(value, country)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("FR", "FR"),
        ("fr", "FR"),
        (" ch ", "CH"),
        ("CHE", "CH"),
        ("BEL", "BE"),
        ("Suisse", "CH"),
        ("SUISSE", "CH"),
        ("Switzerland", "CH"),
        ("Schweiz", "CH"),
        ("Belgique", "BE"),
        ("België", "BE"),
        ("Allemagne", "DE"),
        ("Royaume-Uni", "GB"),
        ("UK", "GB"),
        ("La Réunion", "RE"),
        ("Réunion", "RE"),
        ("+41", "CH"),
        ("0032", "BE"),
        ("Espagne", "ES"),
        ("Luxembourg", "LU"),
    ],
)
def test_countries_are_read_as_codes_and_names(value, expected):
    from enseigne.contacts.validation import clean_country

    assert clean_country(value) == expected


@pytest.mark.parametrize("value", ["Atlantide", "XX", "42", "", "France métropolitaine 2"])
def test_what_is_not_a_country_says_so(value):
    from enseigne.contacts.validation import clean_country

    with pytest.raises(FieldError, match="not a country"):
        clean_country(value)


# --- Line ends and encodings ----------------------------------------------------------

PEOPLE = [
    ("lea@example.com", "Léa"),
    ("noe@example.com", "Noé"),
    ("zoe@example.com", "Zoë"),
    ("eve@example.com", "Ève"),
]


def _people_file(separator=";", newline="\n", last_newline=True) -> str:
    lines = [f"email{separator}prenom"] + [f"{e}{separator}{n}" for e, n in PEOPLE]
    return newline.join(lines) + (newline if last_newline else "")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(_people_file(newline="\r").encode(), id="bare CR (old Mac)"),
        pytest.param(_people_file(newline="\r", last_newline=False).encode(), id="bare CR, no end"),
        pytest.param(
            b"email;prenom\r\nlea@example.com;L\xc3\xa9a\rnoe@example.com;No\xc3\xa9\n"
            b"zoe@example.com;Zo\xc3\xab\r\n\r\neve@example.com;\xc3\x88ve",
            id="mixed CR, LF, CRLF and a blank line",
        ),
        pytest.param(
            codecs.BOM_UTF16_LE + _people_file("\t", "\r\n").encode("utf-16-le"),
            id="UTF-16 LE with BOM, tabs (Excel Unicode text)",
        ),
        pytest.param(
            codecs.BOM_UTF16_BE + _people_file("\t", "\r\n").encode("utf-16-be"),
            id="UTF-16 BE with BOM",
        ),
        pytest.param(_people_file(",").encode("utf-16-le"), id="UTF-16 LE without BOM"),
        pytest.param(_people_file().encode("utf-8-sig"), id="UTF-8 with BOM"),
        pytest.param(b"\r\n" * 40 + _people_file().encode(), id="blank lines before the header"),
        pytest.param(_people_file(",", "\r\n").encode("cp1252"), id="Windows-1252, CRLF"),
        pytest.param(
            _people_file().encode().replace(b"noe@", b"no\x00e@"), id="one stray NUL byte"
        ),
        pytest.param(
            _people_file("|").encode().replace(b"\n", b"\x00\n", 2), id="two NUL bytes, pipes"
        ),
    ],
)
def test_files_are_read_whatever_their_line_ends_and_encoding(world, do_import, content):
    imp = do_import(content)
    assert imp.columns == ["email", "prenom"]
    assert_every_row_accounted_for(imp)
    assert counts(imp) == (4, 0, 0, 0)
    names = dict(Contact.objects.filter(unit=world.unit_a).values_list("email", "first_name"))
    assert names == dict(PEOPLE)


def test_an_unterminated_quote_refuses_only_the_lines_it_spans(world, do_import):
    imp = do_import(
        "email;prenom;nom\n"
        "a@example.com;Anne;Martin\n"
        'b@example.com;"Bruno;Petit\n'  # opened, never closed
        "c@example.com;Claire;Durand\n"
        'd@example.com;"Denis\nde la Tour";Moreau\n'  # a real line break in a quoted field
        "e@example.com;Emma;Roux\n"
    )
    assert_every_row_accounted_for(imp)
    assert counts(imp) == (4, 0, 0, 1)
    assert [(r.row_number, r.value) for r in imp.rejections.all()] == [
        (3, 'b@example.com;"Bruno;Petit')
    ]
    assert "quotation mark" in imp.rejections.get().reason_text
    assert sorted(unit_contacts(world)) == [
        "a@example.com",
        "c@example.com",
        "d@example.com",
        "e@example.com",
    ]
    assert Contact.objects.get(email="d@example.com").first_name == "Denis\nde la Tour"


def test_a_stray_quote_that_closes_lines_later_refuses_those_lines_not_the_file(world, do_import):
    imp = do_import(
        "email;prenom;nom;ville\n"
        'a@example.com;"Anne;Martin;Lyon\n'
        "b@example.com;Bruno;Petit;Lyon\n"
        'c@example.com;Claire;Durand";Lyon\n'
        "d@example.com;Denis;Moreau;Lyon\n"
        'e@example.com;"Emma;Roux;Lyon'  # the last line, no newline: the quote ends there
    )
    assert_every_row_accounted_for(imp)
    assert imp.total_rows == 5
    assert sorted(unit_contacts(world)) == [
        "b@example.com",
        "c@example.com",
        "d@example.com",
        "e@example.com",
    ]
    assert [r.row_number for r in imp.rejections.filter(kind="refused")] == [2]


def test_a_quote_left_open_at_the_top_of_a_long_file_loses_one_line(world, do_import):
    rows = [f"p{i}@example.com;Nom{i}" for i in range(200)]
    rows[0] = 'p0@example.com;"Nom0'
    imp = do_import("email;nom\n" + "\n".join(rows) + "\n")
    assert_every_row_accounted_for(imp)
    assert counts(imp) == (199, 0, 0, 1)
    assert imp.rejections.get().row_number == 2


@pytest.mark.parametrize(
    ("name", "content", "what"),
    [
        ("c.xlsx", b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml", "an Excel workbook (.xlsx)"),
        ("c.csv", b"PK\x03\x04\x14\x00\x06\x00xl/workbook.xml", "an Excel workbook (.xlsx)"),
        ("c.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "an old-format Excel"),
        ("c.ods", b"PK\x03\x04mimetypeapplication/vnd.oasis.opendocument.spreadsheet", ".ods"),
        ("c.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
        ("c.csv", bytes(range(256)) * 40, "a binary file"),
    ],
)
def test_only_real_spreadsheets_and_binaries_are_refused_saying_what_they_are(
    world, name, content, what
):
    with pytest.raises(ValidationError) as exc:
        import_prepare(actor=world.manager_a, unit=world.unit_a, file_name=name, content=content)
    message = exc.value.message_dict["file"][0]
    assert what in message
    assert "CSV UTF-8" in message and "Text CSV" in message  # how to save it as CSV
    with translation.override("fr"), pytest.raises(ValidationError) as exc:
        import_prepare(actor=world.manager_a, unit=world.unit_a, file_name=name, content=content)
    assert "Enregistrer sous" in exc.value.message_dict["file"][0]


# --- Columns, headers, emails ---------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "Téléphone portable",
        "Mobile",
        "Tél.",
        "TEL",
        "Tél portable",
        "N° de téléphone",
        "telephone_mobile",
        "Numéro de portable",
        "Phone number",
        "  GSM  ",
    ],
)
def test_french_and_english_phone_headers_are_proposed_for_the_phone(world, header):
    imp = import_prepare(
        actor=world.manager_a,
        unit=world.unit_a,
        file_name="c.csv",
        content=f"E-mail;{header};Pays;Ville\na@example.com;0612345678;FR;Lyon\n".encode(),
    )
    assert imp.mapping == {"E-mail": "email", header.strip(): "phone", "Pays": "country"}


def test_columns_matched_to_no_field_are_listed_as_ignored(world, do_import, client):
    imp = do_import("email;ville;code magasin\na@example.com;Lyon;LY01\n")
    assert imp.ignored_columns == ["ville", "code magasin"]
    client.force_login(world.manager_a)
    with translation.override("en"):
        page = client.get(f"/imports/{imp.public_id}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Columns not imported" in page
    assert "<code>ville</code>, <code>code magasin</code>" in page


@pytest.mark.parametrize(
    "value",
    [
        "a" * 65 + "@example.com",
        "prenom.nom." + "x" * 60 + "@example.fr",
        "a+" + "b" * 63 + "@example.com",
        "é" * 33 + "@example.com",  # 66 bytes in UTF-8
    ],
)
def test_a_local_part_over_64_characters_is_refused(value):
    with pytest.raises(FieldError, match="more than 64 characters before the @"):
        clean_email(value)


def test_a_local_part_of_64_characters_is_accepted():
    assert clean_email("a" * 64 + "@example.com") == "a" * 64 + "@example.com"
    assert clean_email("a." * 31 + "bc@example.com") == "a." * 31 + "bc@example.com"


@pytest.mark.parametrize(
    ("value", "french"),
    [
        ("sans-arobase.example.com", "pas de signe @"),
        ("@example.com", "rien avant le @"),
        ("jean@", "rien après le @"),
        ("jean..dupont@example.com", "deux points à la suite"),
        ("jean@localhost", "pas de point dans le domaine après le @"),
        ("jean@exemple.invalid", "nom de domaine réservé"),
        ("Jean Dupont <jean@example.com>", "un nom ou des <…> autour de l’adresse"),
        ("jean@exa mple.com", "caractères non permis dans le domaine après le @"),
        ("jean(dupont)@example.com", "caractères non permis avant le @"),
        ("a" * 65 + "@example.com", "plus de 64 caractères avant le @"),
    ],
)
def test_email_validator_reasons_are_translated(value, french):
    with translation.override("fr"), pytest.raises(FieldError) as exc:
        clean_email(value)
    assert str(exc.value) == f"adresse e-mail non valide ({french})"
    with translation.override("en"), pytest.raises(FieldError) as exc:
        clean_email(value)
    assert str(exc.value).startswith("not a valid email address (")
    assert "@-sign" not in str(exc.value)  # not email-validator's own words


# --- The report page ------------------------------------------------------------------

REPORT_FILE = (
    "email;mobile;naissance;ville\n"
    "a@example.com;06 11 22 33 44;1990-01-01;Lyon\n"
    "b@example.com;06 11 22 33 44;;Lyon\n"  # possible duplicate of a
    "c@example.com;;hier;Lyon\n"  # value left out
    "pas-un-email;;;Lyon\n"  # refused
)


@pytest.mark.parametrize(
    ("language", "titles"),
    [
        ("en", ["Rows not imported", "Values left out", "Possible duplicates to check", "Columns not imported"]),
        ("fr", ["Lignes non importées", "Valeurs non reprises", "Doublons possibles à vérifier", "Colonnes non importées"]),
    ],
)  # fmt: skip
def test_the_report_page_shows_each_kind_of_line_in_the_users_language(
    world, do_import, client, language, titles
):
    imp = do_import(REPORT_FILE)
    assert counts(imp) == (3, 0, 0, 1)
    client.force_login(world.manager_a)
    with translation.override(language):
        page = client.get(
            f"/imports/{imp.public_id}/", HTTP_ACCEPT_LANGUAGE=language
        ).content.decode()
    for title in titles:
        assert title in page
    for section, row in (("refused", "5"), ("skipped", "4"), ("duplicate", "3")):
        start = page.index(f'id="report-{section}"')
        table = page[start : page.index("</section>", start)]
        assert f"<td>{row}</td>" in table
    assert "+33611223344" in page[page.index('id="report-duplicate"') :]
    rows = export_rows(client.get(f"/imports/{imp.public_id}/rejections.csv"))
    assert rows[0] == ["Row", "Column", "Value", "Reason", "Kind"]
    assert len(rows) == 4
