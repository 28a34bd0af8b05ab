"""The probabilistic pass writes back as the rules say (issue 20): clusters become persons,
the review band becomes HQ's queue, and nothing HQ decided by hand is undone by a run."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from enseigne.contacts.models import Contact
from enseigne.contacts.records import record_of
from enseigne.identity.batch import match_network, network_records
from enseigne.identity.linking import link_new_records
from enseigne.identity.models import KeptApart, LinkMethod, MatchCandidate, RecordLink
from enseigne.identity.probabilistic import match
from enseigne.identity.tests.test_probabilistic import SYL, network

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(world):
    """About 480 records of 400 people in Lyon and Lille: one in five has a second record in
    Lille with a typo, a missing birthday, no shared e-mail or phone (only the model joins
    those)."""
    units = {"lyon": world.unit_a, "lille": world.unit_b}
    rows = network(400, seed=11)
    made = Contact.objects.bulk_create(
        [
            Contact(
                unit=units[r["unit_id"]],
                unit_path=units[r["unit_id"]].path,
                first_name=r["first_name"],
                last_name=r["last_name"],
                birthday=r["birthday"],
                email=r["email"],
                phone=r["phone"] or (None if r["email"] else f"+3378{i:07d}"),
                attributes={"postcode": r["postcode"], "city": r["city"]},
            )
            for i, r in enumerate(rows)
        ]
    )
    link_new_records([record_of(c) for c in made])
    return {r["record_id"]: c for r, c in zip(rows, made, strict=True)}


def person(contact) -> int:
    return RecordLink.objects.get(contact=contact).person_id


def test_the_model_joins_what_keys_could_not_and_queues_the_doubtful(world, people):
    only_model = [
        (people[f"p{p}"], people[f"p{p}-b"])
        for p in range(0, 400, 5)
        if people[f"p{p}"].email != people[f"p{p}-b"].email
        and people[f"p{p}"].phone != people[f"p{p}-b"].phone
    ]
    assert only_model and all(person(a) != person(b) for a, b in only_model)
    counts = match_network(world.root)
    joined = sum(person(a) == person(b) for a, b in only_model)
    assert joined >= 0.8 * len(only_model), (joined, len(only_model))
    moved = RecordLink.objects.filter(method=LinkMethod.MODEL)
    assert moved.count() == counts["merged"] > 0
    assert all(0.5 <= link.score <= 1 for link in moved)
    # Each model link keeps why: the record it was compared with (one of its person's),
    # the levels and the weight of that pair, and its score is that pair's.
    for link in moved:
        assert link.evidence["score"] == link.score and link.evidence["levels"]
        assert isinstance(link.evidence["weight"], float)
        assert person(Contact.objects.get(pk=link.evidence["with"])) == link.person_id
    # No stranger joined: two records of different people never share a person.
    truth = {c.pk: key.split("-")[0] for key, c in people.items()}
    by_person: dict[int, set[str]] = {}
    for contact_id, person_id in RecordLink.objects.values_list("contact_id", "person_id"):
        by_person.setdefault(person_id, set()).add(truth[contact_id])
    assert all(len(owners) == 1 for owners in by_person.values())
    review = MatchCandidate.objects.filter(reason=MatchCandidate.Reason.MODEL)
    assert all("levels" in c.detail or "alert" in c.detail for c in review)


def test_a_rerun_never_undoes_a_split_or_a_manual_link(world, people):
    match_network(world.root)
    pairs = [
        (people[f"p{p}"], people[f"p{p}-b"])
        for p in range(0, 400, 5)
        if person(people[f"p{p}"]) == person(people[f"p{p}-b"])
    ]
    (a, b), (c, d) = pairs[0], pairs[1]
    # HQ split a from b (b gets a new person; the pair is kept apart) and linked c by hand.
    from enseigne.identity.models import Person

    RecordLink.objects.filter(contact=b).update(
        person=Person.objects.create(), method=LinkMethod.MANUAL
    )
    left, right = sorted((a.pk, b.pk))
    KeptApart.objects.create(left_id=left, right_id=right)
    RecordLink.objects.filter(contact=c).update(method=LinkMethod.MANUAL)
    before = dict(RecordLink.objects.values_list("contact_id", "person_id"))
    match_network(world.root)
    assert person(a) != person(b)
    assert person(c) == before[c.pk] and person(d) == before[d.pk]


def _street(rng: random.Random) -> str:
    return f"{rng.randrange(1, 200)} rue {''.join(rng.choice(SYL) for _ in range(3))}"


def test_the_street_line_reaches_the_model_and_links_a_corrupted_name(world):
    """A network that keeps its customers' street (attribute ``address``) gets it in the
    model: two records whose names are both mistyped, with nothing else in common but the
    street, the postcode and the birthday (one gave an e-mail, the other a phone), are one
    person, and the street is part of why."""
    units = {"lyon": world.unit_a, "lille": world.unit_b}
    rng = random.Random(4)
    rows = network(400, seed=11)
    streets = {r["record_id"].split("-")[0]: _street(rng) for r in rows}
    contacts = [
        Contact(
            unit=units[r["unit_id"]],
            unit_path=units[r["unit_id"]].path,
            first_name=r["first_name"],
            last_name=r["last_name"],
            birthday=r["birthday"],
            email=r["email"],
            phone=r["phone"] or (None if r["email"] else f"+3378{i:07d}"),
            attributes={
                "postcode": r["postcode"],
                "city": r["city"],
                "address": streets[r["record_id"].split("-")[0]],
            },
        )
        for i, r in enumerate(rows)
    ]
    same = {"birthday": dt.date(1971, 8, 23), "unit_path": world.unit_a.path}
    street = {"postcode": "35700", "city": "Rennes", "address": "14 rue de la Motte-Brûlon"}
    first = Contact(
        unit=world.unit_a,
        first_name="Maëlys",
        last_name="Quéméneur",
        email="maelys.q@free.fr",
        attributes=street,
        **same,
    )
    second = Contact(
        unit=world.unit_b,
        unit_path=world.unit_b.path,
        first_name="Maelis",
        last_name="Kemener",
        birthday=same["birthday"],
        phone="+33299112233",
        attributes={**street, "address": "14, Rue de la Motte Brulon"},
    )
    # A record without the attribute reads as no street.
    bare = Contact(
        unit=world.unit_b, unit_path=world.unit_b.path, first_name="Yves", phone="+33299000001"
    )
    made = Contact.objects.bulk_create([*contacts, first, second, bare])
    link_new_records([record_of(c) for c in made])
    first, second, bare = made[-3:]

    frame = network_records(world.root).set_index("record_id")
    assert frame.loc[str(first.pk), "address"] == "14 rue de la Motte-Brûlon"
    assert frame.loc[str(second.pk), "address"] == "14, Rue de la Motte Brulon"
    assert frame.loc[str(bare.pk), "address"] is None
    assert frame["address"].notna().sum() == len(contacts) + 2

    # The street is compared (after normalisation the two lines are the same) and weighs
    # for the pair: the model with it scores the pair higher than without it.
    def pair_of(result):
        pairs = result.pairs.set_index(["left_id", "right_id"])
        return pairs.loc[tuple(sorted((str(first.pk), str(second.pk))))]

    with_street = pair_of(match(frame.reset_index()))
    without = pair_of(match(frame.reset_index().drop(columns="address")))
    assert with_street["address_level"] == "exact"
    assert with_street["name_level"] != "exact"
    assert "address_level" not in without.index
    assert with_street["match_weight"] > without["match_weight"] + 3

    assert person(first) != person(second)
    match_network(world.root)
    assert person(first) == person(second)
    assert LinkMethod.MODEL in {
        RecordLink.objects.get(contact=first).method,
        RecordLink.objects.get(contact=second).method,
    }
    assert person(bare) not in (person(first), RecordLink.objects.get(contact=made[0]).person_id)
