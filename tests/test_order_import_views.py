"""The sales import pages: upload, mapping, dry run, the worker's run, the report, scoping."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from enseigne.brand.models import Asset
from enseigne.commerce.models import Order, OrderImport, OrderLine
from tests.factories import PASSWORD, ContactFactory

# What a till's export opened and saved again in Excel looks like: Windows-1252, ";",
# French headers, decimal commas, CRLF.
FILE = (
    "N° ticket;Date;Contact;Référence;Quantité;Prix unitaire\r\n"
    "T-1;20/11/2026 10:30;{own};P-1;2;49,00\r\n"
    "T-1;20/11/2026 10:30;{own};INCONNU;1;19,90\r\n"
    "T-2;21/11/2026;;P-1;1;abc\r\n"
    "T-3;21/11/2026;{foreign};P-1;1;10,00\r\n"
    "T-4;22/11/2026;{missing};P-1;1;10,00\r\n"
    "T-5;22/11/2026;;P-1;1;12,50\r\n"
)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def setup(world, client):
    Asset.objects.create(
        kind=Asset.Kind.PRODUCT,
        name="Pull",
        shared_path=world.root.path,
        data={"sku": "P-1", "name": "Pull", "category": "Mailles", "price": "49.00"},
    )
    own = ContactFactory(unit=world.unit_a)
    foreign = ContactFactory(unit=world.unit_b)
    content = FILE.format(
        own=own.public_id, foreign=foreign.public_id, missing="5a4c6f6e-0000-4000-8000-000000000000"
    ).encode("cp1252")
    assert client.login(username=world.manager_a.email, password=PASSWORD)
    return content, foreign


def _upload(client, world, content):
    response = client.post(
        reverse("order_import_list"),
        {
            "unit": str(world.unit_a.public_id),
            "file": SimpleUploadedFile("ventes.csv", content, content_type="text/csv"),
        },
    )
    assert response.status_code == 302, response.content.decode()[:500]
    return OrderImport.objects.get(public_id=response.url.rstrip("/").rsplit("/", 1)[1])


def _mapping_post(order_import, **extra):
    data = {f"map_{i}": order_import.mapping.get(c, "") for i, c in enumerate(order_import.columns)}
    return {**data, **extra}


def test_dry_run_then_for_real_then_again_counts_each_order_once(world, client, setup, post):
    content, foreign = setup
    order_import = _upload(client, world, content)
    page = client.get(reverse("order_import_detail", args=[order_import.public_id]))
    html = page.content.decode()
    assert "6 rows in the file." in html
    # The French headers are proposed their fields, in the contacts' mapping table.
    assert order_import.mapping == {
        "N° ticket": "order_id",
        "Date": "occurred_at",
        "Contact": "contact",
        "Référence": "sku",
        "Quantité": "quantity",
        "Prix unitaire": "unit_amount",
    }
    assert '<option value="sku" selected>' in html

    detail = reverse("order_import_detail", args=[order_import.public_id])
    response = post(detail, _mapping_post(order_import, dry_run="1"))
    assert response.status_code == 302
    order_import.refresh_from_db()
    assert (order_import.status, order_import.dry_run) == ("done", True)
    assert Order.objects.count() == 0  # the dry run recorded nothing
    html = client.get(detail).content.decode()
    assert 'id="report-refused"' in html and 'id="report-flagged"' in html
    assert 'id="import-for-real"' in html

    # The worker's report: row, column, value, rule; the unknown SKU kept and flagged.
    rows = list(order_import.problems.values_list("row_number", "kind", "column", "value", "rule"))
    assert rows == [
        (3, "flagged", "Référence", "INCONNU", "unknown_sku"),
        (4, "refused", "Prix unitaire", "abc", "not_a_number"),
        (5, "refused", "Contact", str(foreign.public_id), "unknown_contact"),
        (6, "refused", "Contact", "5a4c6f6e-0000-4000-8000-000000000000", "unknown_contact"),
    ]
    # Another store's contact is refused in the very words of an unknown one: nothing leaks.
    reasons = {p.row_number: p.reason_text for p in order_import.problems.all()}
    assert reasons[5] == reasons[6] == "No contact with this id in unit Lyon."
    assert world.unit_b.name not in html

    response = post(detail, {"for_real": "1"})
    real = OrderImport.objects.get(public_id=response.url.rstrip("/").rsplit("/", 1)[1])
    assert real.pk != order_import.pk
    assert (real.status, real.dry_run, real.created_count, real.line_count) == ("done", False, 2, 3)
    assert Order.objects.filter(unit=world.unit_a).count() == 2
    assert OrderLine.objects.filter(unknown_sku=True).count() == 1
    # A second click on "for real" (another tab, a double click) leads to the same import.
    imports = OrderImport.objects.count()
    assert post(detail, {"for_real": "1"}).url == response.url
    assert OrderImport.objects.count() == imports
    assert real.file_path == order_import.file_path

    # The same file sent again: every order is a duplicate, nothing counted twice.
    again = _upload(client, world, content)
    post(reverse("order_import_detail", args=[again.public_id]), _mapping_post(again))
    again.refresh_from_db()
    assert (again.created_count, again.duplicate_count) == (0, 2)
    assert Order.objects.count() == 2

    report = client.get(reverse("order_import_problems", args=[real.public_id]))
    body = b"".join(report.streaming_content).decode("utf-8-sig")
    assert body.splitlines()[0] == "Row;Column;Value;Rule;Reason;Kind"
    assert "unknown_sku" in body and "not_a_number" in body


def test_a_mapping_without_an_order_id_is_refused_on_the_page(world, client, setup):
    order_import = _upload(client, world, setup[0])
    data = _mapping_post(order_import)
    data["map_0"] = ""
    html = client.post(
        reverse("order_import_detail", args=[order_import.public_id]), data
    ).content.decode()
    assert 'id="mapping-error"' in html and "Map a column to the order id." in html
    order_import.refresh_from_db()
    assert order_import.status == "mapping"


def test_progress_refreshes_the_page_when_done(world, client, setup, post):
    order_import = _upload(client, world, setup[0])
    url = reverse("order_import_detail", args=[order_import.public_id])
    assert "HX-Refresh" not in client.get(url, HTTP_HX_REQUEST="true")
    post(
        reverse("order_import_detail", args=[order_import.public_id]),
        _mapping_post(order_import, dry_run="1"),
    )
    response = client.get(url, HTTP_HX_REQUEST="true")
    assert response["HX-Refresh"] == "true"
    assert 'id="count-unknown-sku">1<' in response.content.decode()


def test_another_stores_imports_are_not_found_and_not_listed(world, client, setup):
    order_import = _upload(client, world, setup[0])
    client.logout()
    assert client.login(username=world.manager_b.email, password=PASSWORD)
    for name in ("order_import_detail", "order_import_problems"):
        assert client.get(reverse(name, args=[order_import.public_id])).status_code == 404
    url = reverse("order_import_detail", args=[order_import.public_id])
    assert client.get(url, HTTP_HX_REQUEST="true").status_code == 404
    assert client.post(url, {"for_real": "1"}).status_code == 404
    response = client.post(
        reverse("order_import_detail", args=[order_import.public_id]),
        _mapping_post(order_import),
    )
    assert response.status_code == 404
    order_import.refresh_from_db()
    assert order_import.status == "mapping"
    assert "ventes.csv" not in client.get(reverse("order_import_list")).content.decode()
    # HQ sees every store's imports and may upload into any store.
    client.logout()
    assert client.login(username=world.hq_admin.email, password=PASSWORD)
    assert "ventes.csv" in client.get(reverse("order_import_list")).content.decode()
    hq_import = _upload(client, world, setup[0])
    assert hq_import.unit == world.unit_a


def test_every_import_page_refuses_a_file_over_the_limit_and_names_it(world, client, settings):
    """Contacts, sales and the catalogue share one limit and one message (lib.imports)."""
    from enseigne.contacts.models import ContactImport

    settings.IMPORT_MAX_BYTES = 1_000_000
    big = b"email\r\n" + b"x" * 1_000_000
    assert client.login(username=world.hq_admin.email, password=PASSWORD)
    pages = [
        ("import_list", "unit", world.unit_a),
        ("order_import_list", "unit", world.unit_a),
        ("catalogue_import", "node", world.root),
    ]
    for name, field, node in pages:
        response = client.post(
            reverse(name),
            {field: str(node.public_id), "file": SimpleUploadedFile("gros.csv", big)},
        )
        assert response.status_code == 200, name
        assert "larger than 1 MB" in response.content.decode(), name
    assert not ContactImport.objects.exists() and not OrderImport.objects.exists()
    assert not Asset.objects.exists()
