"""RFM (issue 21): scores, groups and segment counts equal a reference computed here from the
raw order rows — per store for records, for the network per person, inside each reader's
row-level scope on PostgreSQL; the incremental update equals the full run for the buyers it
touched when the cut points do not move; a wrong grid is refused naming the cell."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.utils import timezone
from django.utils.html import escape

from enseigne.commerce.models import Order
from enseigne.commerce.order_hooks import orders_written
from enseigne.contacts.segments import field_catalogue, segment_contacts
from enseigne.identity.models import RecordLink
from enseigne.lib.rowsecurity import db_scope
from enseigne.network.access import access_for
from enseigne.rfm import scoring
from enseigne.rfm.groups import CELLS, DEFAULT_GRID, Group, validate_grid
from enseigne.rfm.models import CutPoints, PersonScore, RecordScore, RfmPolicy
from enseigne.rfm.services import rfm_policy_update
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

# Half an hour past the orders' hours: no purchase sits on a whole-day boundary.
AS_OF = timezone.now().replace(minute=30, second=0, microsecond=0) + dt.timedelta(hours=1)


def make_order(unit, record, number, days, total, hours=0):
    return Order(
        unit=unit,
        unit_path=unit.path,
        external_id=f"T{number}",
        contact=record,
        occurred_at=AS_OF - dt.timedelta(days=days, hours=hours, minutes=30),
        total=Decimal(total),
        channel="in_store",
        source="api",
    )


@pytest.fixture
def shop(world):
    """Ninety records in Lyon, Grenoble and Lille (every third person also in the next
    store), orders over 30 months (some out of the 24-month window), returns, orders made
    only of returns, orders without a buyer, and many ties (same day, same count)."""
    rng = random.Random(2150)
    units = [world.unit_a, world.unit_a2, world.unit_b]
    records = []
    for i in range(60):
        records.append(ContactFactory(unit=units[i % 3], email=f"rfm.{i}@orange.fr"))
        if i % 3 == 0:
            records.append(ContactFactory(unit=units[(i + 1) % 3], email=f"rfm.{i}@orange.fr"))
    orders = []
    for record in [*records, None]:
        for _ in range(rng.choice([0, 1, 1, 1, 2, 3, 5]) if record else 5):
            unit = record.unit if record else units[len(orders) % 3]
            days = rng.randint(0, 900) if rng.random() < 0.8 else rng.choice([10, 40])
            total = rng.choice([-30, rng.randint(5, 400), 25, 25, 60])
            orders.append(make_order(unit, record, len(orders), days, total, rng.randint(0, 20)))
    Order.objects.bulk_create(orders)
    return {"records": records, "orders": orders, "units": units}


def quintiles(values: dict) -> dict:
    """1 + ⌊5 (rank − 1) / n⌋ with rank = 1 + the number of strictly worse values."""
    ordered = sorted(values.values())
    n = len(ordered)
    scores = {}
    for key, value in values.items():
        worse = sum(1 for other in ordered if other < value)
        scores[key] = 1 + 5 * worse // n
    return scores


def score(aggregates: dict) -> dict:
    """aggregates: key → (last, n, cents); → key → (r, f, m, group)."""
    days = {
        k: int((AS_OF - last).total_seconds() // 86400) for k, (last, _n, _c) in aggregates.items()
    }
    r = quintiles({k: -d for k, d in days.items()})
    f = quintiles({k: n for k, (_l, n, _c) in aggregates.items()})
    m = quintiles({k: c for k, (_l, _n, c) in aggregates.items()})
    return {k: (r[k], f[k], m[k], DEFAULT_GRID[f"r{r[k]}f{f[k]}"]) for k in aggregates}


def reference(data, orders=None):
    """Record scores per store, person scores for the network, from the raw rows."""
    start = scoring.months_before(AS_OF, 24)
    per_record: dict[int, list] = defaultdict(list)
    for o in orders or data["orders"]:
        if o.contact_id and o.occurred_at >= start:
            per_record[o.contact_id].append(o)
    aggregates = {}
    for contact, mine in per_record.items():
        bought = [o for o in mine if o.total > 0]
        if bought:
            cents = sum(int(o.total * 100) for o in mine)
            aggregates[contact] = (max(o.occurred_at for o in bought), len(bought), cents)
    store_of = {r.pk: r.unit_path for r in data["records"]}
    records = {}
    for path in {store_of[c] for c in aggregates}:
        records |= score({c: a for c, a in aggregates.items() if store_of[c] == path})
    person_of = dict(RecordLink.objects.values_list("contact_id", "person_id"))
    by_person: dict[int, list] = defaultdict(list)
    for contact, aggregate in aggregates.items():
        key = person_of.get(contact, -contact)
        by_person[key].append(aggregate)
    persons = score(
        {
            key: (max(a[0] for a in rows), sum(a[1] for a in rows), sum(a[2] for a in rows))
            for key, rows in by_person.items()
        }
    )
    return {"aggregates": aggregates, "records": records, "persons": persons}


def stored_records() -> dict:
    return {
        s.contact_id: (s.recency, s.frequency, s.monetary, s.group)
        for s in RecordScore.objects.all()
    }


def stored_persons() -> dict:
    return {s.key: (s.recency, s.frequency, s.monetary, s.group) for s in PersonScore.objects.all()}


def full_run_matches(records: list, orders: list) -> dict:
    """Write ``orders``, run the full run, and check both score tables against the
    reference from these raw rows; the reference."""
    Order.objects.bulk_create(orders)
    scoring.full_run(as_of=AS_OF)
    expected = reference({"records": records, "orders": orders})
    assert stored_records() == expected["records"]
    assert stored_persons() == expected["persons"]
    return expected


def test_full_run_matches_the_raw_rows(world, shop):
    scoring.full_run(as_of=AS_OF)
    expected = reference(shop)
    assert stored_records() == expected["records"]
    assert stored_persons() == expected["persons"]
    # The figures kept beside the scores, and every score level used somewhere.
    for s in RecordScore.objects.all():
        last, n, cents = expected["aggregates"][s.contact_id]
        assert (s.last_purchase_at, s.purchases, s.net) == (last, n, Decimal(cents) / 100)
    assert {r for r, _f, _m, _g in expected["records"].values()} == {1, 2, 3, 4, 5}
    assert len({g for *_s, g in expected["persons"].values()}) >= 5
    # Linked persons really add up several records, and some buyers were left out.
    assert len(expected["persons"]) < len(expected["records"])
    assert {o.contact_id for o in shop["orders"] if o.contact_id} - set(expected["records"])


def test_a_second_run_changes_nothing_it_need_not(world, shop):
    scoring.full_run(as_of=AS_OF)
    first = {s.contact_id: s.computed_at for s in RecordScore.objects.all()}
    scoring.full_run(as_of=AS_OF + dt.timedelta(minutes=5))
    assert {s.contact_id: s.computed_at for s in RecordScore.objects.all()} == first


def test_quintile_boundaries_on_exact_fifths(world):
    """Stores of 5 and 10 buyers, each fifth a value of its own (then ties across a
    boundary): every cut falls exactly on (k − 1) × buyers / 5, where a rounding of that
    product (0.6 × 5 = 3.0000000000000004 in floating point) would move a buyer down."""
    units = [world.unit_a, world.unit_a2, world.unit_b]
    records, orders = [], []
    amounts = {
        world.unit_a: [10, 20, 30, 40, 50],
        world.unit_a2: [10, 10, 20, 20, 30, 30, 40, 40, 50, 50],
        world.unit_b: [25, 25, 25, 60, 60],
    }
    for unit in units:
        for i, amount in enumerate(amounts[unit]):
            record = ContactFactory(unit=unit, email=f"q.{unit.pk}.{i}@orange.fr")
            records.append(record)
            for n in range(1 + i // 2):  # counts 1, 1, 2, 2, 3 …: ties on the frequency
                orders.append(make_order(unit, record, len(orders), 3 * i + n, amount))
    expected = full_run_matches(records, orders)
    five = [expected["records"][r.pk] for r in records[:5]]
    assert [m for _r, _f, m, _g in five] == [1, 2, 3, 4, 5]


def test_amounts_in_cents_add_up_exactly(world):
    """The net is summed order by order in whole cents: amounts a binary float cannot hold
    (19.99, 0.07, 33.33), many small ones, one-cent returns and ties a cent apart give the
    reference's net and monetary score, in the full run and in the refresh."""
    rng = random.Random(2151)
    records, orders = [], []
    for i in range(24):
        unit = world.unit_a if i % 2 else world.unit_b
        record = ContactFactory(unit=unit, email=f"cents.{i}@orange.fr")
        records.append(record)
        for n in range(1 + i % 4):
            total = rng.choice(["19.99", "0.07", "33.33", "0.01", "-0.01", "1234.56", "0.10"])
            if n == 0:
                total = "19.99" if i % 3 else "20.00"  # ties one cent apart
            orders.append(make_order(unit, record, len(orders), 2 * i + n, total))
    expected = full_run_matches(records, orders)
    nets = {s.contact_id: s.net for s in RecordScore.objects.all()}
    assert nets == {c: Decimal(a[2]) / 100 for c, a in expected["aggregates"].items()}
    assert len({m for _r, _f, m, _g in expected["records"].values()}) == 5
    # The refresh sums the same way: scoring every buyer again changes no row.
    computed = {s.contact_id: s.computed_at for s in RecordScore.objects.all()}
    scoring.refresh_buyers([r.pk for r in records], now=AS_OF + dt.timedelta(minutes=1))
    assert {s.contact_id: s.computed_at for s in RecordScore.objects.all()} == computed


def test_a_later_run_inserts_updates_and_deletes_what_moved(world, shop):
    """Between two full runs a buyer's only purchases are returned (its rows go), a record
    buys for the first time (rows come), another buys again (rows change): the second run
    writes exactly the reference, and leaves the other rows as they were."""
    scoring.full_run(as_of=AS_OF)
    first = reference(shop)
    computed = {s.contact_id: s.computed_at for s in RecordScore.objects.all()}
    gone = next(r for r in shop["records"] if first["aggregates"].get(r.pk, (0, 0))[1] == 1)
    Order.objects.filter(contact=gone, total__gt=0).update(total=Decimal("-5"))
    newcomer = next(r for r in shop["records"] if r.pk not in first["aggregates"])
    again = next(r for r in shop["records"] if r.pk in first["aggregates"] and r != gone)
    new = [
        make_order(newcomer.unit, newcomer, 20_000, 1, 80),
        make_order(again.unit, again, 20_001, 0, 300),
    ]
    Order.objects.bulk_create(new)
    orders = [*Order.objects.all()]
    scoring.full_run(as_of=AS_OF + dt.timedelta(minutes=5))
    expected = reference(shop, orders)
    assert stored_records() == expected["records"]
    assert stored_persons() == expected["persons"]
    assert gone.pk not in stored_records() and newcomer.pk in stored_records()
    later = {s.contact_id: s.computed_at for s in RecordScore.objects.all()}
    assert later[again.pk] > computed[again.pk]
    unchanged = [
        c
        for c in computed
        if c in later
        and first["records"][c] == expected["records"][c]
        and first["aggregates"][c] == expected["aggregates"][c]
    ]
    assert unchanged and all(later[c] == computed[c] for c in unchanged)


def selected(user, rules) -> set[int]:
    with db_scope(access_for(user).paths):
        return set(segment_contacts(user, rules).values_list("pk", flat=True))


def condition(field, op, value):
    return {"match": "all", "rules": [{"field": field, "op": op, "value": value}]}


GROUP_CASES = [
    ("equals", "champions"),
    ("equals", ["at_risk", "cannot_lose"]),
    ("not_equals", "lost"),
    ("not_equals", ["hibernating", "about_to_sleep", "potential_loyalists"]),
]


@pytest.mark.parametrize(("op", "value"), GROUP_CASES)
@pytest.mark.parametrize("persona", ["hq_admin", "region_manager", "manager_a"])
def test_rfm_group_condition_matches_the_raw_rows(world, shop, persona, op, value):
    scoring.full_run(as_of=AS_OF)
    user = getattr(world, persona)
    scope = {
        "hq_admin": world.root.path,
        "region_manager": world.region_a.path,
        "manager_a": world.unit_a.path,
    }[persona]
    groups = value if isinstance(value, list) else [value]
    records = reference(shop)["records"]
    inside = {c for c, (*_s, g) in records.items() if g in groups}
    mine = {r.pk for r in shop["records"] if r.unit_path.startswith(scope)}
    expected = (inside if op == "equals" else {r.pk for r in shop["records"]} - inside) & mine
    assert selected(user, condition("rfm_group", op, value)) == expected
    if persona == "hq_admin":
        assert expected and mine - expected, "the case must split the records"


def records_of_person():
    person = dict(RecordLink.objects.values_list("contact_id", "person_id"))
    members = defaultdict(set)
    for contact, p in person.items():
        members[p].add(contact)
    return person, members


@pytest.mark.parametrize(("op", "value"), GROUP_CASES)
def test_person_conditions_for_hq(world, shop, op, value):
    scoring.full_run(as_of=AS_OF)
    groups = value if isinstance(value, list) else [value]
    expected_ref = reference(shop)
    person, members = records_of_person()
    everyone = {r.pk for r in shop["records"]}

    def reach(keys):
        return {c for k in keys for c in (members[k] if k > 0 else {-k})}

    # Any record of the person in the group in its own store (identity's twin).
    twin = reach(
        {person.get(c, -c) for c, (*_s, g) in expected_ref["records"].items() if g in groups}
    )
    expected = twin if op == "equals" else everyone - twin
    assert selected(world.hq_admin, condition("person.rfm_group", op, value)) == expected
    # The person's own group among the network's buyers.
    network = reach({k for k, (*_s, g) in expected_ref["persons"].items() if g in groups})
    expected = network if op == "equals" else everyone - network
    assert selected(world.hq_admin, condition("network_rfm_group", op, value)) == expected


def test_network_group_is_hqs_only(world, shop):
    scoring.full_run(as_of=AS_OF)
    assert "network_rfm_group" in {f["field"] for f in field_catalogue(world.hq_admin)}
    for persona in ("manager_a", "region_manager"):
        user = getattr(world, persona)
        catalogue = {f["field"]: f for f in field_catalogue(user)}
        assert "network_rfm_group" not in catalogue
        assert catalogue["rfm_group"]["choices"][0] == ["champions", "Champions"]
        with pytest.raises(ValidationError, match="unknown field"):
            selected(user, condition("network_rfm_group", "equals", "champions"))
    if connection.vendor != "postgresql":
        return
    with db_scope(access_for(world.manager_a).paths):
        assert not PersonScore.objects.exists()
        assert {s.unit_path for s in RecordScore.objects.all()} == {world.unit_a.path}
        assert {c.unit_path for c in CutPoints.objects.all()} == {world.unit_a.path}


@pytest.mark.parametrize("value", ["", "champion", ["champions", "nope"], [], 3, {"a": 1}])
def test_unknown_groups_are_named(world, shop, value):
    with pytest.raises(ValidationError, match="rule 1") as error:
        selected(world.hq_admin, condition("rfm_group", "equals", value))
    assert "needs a value" in str(error.value) or "RFM groups" in str(error.value)


# --- incremental -------------------------------------------------------------------------


def cuts_now() -> dict:
    """Where each score starts (the best value, kept fifth, may move: see score_of)."""
    return {
        (c.level, c.unit_path): (c.recency[:4], c.frequency[:4], c.monetary[:4])
        for c in CutPoints.objects.all()
    }


def same_where_cuts_stay(incremental, full, before, after) -> int:
    """Compare each score whose cut points did not move (and the group when none moved)."""
    compared = 0
    for dimension in range(3):
        if before[dimension] == after[dimension]:
            assert incremental[dimension] == full[dimension]
            compared += 1
    if before == after:
        assert incremental == full
    return compared


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_incremental_equals_full_where_cut_points_stay(world, shop, seed):
    """Buyers buy a little more (a day before their last purchase): the incremental path
    gives each of their scores the full run would, wherever its cut points stay."""
    scoring.full_run(as_of=AS_OF)
    first = reference(shop)
    before = cuts_now()
    rng = random.Random(seed)
    start = scoring.months_before(AS_OF, 24) + dt.timedelta(days=2)
    buyers = [r for r in shop["records"] if r.pk in first["records"]]
    touched = rng.sample([r for r in buyers if first["aggregates"][r.pk][0] > start], 4)
    new = []
    for i, record in enumerate(touched):
        last = first["aggregates"][record.pk][0]
        order = make_order(record.unit, record, 10_000 + i, 0, rng.randint(1, 5))
        order.occurred_at = last - dt.timedelta(days=1)
        new.append(order)
    Order.objects.bulk_create(new)
    ids = [r.pk for r in touched]
    scoring.refresh_buyers(ids, now=AS_OF)
    incremental_records = stored_records()
    person, _members = records_of_person()
    keys = {person.get(c, -c) for c in ids}
    incremental_persons = stored_persons()
    # What the incremental path did not touch is the first run's.
    assert {c: v for c, v in incremental_records.items() if c not in ids} == {
        c: v for c, v in first["records"].items() if c not in ids
    }

    scoring.full_run(as_of=AS_OF)
    after = cuts_now()
    full_records, full_persons = stored_records(), stored_persons()
    assert full_records == reference(shop, [*shop["orders"], *new])["records"]
    compared = 0
    for record in touched:
        store = ("record", record.unit_path)
        compared += same_where_cuts_stay(
            incremental_records[record.pk], full_records[record.pk], before[store], after[store]
        )
    network = ("person", world.root.path)
    for key in keys:
        compared += same_where_cuts_stay(
            incremental_persons[key], full_persons[key], before[network], after[network]
        )
    # Recency stays (each purchase added is older than the last); something else must too.
    assert compared > len(touched) + len(keys), "the case must leave cut points in place"


def test_a_store_without_a_full_run_is_ranked_whole(world, shop):
    ids = [o.contact_id for o in shop["orders"] if o.contact_id]
    scoring.refresh_buyers(ids, now=AS_OF)
    expected = reference(shop)
    assert stored_records() == expected["records"]
    assert stored_persons() == expected["persons"]


def test_a_refresh_drops_buyers_whose_orders_were_all_returned_and_adds_newcomers(world, shop):
    """Between full runs: a linked buyer's and a not-linked buyer's every purchase is
    returned (their record and person rows go, the person's key and the record's own key),
    a record buys for the first time (its rows come); the refresh writes exactly that and
    leaves every other row as it was."""
    lone = next(r for r in shop["records"] if r.pk in reference(shop)["aggregates"])
    RecordLink.objects.filter(contact=lone).delete()
    scoring.full_run(as_of=AS_OF)
    first = reference(shop)
    person, members = records_of_person()
    buyers = set(first["aggregates"])
    # A linked buyer whose person has no other buying record: its person row goes too.
    gone = next(
        r
        for r in shop["records"]
        if r.pk in buyers
        and r != lone
        and r.pk in person
        and members[person[r.pk]] & buyers == {r.pk}
    )
    newcomer = next(r for r in shop["records"] if r.pk not in buyers)
    before_records, before_persons = stored_records(), stored_persons()
    assert -lone.pk in before_persons and person[gone.pk] in before_persons
    Order.objects.filter(contact__in=[gone, lone], total__gt=0).update(total=Decimal("-5"))
    Order.objects.bulk_create([make_order(newcomer.unit, newcomer, 30_000, 2, "42.50")])

    scoring.refresh_buyers([gone.pk, lone.pk, newcomer.pk], now=AS_OF)
    records, persons = stored_records(), stored_persons()
    assert gone.pk not in records and lone.pk not in records and newcomer.pk in records
    assert person[gone.pk] not in persons and -lone.pk not in persons
    newcomer_key = person.get(newcomer.pk, -newcomer.pk)
    assert newcomer_key in persons
    row = RecordScore.objects.get(contact=newcomer)
    last, n, cents = reference(shop, [*Order.objects.all()])["aggregates"][newcomer.pk]
    assert (row.last_purchase_at, row.purchases, row.net) == (last, n, Decimal(cents) / 100)
    assert n == 1  # its other orders, if any, are returns: now it buys
    if newcomer_key < 0:
        assert PersonScore.objects.get(contact=newcomer).key == newcomer_key
    else:
        assert PersonScore.objects.get(person_id=newcomer_key).key == newcomer_key
    untouched = {gone.pk, lone.pk, newcomer.pk}
    assert {c: v for c, v in records.items() if c not in untouched} == {
        c: v for c, v in before_records.items() if c not in untouched
    }
    keys = {person[gone.pk], -lone.pk, newcomer_key}
    assert {k: v for k, v in persons.items() if k not in keys} == {
        k: v for k, v in before_persons.items() if k not in keys
    }
    # The next full run agrees with the raw rows.
    scoring.full_run(as_of=AS_OF)
    expected = reference(shop, [*Order.objects.all()])
    assert stored_records() == expected["records"]
    assert stored_persons() == expected["persons"]


def test_a_refresh_costs_the_same_statements_for_one_buyer_or_many(world, shop):
    """The till's path: a refresh reaches orders, links and score rows through the touched
    ids, so its statements do not grow with the buyers (nor with the network); and buyers
    of one store or of three are refreshed alike."""
    from django.test.utils import CaptureQueriesContext

    scoring.full_run(as_of=AS_OF)
    buyers = [r.pk for r in shop["records"] if r.pk in stored_records()]
    one_store = [r.pk for r in shop["records"] if r.pk in buyers and r.unit == world.unit_a]
    counts = []
    for touched in (buyers[:1], one_store, buyers):
        with CaptureQueriesContext(connection) as queries:
            scoring.refresh_buyers(touched, now=AS_OF)
        counts.append(len(queries))
    assert counts[0] == counts[1] == counts[2], counts
    assert stored_records() == reference(shop)["records"]


def test_orders_written_update_scores_after_commit(world, shop, django_capture_on_commit_callbacks):
    scoring.full_run(as_of=AS_OF)
    buyers = {o.contact_id for o in shop["orders"]}
    record = next(r for r in shop["records"] if r.pk not in buyers)
    order = make_order(record.unit, record, 20_000, 0, 80)
    with django_capture_on_commit_callbacks(execute=True):
        order.save()
        orders_written([record.pk, None])
        assert record.pk not in stored_records()
    score_row = RecordScore.objects.get(contact_id=record.pk)
    assert (score_row.purchases, score_row.net, score_row.recency) == (1, Decimal(80), 5)


# --- the grid ----------------------------------------------------------------------------


def test_default_grid_uses_the_eleven_groups():
    assert set(DEFAULT_GRID) == set(CELLS) and len(CELLS) == 25
    assert set(DEFAULT_GRID.values()) == set(Group.values) and len(Group.values) == 11
    assert DEFAULT_GRID["r5f5"] == "champions" and DEFAULT_GRID["r1f1"] == "lost"
    assert validate_grid(DEFAULT_GRID) == DEFAULT_GRID


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda g: g.pop("r3f4"), "Cell r3f4 (recency 3, frequency 4) has no group"),
        (lambda g: g.update(r2f2="dormant"), "Cell r2f2 (recency 2, frequency 2): 'dormant'"),
        (lambda g: g.update(r6f1="lost"), "'r6f1' is not a cell"),
        (lambda g: g.update(r1f1=None), "Cell r1f1 (recency 1, frequency 1): None"),
        (lambda g: g.update(R5F5="lost"), "'R5F5' is not a cell"),
    ],
)
def test_bad_grids_are_refused_naming_the_cell(change, message):
    grid = dict(DEFAULT_GRID)
    change(grid)
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_grid(grid)


@pytest.mark.parametrize("grid", [[], "champions", [["lost"] * 5] * 5, None, 3])
def test_grids_of_another_shape_are_refused(grid):
    with pytest.raises(ValidationError, match="25 cells"):
        validate_grid(grid)


def test_hq_sets_the_grid_and_the_scores_follow(world, shop, django_capture_on_commit_callbacks):
    scoring.full_run(as_of=AS_OF)
    with pytest.raises(PermissionDenied):
        rfm_policy_update(actor=world.manager_a, grid=dict(DEFAULT_GRID))
    with pytest.raises(ValidationError, match="r4f2"):
        rfm_policy_update(actor=world.hq_admin, grid={**DEFAULT_GRID, "r4f2": "vip"})
    assert not RfmPolicy.objects.exists()
    grid = {c: "lost" for c in CELLS} | {"r5f5": "champions", "r5f4": "champions"}
    with django_capture_on_commit_callbacks(execute=True):
        rfm_policy_update(actor=world.hq_admin, grid=grid, window_months="12")
    policy = RfmPolicy.objects.get()
    assert (policy.grid, policy.window_months) == (grid, 12)
    groups = {s.group for s in RecordScore.objects.all()}
    assert groups <= {"lost", "champions"} and "lost" in groups
    start = scoring.months_before(CutPoints.objects.get(level="person").as_of, 12)
    assert all(s.last_purchase_at >= start for s in RecordScore.objects.all())
    with pytest.raises(ValidationError, match="months from 1 to 120"):
        rfm_policy_update(actor=world.hq_admin, window_months="0")


def test_months_before_keeps_the_calendar():
    moment = dt.datetime(2026, 3, 31, 12, 0, tzinfo=dt.UTC)
    assert scoring.months_before(moment, 1) == moment.replace(month=2, day=28)
    assert scoring.months_before(moment, 24) == moment.replace(year=2024)
    assert scoring.months_before(moment, 3) == moment.replace(year=2025, month=12)


# --- the cards ---------------------------------------------------------------------------


def test_the_cards_show_the_groups(world, shop, client):
    from django.urls import reverse

    from enseigne.identity.models import Person

    scoring.full_run(as_of=AS_OF)
    score_row = RecordScore.objects.filter(unit_path=world.unit_a.path).first()
    assert score_row is not None
    record = next(r for r in shop["records"] if r.pk == score_row.contact_id)
    client.force_login(world.manager_a)
    page = client.get(reverse("contact_detail", args=[record.public_id])).content.decode()
    assert 'id="rfm-group"' in page
    assert f"{escape(Group(score_row.group).label)} <span" in page
    assert f"R{score_row.recency} F{score_row.frequency} M{score_row.monetary}" in page
    assert 'id="network-rfm-group"' not in page
    # A record that bought nothing lately shows no group.
    quiet = next(
        r for r in shop["records"] if r.unit_id == world.unit_a.pk and r.pk not in stored_records()
    )
    assert (
        'id="rfm-group"'
        not in client.get(reverse("contact_detail", args=[quiet.public_id])).content.decode()
    )

    person_row = PersonScore.objects.filter(person__isnull=False).first()
    assert person_row is not None
    person = Person.objects.get(pk=person_row.person_id)
    client.force_login(world.hq_admin)
    page = client.get(reverse("person_detail", args=[person.public_id])).content.decode()
    label = escape(Group(person_row.group).label)
    assert f'<strong id="network-rfm-group">{label}</strong>' in page


def test_a_tills_batch_updates_its_buyers_scores_once_committed(
    world, client, django_capture_on_commit_callbacks
):
    """The product's path: the orders endpoint writes, the order hook queues the refresh
    after commit, the buyer's store score exists; the order without a buyer touches nobody."""
    from tests.test_orders import _order, _post

    buyer = ContactFactory(unit=world.unit_a, email="caisse.1.client@orange.fr")
    with django_capture_on_commit_callbacks(execute=True):
        answer = _post(
            client,
            world.manager_a,
            world.unit_a,
            [_order("T-1", contact=str(buyer.public_id), total="45.00"), _order("T-2")],
        )
    assert answer.status_code == 200, answer.content
    score_row = RecordScore.objects.get(contact_id=buyer.pk)
    assert (score_row.purchases, score_row.net) == (1, Decimal("45.00"))
    assert RecordScore.objects.count() == 1


def test_a_run_as_of_a_past_moment_ignores_later_orders(world):
    """The month-end pictures (the demo's, a re-run) score what was known at that moment."""
    buyer = ContactFactory(unit=world.unit_a)
    when = timezone.now().replace(microsecond=0)
    for n, days_ago in enumerate((60, 40, 5)):
        Order.objects.create(
            unit=world.unit_a,
            unit_path=world.unit_a.path,
            external_id=f"P-{n}",
            contact=buyer,
            occurred_at=when - dt.timedelta(days=days_ago),
            total=Decimal("20.00"),
            source="api",
        )
    scoring.full_run(as_of=when - dt.timedelta(days=30))
    score = RecordScore.objects.get(contact=buyer)
    assert (score.purchases, score.net) == (2, Decimal("40.00"))
    scoring.full_run(as_of=when)
    assert RecordScore.objects.get(contact=buyer).purchases == 3


def test_the_heat_map_says_why_a_frequency_score_is_empty(world, client):
    """Buyers who all bought once share one frequency score: the other columns are empty
    and the page says why (a store manager read an unexplained column of zeros)."""
    when = timezone.now().replace(microsecond=0)
    for n in range(6):
        Order.objects.create(
            unit=world.unit_a,
            unit_path=world.unit_a.path,
            external_id=f"E-{n}",
            contact=ContactFactory(unit=world.unit_a),
            occurred_at=when - dt.timedelta(days=3 + 20 * n),
            total=Decimal("20.00"),
            source="api",
        )
    scoring.full_run(as_of=when)
    used = set(RecordScore.objects.values_list("frequency", flat=True))
    assert len(used) == 1
    client.force_login(world.manager_a)
    page = client.get("/rfm/").content.decode()
    empty = ", ".join(f"F{f}" for f in range(1, 6) if f not in used)
    assert 'id="rfm-empty-scores"' in page and f"No buyer has {empty}:" in page
    client.force_login(world.manager_b)  # no buyer at all in Lille: nothing to explain
    assert 'id="rfm-empty-scores"' not in client.get("/rfm/").content.decode()
