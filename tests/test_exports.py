"""Every CSV the UI lets a user download opens in a French Excel as it is: UTF-8 with a
byte-order mark, ";" between columns unless the user chose ",", column titles in the user's
language, formula cells neutralised (enseigne/lib/csvexport.py, enseigne/lib/csvsafe.py)."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse
from django.utils import timezone
from hypothesis import example, given
from hypothesis import strategies as st

from enseigne.analytics import rollups
from enseigne.delivery import events
from enseigne.delivery.models import Event
from enseigne.lib.csvsafe import BOM, csv_rows, neutralise
from tests.campaign_helpers import local_campaign
from tests.exports import BOM as BOM_BYTES
from tests.exports import export_body, export_dicts, export_rows
from tests.factories import ContactFactory
from tests.test_import import run

FRENCH_HEADERS = {
    "contacts": [
        "Identifiant",
        "Point de vente",
        "Email",
        "Téléphone",
        "Prénom",
        "Nom",
        "Date de naissance",
        "Langue",
        "Consentement email",
        "Consentement SMS",
        "Étiquettes",
        "Créé le",
    ],
    "rejections": ["Ligne", "Colonne", "Valeur", "Motif", "Type"],
    "report": [
        "Point de vente",
        "Code",
        "Relais",
        "Envoyés",
        "Délivrés",
        "Ouvertures",
        "Clics",
        "Cliqueurs uniques",
        "Taux de clic (%)",
        "Désinscriptions",
        "Rejets (bounces)",
        "Plaintes",
        "Ventes",
        "Chiffre d'affaires",
        "Coût",
    ],
}
ENGLISH_FIRST = {
    "contacts": ["Identifier", "Unit", "Email", "Phone", "First name"],
    "rejections": ["Row", "Column", "Value", "Reason", "Kind"],
    "report": ["Unit", "Code", "Relay", "Sent", "Delivered"],
}
HOSTILE = '=HYPERLINK("http://evil";"a;b")'
# A formula in each download's data rows (an import refuses the first as an e-mail address).
FORMULA = {"contacts": HOSTILE, "rejections": "=1+2", "report": HOSTILE}


@pytest.fixture
def exports(world, client, django_capture_on_commit_callbacks):
    """The URL of each download, each with at least one data row holding a formula."""
    ContactFactory(unit=world.unit_a, first_name=HOSTILE, last_name='Dupré "Jo"\nLyon')
    imp = run(
        world,
        "email;nom\nnot-an-email;Martin\n=1+2;x\n",
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )
    world.unit_a.name = HOSTILE
    world.unit_a.save()
    campaign = local_campaign(world)
    events.write(
        [
            events.row(
                occurred_at=timezone.now(),
                kind=Event.Kind.SENT,
                channel="email",
                campaign_id=campaign.pk,
                unit_id=world.unit_a.pk,
                unit_path=world.unit_a.path,
                recipient_id=1,
            )
        ]
    )
    rollups.refresh()
    client.force_login(world.manager_a)
    client.cookies["django_language"] = "fr"  # the tests' default is English
    return {
        "contacts": reverse("contact_export") + "?q=",
        "rejections": reverse("import_rejections", args=[imp.public_id]),
        "report": reverse("campaign_report_csv", args=[campaign.public_id]),
    }


@pytest.mark.parametrize("kind", ["contacts", "rejections", "report"])
def test_each_export_is_french_excel_csv_by_default(exports, client, kind):
    response = client.get(exports[kind])
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="')
    body = export_body(response)
    assert body.startswith(BOM_BYTES) and not body.startswith(BOM_BYTES * 2)
    first_line = body[len(BOM_BYTES) :].split(b"\r\n")[0].decode()
    assert first_line == ";".join(FRENCH_HEADERS[kind])
    rows = export_rows(client.get(exports[kind]))
    assert rows[0] == FRENCH_HEADERS[kind]
    assert len(rows) >= 2
    assert {len(row) for row in rows} == {len(FRENCH_HEADERS[kind])}
    cells = [cell for row in rows[1:] for cell in row]
    assert "'" + FORMULA[kind] in cells
    assert not [cell for cell in cells if cell.startswith(("=", "+", "@"))]


@pytest.mark.parametrize("kind", ["contacts", "rejections", "report"])
def test_comma_when_chosen(exports, client, kind):
    joiner = "&" if "?" in exports[kind] else "?"
    response = client.get(exports[kind] + joiner + "sep=comma")
    rows = export_rows(response, separator=",")
    assert rows[0] == FRENCH_HEADERS[kind]
    assert {len(row) for row in rows} == {len(FRENCH_HEADERS[kind])}
    assert "'" + FORMULA[kind] in [cell for row in rows[1:] for cell in row]


def test_the_choice_is_remembered_for_every_export_until_changed(world, exports, client):
    def separator_of(url):
        header_line = export_body(client.get(url))[3:].split(b"\r\n")[0].decode()
        return ";" if header_line.count(";") > header_line.count(",") else ","

    assert separator_of(exports["report"]) == ";"
    assert separator_of(exports["contacts"] + "&sep=comma") == ","
    assert [separator_of(exports[kind]) for kind in exports] == [",", ",", ","]
    # Anything else on the link is no choice: the remembered one stays.
    assert separator_of(exports["rejections"] + "?sep=tab") == ","
    assert separator_of(exports["rejections"] + "?sep=") == ","
    assert separator_of(exports["report"] + "?sep=semicolon") == ";"
    assert [separator_of(exports[kind]) for kind in exports] == [";", ";", ";"]
    # Another user's session starts from the default.
    client.get(exports["report"] + "?sep=comma")
    client.logout()
    client.force_login(world.hq_admin)
    assert separator_of(exports["report"]) == ";"


@pytest.mark.parametrize("kind", ["contacts", "rejections", "report"])
def test_english_headers_in_the_english_ui(exports, client, kind):
    client.cookies["django_language"] = "en"
    rows = export_rows(client.get(exports[kind]))
    assert rows[0][:5] == ENGLISH_FIRST[kind]
    assert not set(rows[0]) & (set(FRENCH_HEADERS[kind]) - {"Code", "Email"})


def test_cells_with_separators_quotes_and_line_breaks_come_back_whole(exports, client):
    for separator, name in ((";", "semicolon"), (",", "comma")):
        rows = export_dicts(client.get(exports["contacts"] + f"&sep={name}"), separator)
        mine = [row for row in rows if row["Prénom"].endswith(HOSTILE)]
        assert [(row["Prénom"], row["Nom"]) for row in mine] == [
            ("'" + HOSTILE, 'Dupré "Jo"\nLyon')
        ]


def test_the_export_links_offer_both_separators(exports, client):
    page = client.get(reverse("contact_list") + "?q=dup").content.decode()
    assert 'id="export-link" href="/contacts/export.csv?q=dup"' in page
    assert 'href="/contacts/export.csv?q=dup&amp;sep=semicolon" aria-current="true"' in page
    assert 'href="/contacts/export.csv?q=dup&amp;sep=comma"' in page
    client.get(exports["contacts"] + "&sep=comma")
    page = client.get(reverse("contact_list")).content.decode()
    assert 'href="/contacts/export.csv?&amp;sep=comma" aria-current="true"' in page
    assert "Point-virgule ; (Excel en français)" in page


cell_text = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=30
)


@given(rows=st.lists(st.lists(cell_text, min_size=3, max_size=3), max_size=6))
@example(rows=[["=1+1", "a;b", 'say "hi"'], ["line\nbreak", "\r", "\ufeff=x"]])
@example(rows=[["-3", "+33612345678", "@SUM(A1)"]])
def test_any_cells_round_trip_through_the_excel_dialect(rows):
    header = ["Prénom", "Nom", "Note"]
    for separator in (";", ","):
        data = b"".join(csv_rows(header, rows, separator=separator))
        assert data.startswith(BOM.encode())
        text = data.decode("utf-8")[1:]
        parsed = list(csv.reader(io.StringIO(text, newline=""), "excel", delimiter=separator))
        assert parsed == [header] + [[neutralise(cell) for cell in row] for row in rows]
        # What comes back is already safe: neutralising it again changes nothing.
        assert all(neutralise(cell) == cell for row in parsed[1:] for cell in row)
