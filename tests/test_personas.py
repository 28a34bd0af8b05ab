"""Personas and the RFM pages (issue 21): each record's persona is the first (in HQ's
order) whose rules it matches, each person's the first any of its records has; the
``persona`` conditions count what a reference computed here from the raw rows counts
(record level, person level, a region manager's subtree, under row-level security); a
store sees its own counts only; HQ's RFM grid form names the wrong cell; the heat map and
the month-to-month migration equal the raw score rows."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone
from django.utils.formats import date_format

from enseigne.commerce.models import Order
from enseigne.contacts.models import Contact
from enseigne.contacts.segments import field_catalogue, segment_contacts
from enseigne.identity.models import RecordLink
from enseigne.lib.rowsecurity import db_scope
from enseigne.network.access import access_for
from enseigne.personas import assignment
from enseigne.personas.models import PersonaCount, PersonaPerson, PersonaRecord
from enseigne.personas.services import persona_move, persona_save
from enseigne.rfm import scoring
from enseigne.rfm.groups import DEFAULT_GRID
from enseigne.rfm.models import GroupSnapshot, RecordScore, RfmPolicy
from enseigne.rfm.scoring import months_before
from enseigne.rfm.snapshots import month_of, previous_month, snapshot_month
from tests.factories import PASSWORD, ContactFactory

pytestmark = pytest.mark.django_db

AS_OF = timezone.now().replace(minute=30, second=0, microsecond=0)
LOYAL = ["champions", "loyal", "potential_loyalists"]


def rules(*conditions, match="all"):
    return {"match": match, "rules": [dict(c) for c in conditions]}


@pytest.fixture
def base(world):
    """Thirty records over three stores (every fourth e-mail also in the next store, so
    identity makes persons of them), varied consent, customers and languages, orders for
    the RFM groups, and three personas whose rules overlap."""
    units = [world.unit_a, world.unit_a2, world.unit_b]
    records = []
    for i in range(24):
        fields = {
            "email_consent": ["granted", "none", "soft_opt_in", "withdrawn"][i % 4],
            "is_customer": i % 2 == 0,
            "language": "en" if i % 5 == 0 else "fr",
        }
        records.append(ContactFactory(unit=units[i % 3], email=f"p.{i}@orange.fr", **fields))
        if i % 4 == 0:
            other = {**fields, "is_customer": False, "language": "en"}
            records.append(
                ContactFactory(unit=units[(i + 1) % 3], email=f"p.{i}@orange.fr", **other)
            )
    orders = []
    for n, record in enumerate(records):
        for k in range(n % 4):
            orders.append(
                Order(
                    unit=record.unit,
                    unit_path=record.unit_path,
                    external_id=f"P{n}-{k}",
                    contact=record,
                    occurred_at=AS_OF - dt.timedelta(days=(n * 37 + k * 11) % 400, hours=1),
                    total=Decimal(10 + (n * 13) % 90),
                    channel="in_store",
                    source="api",
                )
            )
    Order.objects.bulk_create(orders)
    scoring.full_run(as_of=AS_OF)
    hq = world.hq_admin
    personas = [
        persona_save(
            actor=hq,
            name="Fidèles joignables",
            rules=rules(
                {"field": "rfm_group", "op": "equals", "value": LOYAL},
                {"field": "consent_email", "op": "is_valid"},
            ),
        ),
        persona_save(
            actor=hq, name="Clients", rules=rules({"field": "is_customer", "op": "is_true"})
        ),
        persona_save(
            actor=hq,
            name="Anglophones",
            rules=rules({"field": "language", "op": "equals", "value": "en"}),
        ),
    ]
    return {"records": records, "personas": personas}


def reference(personas) -> dict[int, int]:
    """Record pk → its persona's pk, from the raw rows (first match in ``personas``' order)."""
    group = dict(RecordScore.objects.values_list("contact_id", "group"))
    tests = {
        "Fidèles joignables": lambda c: (
            group.get(c.pk) in LOYAL and c.email_consent in ("granted", "soft_opt_in")
        ),
        "Clients": lambda c: c.is_customer,
        "Anglophones": lambda c: c.language == "en",
    }
    found = {}
    for contact in Contact.objects.all():
        for persona in personas:
            if tests[persona.name](contact):
                found[contact.pk] = persona.pk
                break
    return found


def persons_reference(by_record: dict[int, int], personas) -> dict[int, int]:
    """Person key (person id, or minus the record's id) → the first persona of any record."""
    order = {p.pk: i for i, p in enumerate(personas)}
    person = dict(RecordLink.objects.values_list("contact_id", "person_id"))
    best: dict[int, int] = {}
    for contact, persona in by_record.items():
        key = person.get(contact, -contact)
        if key not in best or order[persona] < order[best[key]]:
            best[key] = persona
    return best


def stored_persons() -> dict[int, int]:
    return {
        (p if p else -c): persona
        for p, c, persona in PersonaPerson.objects.values_list("person_id", "contact_id", "persona")
    }


def selected(user, tree) -> set[int]:
    with db_scope(access_for(user).paths):
        return set(segment_contacts(user, tree).values_list("pk", flat=True))


def test_first_match_per_record_and_per_person_and_reordering(world, base):
    personas = base["personas"]
    assignment.assign_network(world.root.path, as_of=AS_OF)
    expected = reference(personas)
    assert dict(PersonaRecord.objects.values_list("contact_id", "persona_id")) == expected
    assert Counter(expected.values()).keys() == {p.pk for p in personas}, "every persona used"
    assert stored_persons() == persons_reference(expected, personas)
    # A person with a record in two personas is in the earlier one.
    assert len(persons_reference(expected, personas)) < len(expected)
    # The month's counts: per store, and the network's persons.
    month = month_of(AS_OF)
    per_store = Counter((Contact.objects.get(pk=c).unit_path, p) for c, p in expected.items())
    counts = PersonaCount.objects.filter(month=month, level=PersonaCount.Level.RECORD)
    assert {(r.unit_path, r.persona_id): r.count for r in counts} == per_store
    people = Counter(persons_reference(expected, personas).values())
    counts = PersonaCount.objects.filter(month=month, level=PersonaCount.Level.PERSON)
    assert {r.persona_id: r.count for r in counts} == people
    # HQ moves the last persona first: the same records now land in the new order.
    first, clients, english = personas
    persona_move(actor=world.hq_admin, persona=english, step=-1)
    persona_move(actor=world.hq_admin, persona=english, step=-1)
    persona_move(actor=world.hq_admin, persona=english, step=-1)  # already first: no change
    ordered = [english, first, clients]
    assert [p.pk for p in assignment.personas_of_root(world.root.path)] == [p.pk for p in ordered]
    assignment.assign_network(world.root.path, as_of=AS_OF)
    expected = reference(ordered)
    assert dict(PersonaRecord.objects.values_list("contact_id", "persona_id")) == expected
    english_records = {c.pk for c in Contact.objects.filter(language="en")}
    assert {c for c, p in expected.items() if p == english.pk} == english_records


def test_a_store_erasing_a_record_not_linked_yet_leaves_no_hq_row_about_it(world, base):
    """Its person's score and persona are HQ's rows keyed by the record, out of the store's
    row-level scope (PostgreSQL): the erasure removes them as system work all the same."""
    from enseigne.contacts.services import contact_erase
    from enseigne.rfm.models import PersonScore

    lone = next(r for r in base["records"] if r.unit_id == world.unit_b.pk and r.is_customer)
    RecordLink.objects.filter(contact=lone).delete()
    scoring.full_run(as_of=AS_OF)
    assignment.assign_network(world.root.path, as_of=AS_OF)
    assert PersonaPerson.objects.filter(contact=lone).exists()
    assert PersonScore.objects.filter(contact=lone).exists()
    erased = lone.pk
    with db_scope([world.unit_b.path]):
        contact_erase(actor=world.manager_b, contact=lone)
    assert not PersonaPerson.objects.filter(contact_id=erased).exists()
    assert not PersonScore.objects.filter(contact_id=erased).exists()
    assert PersonaPerson.objects.exists() and PersonScore.objects.exists()


def test_persona_conditions_count_the_raw_rows(world, base):
    """Record level for HQ, a region manager (their subtree) and a store manager, inside
    each one's row-level scope; then HQ's person-level conditions."""
    assignment.assign_network(world.root.path, as_of=AS_OF)
    _first, clients, english = base["personas"]
    expected_all = reference(base["personas"])
    chosen = {clients.pk, english.pk}
    inside = {c for c, p in expected_all.items() if p in chosen}
    value = [str(clients.public_id), str(english.public_id)]
    for user, scope in (
        (world.hq_admin, world.root.path),
        (world.region_manager, world.region_a.path),
        (world.manager_a, world.unit_a.path),
    ):
        mine = {r.pk for r in base["records"] if r.unit_path.startswith(scope)}
        assert inside & mine and mine - inside, "the case must split the records"
        tree = rules({"field": "persona", "op": "equals", "value": value})
        assert selected(user, tree) == inside & mine
        tree = rules({"field": "persona", "op": "not_equals", "value": value})
        assert selected(user, tree) == mine - inside

    by_record = expected_all
    person = dict(RecordLink.objects.values_list("contact_id", "person_id"))
    members = defaultdict(set)
    for contact, p in person.items():
        members[p].add(contact)
    everyone = {r.pk for r in base["records"]}

    def reach(keys):
        return {c for k in keys for c in (members[k] if k > 0 else {-k})}

    value = str(english.public_id)
    twin = reach({person.get(c, -c) for c, p in by_record.items() if p == english.pk})
    for op, expected in (("equals", twin), ("not_equals", everyone - twin)):
        tree = rules({"field": "person.persona", "op": op, "value": value})
        assert selected(world.hq_admin, tree) == expected
    own = reach(
        {k for k, p in persons_reference(by_record, base["personas"]).items() if p == english.pk}
    )
    for op, expected in (("equals", own), ("not_equals", everyone - own)):
        tree = rules({"field": "network_persona", "op": op, "value": value})
        assert selected(world.hq_admin, tree) == expected
    assert twin != own, "a person with an earlier persona elsewhere tells the two apart"
    catalogue = {f["field"] for f in field_catalogue(world.manager_a)}
    assert "persona" in catalogue
    assert not {"person.persona", "network_persona"} & catalogue


def test_hq_edits_personas_and_their_rules_are_checked(world, base, client):
    hq = world.hq_admin
    with pytest.raises(ValidationError, match="rule 2: a persona cannot be defined by personas"):
        persona_save(
            actor=hq,
            name="Boucle",
            rules=rules(
                {"field": "is_customer", "op": "is_true"},
                {"field": "persona", "op": "equals", "value": str(base["personas"][0].public_id)},
            ),
        )
    with pytest.raises(ValidationError, match="at least one condition"):
        persona_save(actor=hq, name="Vide", rules=rules())
    with pytest.raises(ValidationError, match="rule 1"):
        persona_save(actor=hq, name="Faux", rules=rules({"field": "nope", "op": "equals"}))
    with pytest.raises(ValidationError, match="already has this name"):
        persona_save(
            actor=hq, name="Clients", rules=rules({"field": "is_customer", "op": "is_true"})
        )
    with pytest.raises(ValidationError, match="choose personas"):
        selected(hq, rules({"field": "persona", "op": "equals", "value": "Clients"}))
    for user in (world.manager_a, world.region_manager):
        with pytest.raises(PermissionDenied):
            persona_save(
                actor=user, name="X", rules=rules({"field": "is_customer", "op": "is_true"})
            )
    assignment.assign_network(world.root.path, as_of=AS_OF)
    client.login(username=world.hq_admin.email, password=PASSWORD)
    html = client.get("/personas/").content.decode()
    for persona in base["personas"]:
        assert persona.name in html
    edit = client.get(f"/hq/personas/{base['personas'][1].public_id}/")
    assert edit.status_code == 200
    fields = {f["field"] for f in edit.context["catalogue"]}
    assert "rfm_group" in fields and "persona" not in fields
    bad = client.post(
        "/hq/personas/new/",
        {"name": "Sans règle", "rules": '{"match": "all", "rules": []}'},
    )
    assert "at least one condition" in bad.content.decode()
    moved = client.post(f"/hq/personas/{base['personas'][2].public_id}/", {"action": "up"})
    assert moved.status_code == 302
    names = [p.name for p in assignment.personas_of_root(world.root.path)]
    assert names == ["Fidèles joignables", "Anglophones", "Clients"]
    gone = base["personas"][0]
    assert client.post(f"/hq/personas/{gone.public_id}/", {"action": "delete"}).status_code == 302
    names = [p.name for p in assignment.personas_of_root(world.root.path)]
    assert names == ["Anglophones", "Clients"]


def test_stores_see_their_own_counts_only(world, base, client):
    assignment.assign_network(world.root.path, as_of=AS_OF)
    client.login(username=world.manager_a.email, password=PASSWORD)
    page = client.get("/personas/")
    assert page.status_code == 200
    html = page.content.decode()
    assert str(world.unit_a.public_id) in html
    assert str(world.unit_b.public_id) not in html and str(world.unit_a2.public_id) not in html
    # The counts say which month's assignment they are.
    assert date_format(month_of(AS_OF), "F Y") in html.split('id="persona-counts-month"')[1][:300]
    assert client.get(f"/personas/?unit={world.unit_a.public_id}").status_code == 200
    assert client.get(f"/personas/?unit={world.unit_b.public_id}").status_code == 404
    assert client.get(f"/personas/?unit={world.region_a.public_id}").status_code == 404
    persona = base["personas"][0]
    for url in (f"/hq/personas/{persona.public_id}/", "/hq/personas/new/", "/hq/rfm/"):
        assert client.get(url).status_code == 404
    assert client.get(f"/rfm/?unit={world.unit_b.public_id}").status_code == 404
    before = list(PersonaCount.objects.values_list("pk", "count"))
    assert client.post("/personas/").status_code == 404  # "recompute now" is HQ's
    assert (
        client.post(f"/hq/personas/{persona.public_id}/", {"action": "delete"}).status_code == 404
    )
    assert list(PersonaCount.objects.values_list("pk", "count")) == before
    assert len(assignment.personas_of_root(world.root.path)) == 3
    if connection.vendor == "postgresql":
        with db_scope(access_for(world.manager_a).paths):
            assert {r.unit_path for r in PersonaCount.objects.all()} == {world.unit_a.path}
            assert not PersonaPerson.objects.exists()
            assert {r.unit_path for r in PersonaRecord.objects.all()} == {world.unit_a.path}


def test_rfm_grid_form_names_the_wrong_cell(world, client):
    client.login(username=world.hq_admin.email, password=PASSWORD)
    assert client.get("/hq/rfm/").status_code == 200
    grid = dict(DEFAULT_GRID)
    grid["r2f3"] = "sleepy"
    page = client.post("/hq/rfm/", {**grid, "window_months": "12"})
    assert page.status_code == 200
    assert "Cell r2f3 (recency 2, frequency 3)" in page.content.decode()
    assert not RfmPolicy.objects.exists()
    page = client.post("/hq/rfm/", {**DEFAULT_GRID, "window_months": "0"})
    assert "from 1 to 120" in page.content.decode()
    grid = {**DEFAULT_GRID, "r1f1": "hibernating"}
    assert client.post("/hq/rfm/", {**grid, "window_months": "12"}).status_code == 302
    policy = RfmPolicy.objects.get()
    assert (policy.window_months, policy.grid["r1f1"]) == (12, "hibernating")


def test_heat_map_and_migration_equal_the_score_rows(world, base, client):
    this_month = month_of(AS_OF)
    last_month = previous_month(this_month)
    # Last month's picture: the scores as they are, then some records change group.
    snapshot_month(
        world.root.path, as_of=dt.datetime.combine(last_month, dt.time(12), tzinfo=dt.UTC)
    )
    before = dict(RecordScore.objects.values_list("contact_id", "group"))
    moved = sorted(before)[:5]
    RecordScore.objects.filter(contact_id__in=moved[:3]).update(group="at_risk")
    RecordScore.objects.filter(contact_id__in=moved[3:]).delete()
    snapshot_month(world.root.path, as_of=AS_OF)
    after = dict(RecordScore.objects.values_list("contact_id", "group"))
    unit = world.unit_a
    mine = set(Contact.objects.filter(unit=unit).values_list("pk", flat=True))
    expected = Counter(
        (before.get(c, ""), after.get(c, "")) for c in (set(before) | set(after)) & mine
    )
    client.login(username=world.manager_a.email, password=PASSWORD)
    asked = timezone.now()
    page = client.get(f"/rfm/?unit={unit.public_id}")
    assert page.status_code == 200
    migration = page.context["migration"]
    assert (migration.month, migration.before) == (this_month, last_month)
    assert page.context["months"] == [last_month, this_month]  # one entry a month
    # The caption says which purchases the figures cover: the scores' window.
    start = page.context["window_start"]
    assert months_before(asked, 24) <= start <= months_before(timezone.now(), 24)
    assert date_format(timezone.localtime(start), "DATE_FORMAT") in page.content.decode()
    assert Counter(migration.moves) == expected
    heat = {
        (c.recency, c.frequency): (c.records, c.revenue)
        for row in page.context["heat"]
        for c in row
    }
    raw = defaultdict(lambda: (0, Decimal(0)))
    for score in RecordScore.objects.filter(unit_path=unit.path):
        n, net = raw[(score.recency, score.frequency)]
        raw[(score.recency, score.frequency)] = (n + 1, net + score.net)
    assert {k: v for k, v in heat.items() if v[0]} == dict(raw)
    assert GroupSnapshot.objects.filter(month=this_month).count() == len(after)


def test_hqs_changes_are_followed_by_the_assignment(
    world, base, client, django_capture_on_commit_callbacks
):
    """Reordering on the page recomputes at once: the counts and the ``persona`` condition
    never show the previous order until the night (a store manager's report)."""
    personas = base["personas"]
    assignment.assign_network(world.root.path)
    first, clients, english = personas
    client.force_login(world.hq_admin)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(f"/hq/personas/{english.public_id}/", {"action": "up"}, follow=True)
    assert len(callbacks) == 1
    assert "The personas are being recomputed" in response.content.decode()
    expected = reference([first, english, clients])
    assert dict(PersonaRecord.objects.values_list("contact_id", "persona_id")) == expected


def test_a_store_sees_what_each_persona_means(world, base, client):
    persona_save(
        actor=world.hq_admin,
        name="Amateurs de lumière",
        description="Achètent surtout des luminaires",
        rules={"match": "all", "rules": [{"field": "is_customer", "op": "is_true"}]},
    )
    client.force_login(world.manager_a)
    page = client.get("/personas/").content.decode()
    assert 'id="persona-legend"' in page and "Achètent surtout des luminaires" in page
