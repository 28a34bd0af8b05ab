"""HQ's product catalogue page, the way sales and contacts are imported: upload, the column
mapping (French headers guessed), a dry run ticked by default, the worker's progress, the
row-by-row report (on the page and as CSV), then "import for real"; scoping and the shapes
of file a spreadsheet writes."""

from __future__ import annotations

import codecs
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from enseigne.brand.models import Asset
from enseigne.commerce.models import CatalogueImport
from tests.factories import PASSWORD
from tests.test_order_import import _media  # noqa: F401 (a fixture: files under tmp_path)

FR = {"HTTP_ACCEPT_LANGUAGE": "fr"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}

# A catalogue opened and saved again in Excel: Windows-1252, ";", French headers, decimal
# commas, CRLF; a row with no SKU, a price that is not a number, an SKU seen before.
EXCEL = (
    "Référence;Libellé;Famille;Prix TTC;Stock\r\n"
    "P-9;Plaid laine;Textile;79,00;3\r\n"
    ";Sans référence;Textile;10;1\r\n"
    "P-8;Bougie;Parfums;douze;2\r\n"
    "P-7;Écharpe;Textile;1 299,50;0\r\n"
    "P-9;Plaid (doublon);Textile;80;1\r\n"
)


@pytest.fixture
def hq(world, client):
    assert client.login(username=world.hq_admin.email, password=PASSWORD)
    return client


def _upload(client, world, content: bytes, *, name="catalogue.csv", node=None, **headers):
    return client.post(
        reverse("catalogue_import"),
        {
            "node": str((node or world.root).public_id),
            "file": SimpleUploadedFile(name, content, content_type="text/csv"),
        },
        **headers,
    )


def _uploaded(client, world, content: bytes, **kwargs) -> CatalogueImport:
    response = _upload(client, world, content, **kwargs)
    assert response.status_code == 302, response.content.decode()[:800]
    return CatalogueImport.objects.get(public_id=response.url.rstrip("/").rsplit("/", 1)[1])


def _mapping_post(imp, **extra):
    return {**{f"map_{i}": imp.mapping.get(c, "") for i, c in enumerate(imp.columns)}, **extra}


def _products():
    return sorted(
        (a.data["sku"], a.name, a.data.get("category", ""), a.data.get("price", ""))
        for a in Asset.objects.filter(kind=Asset.Kind.PRODUCT)
    )


def test_upload_map_dry_run_then_for_real_with_the_report(world, hq, post):
    imp = _uploaded(hq, world, EXCEL.encode("cp1252"))
    detail = reverse("catalogue_import_detail", args=[imp.public_id])
    html = hq.get(detail, **EN).content.decode()
    assert imp.mapping == {
        "Référence": "sku",
        "Libellé": "name",
        "Famille": "category",
        "Prix TTC": "price",
    }  # "Stock" is no product field: left to the user
    assert '<option value="sku" selected>' in html and "5 rows in the file." in html
    assert 'name="dry_run" value="1" id="dry_run" checked' in html  # ticked by default

    # Without the SKU mapped, the mapping is refused and says which field is missing.
    html = post(detail, _mapping_post(imp, map_0="", dry_run="1"), **EN).content.decode()
    assert "Map a column to: SKU." in html
    imp.refresh_from_db()
    assert imp.status == "mapping"

    response = post(detail, _mapping_post(imp, dry_run="1"))
    assert response.status_code == 302
    imp.refresh_from_db()
    assert (imp.status, imp.dry_run, imp.created_count, imp.rejected_count) == ("done", True, 2, 3)
    assert _products() == []  # the dry run changed nothing
    html = hq.get(detail, **EN).content.decode()
    assert 'id="report-refused"' in html and 'id="import-for-real"' in html
    assert "<code>Stock</code>" in html  # the columns left out are named
    assert list(imp.problems.values_list("row_number", "column", "value")) == [
        (3, "Référence", ""),
        (4, "Prix TTC", "douze"),
        (6, "Référence", "P-9"),
    ]
    reasons = [p.reason_text for p in imp.problems.all()]
    assert reasons[2] == "The same SKU as line 2."

    # htmx polls the same address for the progress; a finished import refreshes the page.
    progress = hq.get(detail, HTTP_HX_REQUEST="true")
    assert progress["HX-Refresh"] == "true" and 'id="import-progress"' in progress.content.decode()

    report = hq.get(reverse("catalogue_import_problems", args=[imp.public_id]), **EN)
    lines = b"".join(report.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0].split(";")[:3] == ["Row", "Column", "Value"]
    assert lines[2].startswith("4;Prix TTC;douze;")

    response = post(detail, {"for_real": "1"})
    real = CatalogueImport.objects.get(public_id=response.url.rstrip("/").rsplit("/", 1)[1])
    assert (real.status, real.dry_run, real.created_count, real.file_path) == (
        "done",
        False,
        2,
        imp.file_path,
    )
    assert post(detail, {"for_real": "1"}).url == response.url  # a second click: the same one
    assert _products() == [
        ("P-7", "Écharpe", "Textile", "1299.50"),
        ("P-9", "Plaid laine", "Textile", "79.00"),
    ]
    product = Asset.objects.get(data__sku="P-9")
    assert (product.unit_path, product.shared_path) == ("", world.root.path)

    # The same file again: found by SKU, nothing created twice.
    again = _uploaded(hq, world, EXCEL.encode("cp1252"))
    post(reverse("catalogue_import_detail", args=[again.public_id]), _mapping_post(again))
    again.refresh_from_db()
    assert (again.created_count, again.updated_count, again.unchanged_count) == (0, 0, 2)


SHAPES = {
    "utf-8 with BOM, commas": codecs.BOM_UTF8 + b"sku,nom,prix\nB-1,Bol,3.5\n",
    "latin-1, semicolons": "Référence;Désignation;Prix\nL-1;Crème;4,00\n".encode("latin-1"),
    "cp1252, curly quotes": "sku;name;price\nC-1;L’été “doux”;5\n".encode("cp1252"),
    "NUL bytes": b"sku,name,price\nN-\x001,Nappe,6\n",
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_files_a_spreadsheet_writes(world, hq, post, shape):
    imp = _uploaded(hq, world, SHAPES[shape])
    assert set(imp.mapping.values()) == {"sku", "name", "price"}
    post(reverse("catalogue_import_detail", args=[imp.public_id]), _mapping_post(imp))
    imp.refresh_from_db()
    assert (imp.status, imp.created_count, imp.rejected_count) == ("done", 1, 0)
    expected = {
        "utf-8 with BOM, commas": ("B-1", "Bol", "", "3.50"),
        "latin-1, semicolons": ("L-1", "Crème", "", "4.00"),
        "cp1252, curly quotes": ("C-1", "L’été “doux”", "", "5.00"),
        "NUL bytes": ("N-1", "Nappe", "", "6.00"),
    }[shape]
    assert _products() == [expected]


def test_a_header_only_file_imports_nothing_and_says_so(world, hq, post):
    imp = _uploaded(hq, world, b"sku;name\r\n")
    assert imp.total_rows == 0
    post(reverse("catalogue_import_detail", args=[imp.public_id]), _mapping_post(imp))
    imp.refresh_from_db()
    assert (imp.status, imp.processed_rows, imp.created_count) == ("done", 0, 0)


@pytest.mark.parametrize(
    ("content", "english", "french"),
    [
        (b"", "The submitted file is empty.", "Le fichier soumis est vide."),
        (b"\r\n\r\n", "The file is empty or its first line", "Le fichier est vide ou sa première"),
        (b"sku;sku\nA;B\n", "Two columns have the same name", "Deux colonnes portent le même nom"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "an image", "une image"),
    ],
)
def test_a_file_that_is_not_a_catalogue_is_refused_on_the_form(world, hq, content, english, french):
    for headers, words in ((EN, english), (FR, french)):
        response = _upload(hq, world, content, **headers)
        assert response.status_code == 200
        errors = re.findall(r'text-danger small">([^<]*)', response.content.decode())
        assert len(errors) == 1 and words in errors[0], errors
    assert not CatalogueImport.objects.exists()


def test_an_oversized_file_is_refused_before_it_is_read(world, hq, settings):
    settings.IMPORT_MAX_BYTES = 1_000_000
    for headers, words in ((EN, "larger than 1 MB"), (FR, "Le fichier dépasse 1 Mo.")):
        response = _upload(hq, world, b"sku,name\n" + b"x" * 1_000_000, **headers)
        assert words in response.content.decode()
    assert not CatalogueImport.objects.exists()


def test_the_pages_speak_french(world, hq, post):
    page = hq.get(reverse("catalogue_import"), **FR).content.decode()
    assert "Importer le catalogue produits" in page and "Aucun import pour l’instant." in page
    imp = _uploaded(hq, world, EXCEL.encode("cp1252"))
    detail = reverse("catalogue_import_detail", args=[imp.public_id])
    html = hq.get(detail, **FR).content.decode()
    assert "Champ produit" in html and "Simulation" in html
    post(detail, _mapping_post(imp, dry_run="1"), **FR)
    html = hq.get(detail, **FR).content.decode()
    assert "La même référence (SKU) qu’à la ligne 2." in html  # in the starter’s language
    assert "Importer ce fichier pour de bon" in html


def test_only_hq_imports_the_catalogue_and_sees_its_imports(world, client, post):
    assert client.login(username=world.hq_admin.email, password=PASSWORD)
    imp = _uploaded(client, world, b"sku,name\nA-1,Sac\n")
    detail = reverse("catalogue_import_detail", args=[imp.public_id])
    for user in (world.region_manager, world.manager_a, world.staff_a, world.manager_b):
        client.logout()
        assert client.login(username=user.email, password=PASSWORD)
        assert client.get(reverse("catalogue_import")).status_code == 403
        assert _upload(client, world, b"sku,name\nB-1,Sac\n").status_code == 403
        assert client.get(detail).status_code == 404  # another's import: as if none existed
        assert post(detail, _mapping_post(imp)).status_code == 404
        report = reverse("catalogue_import_problems", args=[imp.public_id])
        assert client.get(report).status_code == 404
    imp.refresh_from_db()
    assert (imp.status, CatalogueImport.objects.count(), _products()) == ("mapping", 1, [])


def test_a_store_sees_only_its_own_sales_imports(world, client):
    from enseigne.commerce.models import OrderImport

    theirs = OrderImport.objects.create(
        unit=world.unit_b,
        unit_path=world.unit_b.path,
        file_name="ventes-b.csv",
        file_path="/nonexistent.csv",
        file_sha256="0" * 64,
        columns=["order_id"],
        status=OrderImport.Status.DONE,
    )
    assert client.login(username=world.manager_a.email, password=PASSWORD)
    listing = client.get(reverse("order_import_list")).content.decode()
    assert "ventes-b.csv" not in listing
    assert client.get(reverse("order_import_detail", args=[theirs.public_id])).status_code == 404
    assert client.get(reverse("order_import_problems", args=[theirs.public_id])).status_code == 404
