"""Why two records are one person, in words: the model's comparisons on the review queue
and the person card (issue 20: "why each record is linked (the comparison levels and match
weight)")."""

from __future__ import annotations

import pytest
from django.utils import translation

from enseigne.identity import evidence, probabilistic
from enseigne.identity.models import LinkMethod, MatchCandidate, RecordLink
from tests.factories import ContactFactory


def model_labels() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for comparison in probabilistic._comparisons(True, True, True):
        spec = comparison.get_comparison("duckdb").as_dict()
        found[spec["output_column_name"]] = {
            level["label_for_charts"]
            for level in spec["comparison_levels"]
            if not level.get("is_null_level")
        }
    return found


def test_every_comparison_and_level_the_model_defines_has_words():
    labels = model_labels()
    assert set(labels) <= set(evidence.COMPARISONS)
    unknown = {label for levels in labels.values() for label in levels} - set(evidence.LEVELS)
    assert not unknown


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        (None, []),
        ({}, []),
        ({"levels": {}}, []),
        ({"alert": "cluster over the cap", "records": 30}, []),
        (
            {"levels": {"name": "swapped first/last", "birthday": "different"}},
            [("Name", "first and last names swapped", "for"), ("Birthday", "different", "against")],
        ),
        ({"levels": {"phone": "missing"}}, [("Phone", "missing on one record", "neutral")]),
        # A level a later model names differently is shown as written, never dropped.
        ({"levels": {"shoe_size": "42 vs 43"}}, [("shoe_size", "42 vs 43", "neutral")]),
    ],
)
def test_comparisons_read_detail_shapes(detail, expected):
    with translation.override("en"):
        rows = evidence.comparisons(detail)
    assert [(r.label, r.level, r.leaning) for r in rows] == expected


def test_comparisons_speak_french():
    with translation.override("fr"):
        (row,) = evidence.comparisons({"levels": {"name": "swapped first/last"}})
    assert row.label == "Nom" and "inversés" in row.level


@pytest.mark.django_db
def test_review_queue_and_person_card_show_what_was_compared(world, client):
    left = ContactFactory(unit=world.unit_a, email="l.dupont@orange.fr", first_name="Léa")
    right = ContactFactory(unit=world.unit_b, email="lea.d@free.fr", first_name="Dupont")
    levels = {"name": "swapped first/last", "birthday": "exact", "email": "different"}
    MatchCandidate.objects.create(
        left=left,
        right=right,
        reason=MatchCandidate.Reason.MODEL,
        score=0.3,
        detail={"levels": levels, "weight": 4.25},
    )
    client.force_login(world.hq_admin)
    with translation.override("en"):
        page = client.get("/hq/people/review/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "first and last names swapped" in page and "match weight 4.3" in page
    assert "text-bg-danger" in page  # the different e-mails speak against

    # The model joined them: the card says why, with the record it was compared with.
    link = RecordLink.objects.get(contact=right)
    link.person_id = RecordLink.objects.get(contact=left).person_id
    link.method, link.score = LinkMethod.MODEL, 0.97
    link.evidence = {"with": left.pk, "score": 0.97, "weight": 9.5, "levels": levels}
    link.save()
    card = client.get(
        f"/hq/people/{link.person.public_id}/", HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "Compared with the record of Lyon" in card
    assert "match weight 9.5" in card and "first and last names swapped" in card
