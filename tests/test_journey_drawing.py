"""The flow in words (journeys.drawing): what HQ and stores read on the journey's pages must
be the builder's wording, never a rule's raw key or an operator's "…" placeholder."""

from __future__ import annotations

import pytest
from django.utils import translation

from enseigne.journeys.drawing import rules_summary, trigger_label

pytestmark = pytest.mark.django_db

BOUGHT = {"match": "all", "rules": [{"field": "bought", "op": "any_in_last_days", "value": 3}]}


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "Purchases any, within the last 3 days"), ("fr", "dans les 3 derniers jours")],
)
def test_a_later_apps_condition_reads_with_its_label_and_its_number(language, expected):
    with translation.override(language):
        words = rules_summary(BOUGHT)
    assert expected in words
    assert "bought" not in words and "…" not in words


def test_nested_groups_values_and_hostile_rules_read_as_words():
    rules = {
        "match": "any",
        "rules": [
            {"field": "city", "op": "equals", "value": "Lyon"},
            {"match": "all", "rules": [{"field": "bought", "op": "ever"}]},
            "not a rule",
            {"field": "<script>", "op": None},
        ],
    }
    with translation.override("en"):
        words = rules_summary(rules)
    assert words.startswith("city is Lyon or (Purchases at least once) or ")
    assert "None" not in words  # a rule without its operator reads as its field alone
    assert rules_summary("nonsense") == ""


@pytest.mark.parametrize(("language", "label"), [("en", "(Email)"), ("fr", "(Email)")])
def test_a_consent_trigger_names_its_channel_by_its_label(language, label):
    with translation.override(language):
        words = trigger_label({"kind": "consent", "channel": "email"})
    assert words.endswith(label) and "(email)" not in words
