"""What the model compared between two records, in words HQ reads.

The model (``probabilistic``) names its comparisons and their levels in English labels;
a review entry (``MatchCandidate.detail``) and a model link (``RecordLink.evidence``) keep
them with the pair's match weight. This module turns them into rows for the review queue
and the person card, in the reader's language, each with whether it speaks for or against
the match. ``tests/test_identity_evidence.py`` checks every label the model defines is
known here.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

COMPARISONS: dict[str, Promise] = {
    "name": _("Name"),
    "birthday": _("Birthday"),
    "place": _("Postcode and city"),
    "phone": _("Phone"),
    "email": _("E-mail"),
    "address": _("Street address"),
}

FOR, AGAINST, NEUTRAL = "for", "against", "neutral"

# label → (words, whether it speaks for the match)
LEVELS: dict[str, tuple[Promise, str]] = {
    "exact": (_("identical"), FOR),
    "swapped first/last": (_("first and last names swapped"), FOR),
    "both Jaro-Winkler >= 0.92": (_("spelt almost the same"), FOR),
    "swapped first/last, Jaro-Winkler >= 0.88": (
        _("swapped, spelt almost the same"),
        FOR,
    ),
    "both Jaro-Winkler >= 0.80": (_("spelt alike"), FOR),
    "Jaro-Winkler >= 0.90": (_("spelt almost the same"), FOR),
    "Jaro-Winkler >= 0.80": (_("spelt alike"), FOR),
    "same last name only": (_("same last name, different first name"), NEUTRAL),
    "same first name only": (_("same first name, different last name"), NEUTRAL),
    "one field off": (_("day, month or year differs"), NEUTRAL),
    "same postcode and city": (_("same postcode and city"), FOR),
    "same postcode": (_("same postcode"), FOR),
    "same city": (_("same city"), FOR),
    "same département": (_("same département"), NEUTRAL),
    "same local part": (_("same name before the @, other domain"), FOR),
    "different": (_("different"), AGAINST),
    "missing": (_("missing on one record"), NEUTRAL),
}


@dataclass(frozen=True)
class Comparison:
    label: str
    level: str
    leaning: str


def comparisons(detail: dict | None) -> list[Comparison]:
    """The compared fields of a review entry's detail or a model link's evidence, in the
    model's order; a label this module does not know is shown as the model wrote it."""
    levels = (detail or {}).get("levels") or {}
    rows = []
    for name, raw in levels.items():
        words, leaning = LEVELS.get(str(raw), (str(raw), NEUTRAL))
        rows.append(Comparison(str(COMPARISONS.get(name, name)), str(words), leaning))
    return rows
