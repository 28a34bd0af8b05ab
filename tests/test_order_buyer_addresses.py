"""One rule for a buyer's e-mail that is not valid, whatever brings the order: the till's batch
API and the sales import both keep the sale without a buyer and say which order, field and
value were left out, and why, in the same words (``commerce.services._buyers``)."""

from __future__ import annotations

import json

import pytest
from django.utils import translation

from enseigne.commerce.models import Order, OrderImportProblem
from enseigne.commerce.services import orders_record
from enseigne.contacts.validation import FieldError, clean_email
from tests.factories import ContactFactory
from tests.test_order_import import _media  # noqa: F401 (a fixture: files under tmp_path)
from tests.test_order_import_report import _import
from tests.test_orders import _order, _post

# Shapes a till or a spreadsheet sends; none is an e-mail address.
BAD_EMAILS = [
    "jean dupont@gmail.com",  # a space inside
    "jean@@gmail.com",
    "jean.dupont.gmail.com",  # no @
    "jean@gmail..com",
    "@gmail.com",
    "jean@",
    "jëan@@exemple.fr",  # unicode, two @
    "jean@exem ple.fr",  # a space in the domain
    "😀@😀",
    "jean@exemple.fr\u200b",  # a zero-width space after it
    "<script>@exemple.fr",
    '=HYPERLINK("x")@exemple.fr',
    "j" * 290 + "@exemple.fr",  # 300 characters
    "jean@" + "a" * 64 + ".fr",  # a label of 64 characters
]


def test_the_shapes_are_not_addresses():
    for email in BAD_EMAILS:
        with pytest.raises(FieldError):
            clean_email(email)


def _warnings(body) -> list[list[tuple[str, str, str, str]]]:
    return [
        [(w["field"], w["rule"], w["value"], w["message"]) for w in result["warnings"]]
        for result in body["results"]
    ]


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_api_and_the_import_keep_the_sale_and_say_the_same(world, client, language):
    buyer = ContactFactory(unit=world.unit_a, email="client@example.com")
    emails = [*BAD_EMAILS, buyer.email, "inconnu@example.com"]
    orders = [_order(f"A-{n}", email=email) for n, email in enumerate(emails)]
    with translation.override(language):
        body = _post(
            client, world.manager_a, world.unit_a, orders, HTTP_ACCEPT_LANGUAGE=language
        ).json()
    assert (body["created"], body["refused"]) == (len(emails), 0)
    assert [r["status"] for r in body["results"]] == ["created"] * len(emails)
    buyers = dict(Order.objects.filter(unit=world.unit_a).values_list("external_id", "contact"))
    assert buyers == {
        f"A-{n}": (buyer.pk if e == buyer.email else None) for n, e in enumerate(emails)
    }
    warnings = _warnings(body)
    assert warnings[len(BAD_EMAILS)] == []  # the known buyer: nothing to say
    assert [[(f, r, v) for f, r, v, _m in w] for w in warnings] == [
        [("email", "invalid_address", email[:255])] for email in BAD_EMAILS
    ] + [[], [("email", "unknown_contact", "inconnu@example.com")]]
    kept = (
        "Order kept, without this e-mail: "
        if language == "en"
        else "Commande gardée, sans cet e-mail : "
    )
    assert all(w[0][3].startswith(kept) for w in warnings[: len(BAD_EMAILS)])

    # The same e-mails in a file: the same report lines, in the same words.
    Order.objects.all().delete()
    content = "N° ticket;E-mail;Référence;Prix unitaire\r\n" + "".join(
        f"F-{n};{email};P-1;10\r\n" for n, email in enumerate(emails)
    )
    done = _import(world, content.encode("utf-8"), language=language)
    assert (done.created_count, done.refused_count) == (len(emails), 0)
    assert done.without_buyer_count == len(BAD_EMAILS) + 1
    with translation.override(language):
        report = [
            (p.row_number, p.kind, p.value, p.rule, p.reason_text)
            for p in OrderImportProblem.objects.filter(order_import=done)
            if p.kind != OrderImportProblem.Kind.FLAGGED
        ]
    expected = [(n + 2, "no_buyer", v, r, m) for n, w in enumerate(warnings) for _f, r, v, m in w]
    assert report == expected


def test_the_api_says_which_order_of_a_batch_lost_its_buyer(world, client):
    orders = [_order("B-0"), _order("B-1", email="pas une adresse", phone="12"), _order("B-2")]
    body = _post(client, world.manager_a, world.unit_a, orders).json()
    assert [(r["index"], r["order_id"], len(r["warnings"])) for r in body["results"]] == [
        (0, "B-0", 0),
        (1, "B-1", 2),
        (2, "B-2", 0),
    ]
    assert [(w["field"], w["value"]) for w in body["results"][1]["warnings"]] == [
        ("email", "pas une adresse"),
        ("phone", "12"),
    ]
    # Sent again: a duplicate records nothing and warns of nothing.
    again = _post(client, world.manager_a, world.unit_a, orders).json()
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 3
    assert all(r["warnings"] == [] for r in again["results"])


def test_an_email_left_out_lets_the_phone_find_the_buyer_in_the_api(world, client):
    buyer = ContactFactory(unit=world.unit_a, phone="+33612345678")
    orders = [_order("P-1", email="jean@@gmail.com", phone="06 12 34 56 78")]
    body = _post(client, world.manager_a, world.unit_a, orders).json()
    assert Order.objects.get().contact_id == buyer.pk
    assert [(w["field"], w["rule"]) for w in body["results"][0]["warnings"]] == [
        ("email", "invalid_address")
    ]


@pytest.mark.parametrize(
    "email",
    [1234, 12.5, True, ["a@b.fr"], {"email": "a@b.fr"}, "a\x00b@exemple.fr", "\x00"],
)
def test_values_that_are_not_text_or_hold_a_nul_keep_the_sale(world, email):
    # The service's rule (a NUL never reaches it over HTTP: tests below; nor from a file).
    outcome = orders_record(
        actor=world.manager_a, unit=world.unit_a, orders=[_order("N", email=email)]
    )[0]
    assert outcome.status == "created" and Order.objects.get().contact_id is None
    [warning] = outcome.warnings
    assert (warning.field, warning.rule) == ("email", "invalid_address")
    assert "\x00" not in warning.value or warning.value == str(email)


def test_a_nul_in_the_api_is_refused_before_the_orders_naming_the_field(world, client):
    body = _post(client, world.manager_a, world.unit_a, [_order("N-1", email="a\x00b@x.fr")])
    assert body.status_code == 422 and list(body.json()["error"]["fields"]) == ["orders[0].email"]
    assert Order.objects.count() == 0


def test_a_nul_in_a_file_is_dropped_at_upload(world):
    content = "N° ticket;E-mail;Référence;Prix unitaire\r\nT-1;jean\x00@@gmail.com;P-1;10\r\n"
    done = _import(world, content.encode("utf-8"))
    assert done.created_count == 1
    assert list(
        OrderImportProblem.objects.filter(kind="no_buyer").values_list("value", "rule")
    ) == [("jean@@gmail.com", "invalid_address")]


def test_the_conversions_endpoint_keeps_the_sale_too_in_the_same_words(world, client):
    from tests.test_api_and_isolation import bearer

    buyer = ContactFactory(unit=world.unit_a, email="client@example.com")
    emails = [*BAD_EMAILS, buyer.email, "inconnu@example.com"]
    batch = _post(
        client,
        world.manager_a,
        world.unit_a,
        [_order(f"A-{n}", email=email) for n, email in enumerate(emails)],
    ).json()
    for n, email in enumerate(emails):
        answer = client.post(
            "/api/v1/conversions",
            data=json.dumps(
                {
                    "order_id": f"CV-{n}",
                    "unit": str(world.unit_a.public_id),
                    "amount": "10",
                    "email": email,
                }
            ),  # fmt: skip
            content_type="application/json",
            **bearer(world.manager_a),
        )
        assert answer.status_code == 201, (email, answer.content)
        body = answer.json()
        assert body["warnings"] == batch["results"][n]["warnings"]
        assert body["contact"] == (str(buyer.public_id) if email == buyer.email else None)
    assert Order.objects.filter(external_id__startswith="CV-").count() == len(emails)
