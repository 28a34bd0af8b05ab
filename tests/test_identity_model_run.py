"""The probabilistic pass writes back as the rules say (issue 20): clusters become persons,
the review band becomes HQ's queue, and nothing HQ decided by hand is undone by a run."""

from __future__ import annotations

import pytest

from enseigne.contacts.models import Contact
from enseigne.contacts.records import record_of
from enseigne.identity.batch import match_network
from enseigne.identity.linking import link_new_records
from enseigne.identity.models import KeptApart, LinkMethod, MatchCandidate, RecordLink
from enseigne.identity.tests.test_probabilistic import network

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
