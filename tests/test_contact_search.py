"""Search ignores case and accents, in the UI and the API, on both engines; PostgreSQL
answers a name prefix from an index."""

from __future__ import annotations

import pytest
from django.db import connection

from enseigne.contacts import selectors
from enseigne.lib.folding import fold
from tests.factories import ContactFactory

PEOPLE = [
    ("Léa", "Dupré"),
    ("Hélène", "Lefèvre"),
    ("Zoë", "Müller"),
    ("Œdipe", "Rœsch"),
    ("François", "Çağlar"),
    ("Ana", "Ŀopez"),
    ("ANNE", "DUPONT"),
    ("anne-sophie", "de la Tour"),
]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("dupre", {"Dupré"}),
        ("DUPRÉ", {"Dupré"}),
        ("dupré", {"Dupré"}),
        ("Dupre", {"Dupré"}),
        ("dup", {"Dupré", "DUPONT"}),
        ("lefevre", {"Lefèvre"}),
        ("helene", {"Lefèvre"}),
        ("muller", {"Müller"}),
        ("zoe", {"Müller"}),
        ("roesch", {"Rœsch"}),
        ("oedipe", {"Rœsch"}),
        ("francois", {"Çağlar"}),
        ("caglar", {"Çağlar"}),
        ("anne", {"DUPONT", "de la Tour"}),
        ("anne dup", {"DUPONT"}),  # every word starts the first or the last name
        ("dup anne", {"DUPONT"}),
        ("lea dupre", {"Dupré"}),
        ("léa lefèvre", set()),
        ("de la", {"de la Tour"}),
        ("%", set()),  # LIKE's wildcards are searched as characters
        ("_", set()),
        ("'; drop table x; --", set()),
    ],
)
def test_names_are_found_whatever_the_case_and_accents(world, query, expected):
    for first, last in PEOPLE:
        ContactFactory(unit=world.unit_a, first_name=first, last_name=last)
    ContactFactory(unit=world.unit_b, first_name="Léa", last_name="Dupré")  # another store's
    found = selectors.contact_search(world.manager_a, query=query)
    assert {c.last_name for c in found} == expected


def test_the_ui_and_the_api_search_alike(world, client):
    ContactFactory(unit=world.unit_a, first_name="Léa", last_name="Dupré", email="lea@x.fr")
    ContactFactory(unit=world.unit_b, first_name="Léa", last_name="Dupré", email="lea@y.fr")
    client.force_login(world.manager_a)
    page = client.get("/contacts/", {"q": "dupre"}).content.decode()
    assert "lea@x.fr" in page and "lea@y.fr" not in page
    from enseigne.network.tokens import token_create

    _, secret = token_create(user=world.manager_a)
    listed = client.get(
        "/api/v1/contacts", {"q": "DUPRE"}, HTTP_AUTHORIZATION=f"Bearer {secret}"
    ).json()
    emails = [c["email"] for c in listed["results"]]
    assert emails == ["lea@x.fr"]


def test_python_and_the_database_fold_alike(world):
    samples = ["Dupré", "ÉLODIE", "Œuvre", "straße", "Ærø", "Łódź", "İstanbul", "ñandú", "Ǆemal"]
    with connection.cursor() as cursor:
        for text in samples:
            cursor.execute("SELECT enseigne_fold(%s)", [text])
            assert cursor.fetchone()[0] == fold(text), text


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="expression indexes and plans are PostgreSQL's; CI runs this file on both engines",
)
def test_a_name_prefix_is_an_index_scan_on_postgresql(world):
    """The search the product runs, as the app role under row-level security."""
    from enseigne.contacts.models import Contact

    Contact.objects.bulk_create(
        ContactFactory.build(
            unit=unit, email=f"c{i}@example.com", phone=f"+336{i:08d}", last_name=f"N{i}"
        )
        for i in range(3000)
        for unit in (world.unit_a, world.unit_b)
    )
    with connection.cursor() as cursor:  # statistics are the owner's to gather
        cursor.execute("SELECT current_user")
        (app_role,) = cursor.fetchone()
        cursor.execute("RESET ROLE")
        cursor.execute("ANALYZE contacts_contact")
        cursor.execute(f"SET ROLE {connection.ops.quote_name(app_role)}")
    query = selectors.contact_search(world.hq_admin, query="dupre").values("id")
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "contact_last_name_folded" in plan and "contact_first_name_folded" in plan, plan


@pytest.mark.parametrize("prefix", ["a", "dupré", "z", "\U0010ffff", "\ud7ff", "ÿ", "lea dup"])
def test_a_prefix_range_is_exactly_startswith(world, prefix):
    ContactFactory(unit=world.unit_a, last_name=prefix + "x")
    ContactFactory(unit=world.unit_a, last_name=prefix)
    for other in {prefix[:-1] + "\U0010ffff", prefix[:-1]} - {prefix}:
        ContactFactory(unit=world.unit_a, last_name=other)
    found = selectors.contacts_for_user(world.manager_a).filter(last_name__prefix=prefix)
    assert sorted(c.last_name for c in found) == sorted([prefix, prefix + "x"])
