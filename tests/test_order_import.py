"""CSV imports for purchases: order lines grouped by order id, and the product catalogue."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command

from enseigne.brand.catalogue import catalogue_import
from enseigne.brand.models import Asset
from enseigne.commerce.importer import guess_mapping, order_import_prepare, start_and_run
from enseigne.commerce.models import Order, OrderImport, OrderImportProblem, OrderLine
from enseigne.network.models import AuditEvent
from tests.factories import ContactFactory


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _import(world, content: bytes, *, dry_run=False, mapping=None, name="ventes.csv"):
    order_import = order_import_prepare(
        actor=world.manager_a, unit=world.unit_a, file_name=name, content=content
    )
    return start_and_run(
        actor=world.manager_a,
        order_import=order_import,
        mapping=mapping or order_import.mapping,
        dry_run=dry_run,
    )


def _report(order_import):
    return [
        (p.row_number, p.kind, p.column, p.value, p.rule)
        for p in OrderImportProblem.objects.filter(order_import=order_import)
    ]


@pytest.fixture
def product(world):
    return Asset.objects.create(
        kind=Asset.Kind.PRODUCT,
        name="Pull",
        shared_path=world.root.path,
        data={"sku": "P-1", "name": "Pull", "category": "Mailles", "price": "49.00"},
    )


EXCEL = (
    "N° commande;Date;E-mail;Référence;Catégorie;Quantité;Prix unitaire;Remise;Retour\r\n"
    "T-1;20/11/2026 10:30;{email};P-1;;2;49,00;5,00;\r\n"
    "T-1;20/11/2026 10:30;{email};INCONNU;Écharpes;1;19,90;;\r\n"
    "T-2;21/11/2026;;P-1;;-1;49,00;;oui\r\n"
    "T-3;21/11/2026;;P-1;;1;abc;;\r\n"
    "T-3;21/11/2026;;P-1;;1;10,00;;\r\n"
    ";21/11/2026;;P-1;;1;10,00;;\r\n"
    "T-4;22/11/2026;;P-1;;1;1 299,50;;\r\n"
    "T-4;23/11/2026;;P-1;;1;10;;\r\n"
)


def test_an_excel_file_bom_semicolons_latin1_decimal_commas(world, product):
    buyer = ContactFactory(unit=world.unit_a)
    text = EXCEL.format(email=buyer.email)
    for content in (b"\xef\xbb\xbf" + text.encode("utf-8"), text.encode("cp1252")):
        Order.objects.all().delete()
        done = _import(world, content)
        assert done.status == OrderImport.Status.DONE
        assert done.mapping == {
            "N° commande": "order_id",
            "Date": "occurred_at",
            "E-mail": "email",
            "Référence": "sku",
            "Catégorie": "category",
            "Quantité": "quantity",
            "Prix unitaire": "unit_amount",
            "Remise": "discount",
            "Retour": "is_return",
        }
        assert (done.created_count, done.duplicate_count, done.refused_count) == (3, 0, 1)
        assert (done.total_rows, done.line_count, done.unknown_sku_lines) == (8, 4, 1)
        assert done.refused_rows == 4  # T-3's two rows, the row without an id, T-4's second date
        assert _report(done) == [
            (3, "flagged", "Référence", "INCONNU", "unknown_sku"),
            (5, "refused", "Prix unitaire", "abc", "not_a_number"),
            (7, "refused", "N° commande", "", "required"),
            (9, "refused", "Date", "23/11/2026", "not_a_choice"),
        ]
        t1 = Order.objects.get(external_id="T-1")
        assert (t1.contact_id, t1.total, t1.source) == (buyer.pk, Decimal("112.90"), "csv")
        assert list(t1.lines.order_by("position").values_list("sku", "category", "amount")) == [
            ("P-1", "Mailles", Decimal("93.00")),
            ("INCONNU", "Écharpes", Decimal("19.90")),
        ]
        t2 = Order.objects.get(external_id="T-2")
        assert (t2.total, t2.lines.get().is_return) == (Decimal("-49.00"), True)
        assert Order.objects.get(external_id="T-4").total == Decimal("1299.50")


def test_a_dry_run_writes_only_the_report_and_a_second_import_nothing(world, product):
    content = EXCEL.format(email="").encode("utf-8")
    dry = _import(world, content, dry_run=True)
    assert (dry.dry_run, dry.created_count, dry.refused_count) == (True, 3, 1)
    assert Order.objects.count() == 0 and OrderLine.objects.count() == 0
    assert OrderImportProblem.objects.filter(order_import=dry).count() == 4
    first = _import(world, content)
    assert first.created_count == 3 and Order.objects.count() == 3
    again = _import(world, content)
    assert (again.created_count, again.duplicate_count) == (0, 3)
    assert Order.objects.count() == 3 and OrderLine.objects.count() == 4
    # The dry run of an imported file says so.
    assert _import(world, content, dry_run=True).duplicate_count == 3


def test_mapping_is_checked_and_rights_too(world):
    order_import = order_import_prepare(
        actor=world.manager_a, unit=world.unit_a, file_name="x.csv", content=b"a;b\n1;2\n"
    )
    assert order_import.mapping == {}
    with pytest.raises(ValidationError, match="order id"):
        start_and_run(
            actor=world.manager_a, order_import=order_import, mapping={"a": "sku"}, dry_run=False
        )
    with pytest.raises(ValidationError, match="Unknown field"):
        start_and_run(
            actor=world.manager_a, order_import=order_import, mapping={"a": "prix"}, dry_run=False
        )
    with pytest.raises(PermissionDenied):
        order_import_prepare(
            actor=world.staff_a, unit=world.unit_a, file_name="x.csv", content=b"a\n1\n"
        )
    with pytest.raises(PermissionDenied):
        order_import_prepare(
            actor=world.manager_b, unit=world.unit_a, file_name="x.csv", content=b"a\n1\n"
        )
    with pytest.raises(ValidationError, match="Excel workbook"):
        order_import_prepare(
            actor=world.manager_a, unit=world.unit_a, file_name="x.xlsx", content=b"PK\x03\x04xl/"
        )
    assert guess_mapping(["Ticket", "Montant", "Qté", "Canal"]) == {
        "Ticket": "order_id",
        "Montant": "amount",
        "Qté": "quantity",
        "Canal": "channel",
    }


def test_nul_bytes_in_a_file_are_dropped_not_stored(world):
    content = b"order_id,sku,amount\nN-1,AB\x00C,5\n"
    done = _import(world, content)
    assert done.created_count == 1
    assert OrderLine.objects.get().sku == "ABC"


def test_another_units_contact_in_a_file_is_refused_without_saying_whose(world):
    theirs = ContactFactory(unit=world.unit_b)
    content = f"order_id,contact,total\nK-1,{theirs.public_id},10\n".encode()
    done = _import(world, content)
    assert done.refused_count == 1
    problem = OrderImportProblem.objects.get(order_import=done)
    assert (problem.rule, problem.column) == ("unknown_contact", "contact")
    assert world.unit_b.name not in problem.reason_text
    assert theirs.email not in problem.reason_text


def test_the_command_prints_the_report(world, product, tmp_path, capsys):
    path = tmp_path / "v.csv"
    path.write_bytes(EXCEL.format(email="").encode("cp1252"))
    call_command(
        "import_orders",
        str(path),
        unit=world.unit_a.code,
        email=world.manager_a.email,
        dry_run=True,
    )
    out = capsys.readouterr().out
    assert "Dry run done: 8 rows, 3 orders to create (4 lines)" in out
    assert "line 5\trefused\tPrix unitaire\tabc\tnot_a_number" in out
    assert Order.objects.count() == 0


# -- Product catalogue ---------------------------------------------------------------------------

CATALOGUE = (
    "Référence;Désignation;Famille;Prix TTC\r\n"
    "P-1;Pull col roulé;Mailles;59,00\r\n"
    "P-2;Écharpe;Accessoires;19,9\r\n"
    "P-3;Bonnet;Accessoires;douze\r\n"
    ";Sans référence;Accessoires;5\r\n"
    "P-2;Écharpe bis;Accessoires;20\r\n"
    "P-4;Gants;Accessoires;-3\r\n"
    "P-5;Chaussettes;;\r\n"
)


def test_the_catalogue_creates_and_updates_by_sku_and_reports_bad_rows(world, product):
    node = world.root
    result = catalogue_import(
        actor=world.hq_admin,
        node=node,
        own=False,
        file_name="catalogue.csv",
        content=CATALOGUE.encode("cp1252"),
    )
    assert (result.created, result.updated, result.unchanged, result.rejected) == (2, 1, 0, 4)
    assert [(line, column) for line, column, _v, _r in result.errors] == [
        (4, "Prix TTC"),
        (5, "Référence"),
        (6, "Référence"),
        (7, "Prix TTC"),
    ]
    product.refresh_from_db()
    assert product.name == "Pull col roulé"
    assert (product.data["category"], product.data["price"]) == ("Mailles", "59.00")
    scarf = Asset.objects.get(kind=Asset.Kind.PRODUCT, data__sku="P-2")
    assert (scarf.unit_path, scarf.shared_path, scarf.data["price"]) == ("", node.path, "19.90")
    assert AuditEvent.objects.filter(action="asset.create").count() == 2
    again = catalogue_import(
        actor=world.hq_admin,
        node=node,
        own=False,
        file_name="catalogue.csv",
        content=CATALOGUE.encode("cp1252"),
    )
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)


def test_catalogue_dry_run_and_rights(world):
    content = b"sku,name,price\nQ-1,Sac,10\n"
    dry = catalogue_import(
        actor=world.hq_admin,
        node=world.root,
        own=False,
        file_name="c.csv",
        content=content,
        dry_run=True,
    )
    assert dry.created == 1 and not Asset.objects.exists()
    with pytest.raises(PermissionDenied):
        catalogue_import(
            actor=world.manager_a, node=world.root, own=False, file_name="c.csv", content=content
        )
    with pytest.raises(ValidationError, match="name"):
        catalogue_import(
            actor=world.hq_admin, node=world.root, own=False, file_name="c.csv", content=b"sku\nX\n"
        )


def test_an_order_line_finds_the_imported_product(world, client):
    catalogue_import(
        actor=world.hq_admin,
        node=world.root,
        own=False,
        file_name="c.csv",
        content=b"sku;name;category;price\nZ-1;Ceinture;Cuir;35,00\n",
    )
    done = _import(world, b"order_id,sku,amount\nZ-ORDER,Z-1,35\n")
    assert done.unknown_sku_lines == 0
    line = OrderLine.objects.get()
    assert (line.product.name, line.category, line.unknown_sku) == ("Ceinture", "Cuir", False)
