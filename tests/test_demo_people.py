"""The demo's people (issue 20): records of one person in several stores, typed differently."""

from __future__ import annotations

import random

import pytest
from django.db.models import F

from enseigne.analytics.models import CrossShopping, NetworkPeople
from enseigne.contacts.models import Contact
from enseigne.demo import people as demo_people
from enseigne.demo import seed
from enseigne.identity.models import MatchCandidate, RecordLink
from tests.demo_purchases import assert_a_year_of_purchases

pytestmark = pytest.mark.slow  # seeds the demo


def person_ids(**lookup) -> set[int]:
    return set(
        RecordLink.objects.filter(**{f"contact__{k}": v for k, v in lookup.items()}).values_list(
            "person_id", flat=True
        )
    )


def test_the_demo_has_people_in_several_stores(db):
    summary = seed.seed(contacts_total=300)
    assert summary["people_seeded"] == 40
    assert {"same", "email_case", "typo", "changed_phone", "no_key"} <= set(summary["variations"])
    # Amélie: the same e-mail in Lyon and Lille, one person, reachable by e-mail in both.
    amelie = Contact.objects.filter(email=demo_people.LYON_LILLE_EMAIL)
    assert sorted(amelie.values_list("unit__code", "email_consent")) == [
        ("lille", "granted"),
        ("lyon", "granted"),
    ]
    assert len(person_ids(email=demo_people.LYON_LILLE_EMAIL)) == 1
    # The e-mail in another case and Gmail's dots (the demo network folds them) link too.
    upper = Contact.objects.filter(email__regex=r"[A-Z]")
    assert upper.exists()
    for record in upper:
        lower = Contact.objects.filter(email=record.email.lower()).exclude(pk=record.pk)
        if lower.exists():
            assert person_ids(pk=record.pk) == person_ids(pk=lower.first().pk)
    # HQ's review queue shows real cases; the couples' shared phone is refused, not merged.
    assert MatchCandidate.objects.filter(status="open", reason="conflict").exists()
    couples = MatchCandidate.objects.filter(status="refused", reason="contradiction")
    assert couples.count() == 3
    figures = NetworkPeople.objects.get()
    assert figures.people < figures.records == Contact.objects.count()
    assert figures.shared >= 30
    assert CrossShopping.objects.filter(left_unit_id__lt=F("right_unit_id")).exists()
    # The same seed's year of purchases (issue 21), checked here to seed once.
    assert_a_year_of_purchases(summary)


def test_the_people_are_drawn_the_same_every_time():
    def draw():
        rng = random.Random(42)
        drawn = demo_people._people(
            rng, 60, seed.FIRST_NAMES, seed.LAST_NAMES, demo_people._Phones(rng)
        )
        return [(p.email, p.stores, p.visits) for p in drawn]

    assert draw() == draw()
