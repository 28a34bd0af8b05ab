"""The sales import's report as a store manager reads it: a buyer the file cannot name costs
the order its buyer, never the sale; every problem of a row in one pass; a dry run says
nothing was written; reasons in the reader's language; and an SKU the catalogue adds later
links the earlier sales lines to their product."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse
from django.utils import translation

from enseigne.brand.models import Asset
from enseigne.commerce import catalogue_importer
from enseigne.commerce.importer import order_import_prepare, start_and_run
from enseigne.commerce.models import (
    CategoryPurchase,
    Order,
    OrderImport,
    OrderImportProblem,
    OrderLine,
)
from enseigne.lib.imports import REASON_MARK, reason_shown, reason_stored, reasons_as_source
from tests.factories import PASSWORD, ContactFactory
from tests.test_order_import import _media  # noqa: F401 (a fixture: files under tmp_path)


@pytest.fixture(autouse=True)
def _p1(world):
    """P-1, a product of the library every store sees."""
    Asset.objects.create(
        kind=Asset.Kind.PRODUCT,
        name="Pull",
        shared_path=world.root.path,
        data={"sku": "P-1", "name": "Pull", "category": "Mailles", "price": "49.00"},
    )


def _import(world, content: bytes, *, dry_run=False, language="fr"):
    with translation.override(language):
        order_import = order_import_prepare(
            actor=world.manager_a, unit=world.unit_a, file_name="ventes.csv", content=content
        )
        return start_and_run(
            actor=world.manager_a,
            order_import=order_import,
            mapping=order_import.mapping,
            dry_run=dry_run,
        )


def _report(order_import):
    return [
        (p.row_number, p.kind, p.column, p.value, p.rule)
        for p in OrderImportProblem.objects.filter(order_import=order_import)
    ]


# (header line, row template, separator, encoding): the shapes tills and spreadsheets write.
SHAPES = {
    "French, semicolons, cp1252": (
        "N° ticket;Date;Courriel;Référence;Quantité;Prix unitaire\r\n",
        "{order};20/11/2026 10:30;{email};P-1;1;49,90\r\n",
        "cp1252",
    ),
    "English, commas, UTF-8": (
        "Order id,Date,E-mail,SKU,Quantity,Unit price\n",
        "{order},2026-11-20 10:30,{email},P-1,1,49.90\n",
        "utf-8",
    ),
    "French, UTF-8 with BOM, tabs in values": (
        "\ufeffCommande;Date achat;Mail;Ref article;Qté;Prix\r\n",
        "{order};20/11/2026;\t{email} ;P-1;1;49,90\r\n",
        "utf-8",
    ),
}
BAD_EMAILS = [
    "inconnu.total@nowhere.test",  # a domain reserved for tests
    "jean.dupont@gmail",  # no dot in the domain
    "jean dupont@gmail.com",  # a space
    "jean@@gmail.com",
    "jean.dupont.gmail.com",  # no @
    "jean.dupont@gmail..com",
]


def _file(shape: str, emails: list[str]) -> bytes:
    header, row, encoding = SHAPES[shape]
    text = header + "".join(
        row.format(order=f"T-{n}", email=email) for n, email in enumerate(emails, 1)
    )
    return text.encode(encoding)


@pytest.mark.parametrize("shape", SHAPES)
def test_a_buyer_the_file_cannot_name_costs_the_order_its_buyer_never_the_sale(world, shape):
    own = ContactFactory(unit=world.unit_a, email="client.lyon@example.com")
    lille = ContactFactory(unit=world.unit_b, email="client.lille@example.com")
    emails = ["Client.Lyon@Example.com", lille.email, *BAD_EMAILS, ""]
    done = _import(world, _file(shape, emails))

    assert done.status == OrderImport.Status.DONE
    assert (done.created_count, done.refused_count, done.refused_rows) == (len(emails), 0, 0)
    assert done.without_buyer_count == 1 + len(BAD_EMAILS)  # not the known one, not the empty
    buyers = dict(Order.objects.filter(unit=world.unit_a).values_list("external_id", "contact"))
    assert buyers == {f"T-{n}": (own.pk if n == 1 else None) for n in range(1, len(emails) + 1)}
    column = done.columns[2]
    assert _report(done) == [(3, "no_buyer", column, lille.email, "unknown_contact")] + [
        (line, "no_buyer", column, email, "invalid_address")
        for line, email in enumerate(BAD_EMAILS, 4)
    ]
    with translation.override("en"):
        reasons = [p.reason_text for p in done.problems.all()]
    assert reasons[0] == "Order kept without a buyer: no contact of this store has this e-mail."
    assert reasons[1].startswith("Order kept, without this e-mail: not a valid email address (")
    # Lille's customer is not named to Lyon: the same words as for an address nobody has.
    assert world.unit_b.name not in " ".join(reasons)


def test_an_email_left_out_lets_the_phone_find_the_buyer(world):
    buyer = ContactFactory(unit=world.unit_a, phone="+33612345678")
    content = (
        "N° ticket;Date;E-mail;Téléphone;Référence;Prix unitaire\r\n"
        "T-1;20/11/2026;jean@@gmail.com;06 12 34 56 78;P-1;10\r\n"
        "T-2;20/11/2026;;06 99 99 99 99;P-1;10\r\n"
        "T-3;20/11/2026;;12;P-1;10\r\n"
    ).encode()
    done = _import(world, content)
    buyers = dict(Order.objects.values_list("external_id", "contact"))
    assert buyers == {"T-1": buyer.pk, "T-2": None, "T-3": None}
    assert _report(done) == [
        (2, "no_buyer", "E-mail", "jean@@gmail.com", "invalid_address"),
        (3, "no_buyer", "Téléphone", "06 99 99 99 99", "unknown_contact"),
        (4, "no_buyer", "Téléphone", "12", "invalid_address"),
    ]
    assert done.without_buyer_count == 2  # T-1 has its buyer, by the phone


def test_a_contact_id_of_another_store_still_refuses_the_order(world):
    lille = ContactFactory(unit=world.unit_b)
    content = f"order id,contact,email,sku,amount\nT-1,{lille.public_id},x@@y,P-1,10\n".encode()
    done = _import(world, content)
    assert Order.objects.count() == 0 and done.refused_count == 1
    assert [(kind, rule) for _r, kind, _c, _v, rule in _report(done)] == [
        ("refused", "unknown_contact")
    ]


def test_every_problem_of_a_row_is_reported_in_one_pass(world):
    content = (
        "N° ticket;Date;E-mail;Référence;Quantité;Prix unitaire;Canal\r\n"
        "T-1;31/02/2026;inconnu.total@nowhere.test;P-1;abc;1,234;boutique\r\n"
        "T-2;20/11/2026;a@example.com;P-1;1;10;in_store\r\n"
        "T-2;21/11/2026;b@example.com;P-1;1;-5;online\r\n"
        ";20/11/2026;x@@y;P-1;0;10;in_store\r\n"
    ).encode("cp1252")
    done = _import(world, content)
    assert _report(done) == [
        (2, "refused", "Date", "31/02/2026", "not_a_date"),
        (2, "refused", "Canal", "boutique", "not_a_choice"),
        (2, "refused", "Quantité", "abc", "not_a_number"),
        (2, "refused", "Prix unitaire", "1,234", "too_precise"),
        (2, "refused", "E-mail", "inconnu.total@nowhere.test", "invalid_address"),
        (3, "no_buyer", "E-mail", "a@example.com", "unknown_contact"),
        # A second row of an order that contradicts the first: each column, not the first.
        (4, "refused", "Date", "21/11/2026", "not_a_choice"),
        (4, "refused", "Canal", "online", "not_a_choice"),
        (4, "refused", "E-mail", "b@example.com", "not_a_choice"),
        (4, "refused", "Prix unitaire", "-5", "negative_outside_return"),
        # A row with no order id: that, and the rest of what is wrong with it.
        (5, "refused", "N° ticket", "", "required"),
        (5, "refused", "Quantité", "0", "out_of_range"),
        (5, "refused", "E-mail", "x@@y", "invalid_address"),
    ]
    assert done.refused_rows == 3 and done.created_count == 1


@pytest.fixture
def manager(world, client):
    assert client.login(username=world.manager_a.email, password=PASSWORD)
    return client


def test_a_dry_run_says_nothing_was_written_everywhere(world, manager):
    content = b"order id,email,sku,amount\nT-1,,P-1,10\nT-2,,P-1,12\nT-3,,P-1,abc\n"
    dry = _import(world, content, dry_run=True)
    assert Order.objects.count() == 0
    summary = "Simulation: nothing was written; 2 orders would be recorded."
    with translation.override("en"):
        listing = manager.get(reverse("order_import_list"), HTTP_ACCEPT_LANGUAGE="en").content
        page = manager.get(reverse("order_import_detail", args=[dry.public_id]))
        report = manager.get(reverse("order_import_problems", args=[dry.public_id]))
    assert summary in listing.decode() and summary in page.content.decode()
    assert "Orders recorded</td>" not in listing.decode()
    assert "These rows were not imported" not in page.content.decode()
    assert "Rows that would not be imported" in page.content.decode()
    text = b"".join(report.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows[1][4:] == [summary, "Simulation"]
    assert rows[2][5] == "Simulation: would not be imported"
    # In French too, and a real import says what it wrote.
    french = manager.get(reverse("order_import_list"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Simulation : rien n’a été écrit ; 2 commandes seraient enregistrées." in french
    real = _import(world, content)
    page = manager.get(
        reverse("order_import_detail", args=[real.public_id]), HTTP_ACCEPT_LANGUAGE="en"
    )
    assert "Simulation" not in page.content.decode()


def test_reasons_are_shown_in_the_readers_language(world, manager):
    content = "N° ticket;Date;Prix unitaire;Référence;E-mail\r\nT-1;hier;abc;P-1;x@nowhere.test\r\n"
    done = _import(world, content.encode(), language="fr")
    stored = list(done.problems.values_list("reason", flat=True))
    assert all(reason.startswith(REASON_MARK) for reason in stored)
    with translation.override("en"):
        english = [p.reason_text for p in done.problems.all()]
    with translation.override("fr"):
        french = [p.reason_text for p in done.problems.all()]
    assert english[0] == "hier is not a date (use YYYY-MM-DD HH:MM or DD/MM/YYYY HH:MM)."
    assert english[1].startswith("Must be a decimal number")
    assert french[0].startswith("hier n") and french[1].startswith("Doit être un nombre décimal")
    assert english[2].startswith("not a valid email address") and english != french
    page = manager.get(
        reverse("order_import_detail", args=[done.public_id]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert english[1] in page and REASON_MARK not in page
    # A line written before reasons were stored this way reads as it was written.
    OrderImportProblem.objects.filter(pk=done.problems.first().pk).update(reason="Texte ancien")
    assert done.problems.first().reason_text == "Texte ancien"


def test_a_reason_that_does_not_fit_is_kept_as_text():
    with reasons_as_source():
        from django.utils.translation import gettext as _

        reason = _("More than %(n)s rows: split the file.") % {"n": "x" * 600}
        short = _("More than %(n)s rows: split the file.") % {"n": "5"}
    assert reason_stored(reason, 500) == reason[:500]
    with translation.override("fr"):
        assert reason_shown(reason_stored(short, 500)).startswith("Plus de 5 lignes")
    assert translation.get_language() is not None  # the active language came back


def test_a_catalogue_import_links_the_earlier_unknown_sku_lines(world):
    buyer = ContactFactory(unit=world.unit_a)
    content = (
        "N° ticket;Date;E-mail;Référence;Catégorie;Prix unitaire\r\n"
        f"T-1;20/11/2026;{buyer.email};NOUVEAU;;10\r\n"
        f"T-1;20/11/2026;{buyer.email};NOUVEAU;Soldes;5\r\n"
        f"T-2;20/11/2026;{buyer.email};AUTRE;;10\r\n"
    ).encode()
    sales = _import(world, content)
    assert sales.unknown_sku_lines == 3
    assert list(CategoryPurchase.objects.values_list("category", flat=True)) == ["SOLDES"]

    def catalogue(dry_run):
        imp = catalogue_importer.catalogue_import_prepare(
            actor=world.hq_admin,
            node=world.root,
            file_name="c.csv",
            content=b"sku;name;category\nNOUVEAU;Pull neuf;Mailles\n",
        )
        catalogue_importer.catalogue_import_start(
            actor=world.hq_admin, catalogue_import=imp, mapping=imp.mapping, dry_run=dry_run
        )
        return catalogue_importer.catalogue_import_run(imp.pk)

    catalogue(dry_run=True)
    assert OrderLine.objects.filter(unknown_sku=True).count() == 3  # a dry run links nothing
    catalogue(dry_run=False)
    product = Asset.objects.get(kind=Asset.Kind.PRODUCT, data__sku="NOUVEAU")
    lines = sorted(OrderLine.objects.values_list("sku", "product", "category", "unknown_sku"))
    assert lines == [
        ("AUTRE", None, "", True),
        ("NOUVEAU", product.pk, "Mailles", False),
        ("NOUVEAU", product.pk, "Soldes", False),  # the line's own category stays
    ]
    assert set(CategoryPurchase.objects.values_list("contact", "category")) == {
        (buyer.pk, "MAILLES"),
        (buyer.pk, "SOLDES"),
    }
    sales.refresh_from_db()
    assert sales.unknown_sku_lines == 1
    assert sorted(sales.problems.values_list("value", "kind")) == [
        ("AUTRE", "flagged"),
        ("NOUVEAU", "resolved"),
        ("NOUVEAU", "resolved"),
    ]


def test_a_catalogue_dry_run_says_nothing_was_written_too(world, client):
    imp = catalogue_importer.catalogue_import_prepare(
        actor=world.hq_admin,
        node=world.root,
        file_name="c.csv",
        content="référence;nom\nP-2;Gilet\nP-3;Écharpe\n".encode(),
    )
    catalogue_importer.catalogue_import_start(
        actor=world.hq_admin, catalogue_import=imp, mapping=imp.mapping, dry_run=True
    )
    catalogue_importer.catalogue_import_run(imp.pk)
    assert client.login(username=world.hq_admin.email, password=PASSWORD)
    summary = "Simulation: nothing was written; 2 products would be created or updated."
    for url in (
        reverse("catalogue_import"),
        reverse("catalogue_import_detail", args=[imp.public_id]),
    ):
        html = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert summary in html
