"""The review queue never offers a pair the merge would refuse (HQ clicked "same person:
merge" on two different people and was refused): a model pair or a cluster alert whose
persons have different e-mails and different birthdays is recorded as refused, with the
merge's reason; other pairs are offered as before."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from enseigne.identity import batch
from enseigne.identity.clustering import Alert
from enseigne.identity.models import MatchCandidate
from enseigne.identity.probabilistic import MatchResult
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def contact(world, email, birthday, unit=None):
    return ContactFactory(unit=unit or world.unit_a, email=email, birthday=birthday)


def result(pairs: list[tuple[int, int]], alerts: list[list[int]]) -> MatchResult:
    frame = pd.DataFrame(
        [
            {
                "left_id": a,
                "right_id": b,
                "decision": "review",
                "match_probability": 0.8,
                "match_weight": 3.0,
                "reason": "",
                "notes": "",
            }
            for a, b in pairs
        ],
        columns=[
            "left_id",
            "right_id",
            "decision",
            "match_probability",
            "match_weight",
            "reason",
            "notes",
        ],
    )
    return MatchResult(
        pairs=frame,
        clusters=pd.DataFrame(),
        alerts=[
            Alert(record_ids=[str(i) for i in ids], reason="cluster too large") for ids in alerts
        ],
        model={},
    )


def test_pairs_the_merge_would_refuse_are_never_offered(world):
    philippe = contact(world, "philippe.gauthier@orange.fr", dt.date(1970, 3, 1))
    manon = contact(world, "manon.perrin@orange.fr", dt.date(1992, 7, 9))
    helene = contact(world, "helene@orange.fr", dt.date(1980, 1, 1))
    helene_typo = contact(world, "helene@ornage.fr", None, unit=world.unit_b)  # no birthday
    paul = contact(world, "paul@orange.fr", dt.date(1985, 5, 5))
    paula = contact(world, "paula@orange.fr", dt.date(1990, 6, 6))
    counts = batch._queue(
        result([(philippe.pk, manon.pk), (helene.pk, helene_typo.pk)], [[paul.pk, paula.pk]]),
        links={},
    )
    stored = {(c.left_id, c.right_id): (c.status, c.reason) for c in MatchCandidate.objects.all()}
    refused = (MatchCandidate.Status.REFUSED, MatchCandidate.Reason.CONTRADICTION)
    assert stored[tuple(sorted((philippe.pk, manon.pk)))] == refused
    assert stored[tuple(sorted((paul.pk, paula.pk)))] == refused
    assert stored[tuple(sorted((helene.pk, helene_typo.pk)))] == (
        MatchCandidate.Status.OPEN,
        MatchCandidate.Reason.MODEL,
    )
    assert counts == {"queued": 1, "refused": 2}


def test_a_pair_is_refused_when_the_persons_other_records_contradict(world):
    """The pair itself has no birthday to compare, but the left record's person holds a
    record that contradicts the right one: the merge of the two persons would be refused."""
    from enseigne.identity.models import RecordLink

    anne = contact(world, "anne@orange.fr", dt.date(1975, 2, 2))
    anne_elsewhere = contact(world, "anne@orange.fr", None, unit=world.unit_b)
    assert RecordLink.objects.get(contact=anne).person_id == (
        RecordLink.objects.get(contact=anne_elsewhere).person_id
    )
    # The right record's person also holds this record, born another year.
    contact(world, "a.martin@orange.fr", dt.date(1999, 9, 9), unit=world.unit_a2)
    other_no_birthday = contact(world, "a.martin@orange.fr", None, unit=world.unit_b)
    batch._queue(result([(anne_elsewhere.pk, other_no_birthday.pk)], []), links={})
    (candidate,) = MatchCandidate.objects.all()
    assert candidate.status == MatchCandidate.Status.REFUSED
