"""From the model's scored pairs to clusters (issue 20): which records become one person,
which pairs go to HQ's review queue, which are refused.

Pure data code, shared by both backends of :mod:`enseigne.identity.probabilistic` (the
pairs are scored by Splink; the decisions are taken here, in Python). The rules:

- A pair with a **hard contradiction** (two different valid e-mails AND two different
  birthdays) is ``refused``: never merged, not even reviewed.
- **Strong** pairs (probability ≥ ``match_threshold``, not contradicted) are the edges of
  connected components. A component over ``cluster_size_cap`` records is an **alert**, never a
  merge (a shop's address, a test e-mail).
- A component is kept whole when every pair of its members is either **linked** (probability
  ≥ ``review_threshold``) or **tolerated**: scored lower, but without a conflicting field
  (:data:`CONFLICTS`: two different valid e-mails, two different birthdays, two different
  mobile phones, two names with nothing in common) *and* with a strong neighbour in common
  inside the cluster — a third record of the person that links well to both. A third record
  that shares little with one of the other two (its e-mail missing, its phone changed to
  nothing) no longer keeps two strong pairs apart; two groups that only one strong edge ties
  together are still not one person, since their members have no strong neighbour in common
  (nothing chains through one link), and a pair that contradicts itself is never pulled in.
- Otherwise the component is split by complete linkage: strong edges best first, two groups
  join only if the joined group meets the same rule; each strong edge left out goes to
  ``review`` with the reason. Pairs between ``review_threshold`` and ``match_threshold`` that
  end up in no common cluster go to ``review`` too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from enseigne.identity.keys import is_mobile

if TYPE_CHECKING:
    from enseigne.identity.probabilistic import MatchSettings

# The comparison level that says "these two records disagree on this field", per comparison
# output column, and how a reviewer reads it. The phone's is narrowed to two mobiles below (a
# landline is a household's, not a person's).
CONFLICTS = {
    "email": ("different", "different e-mails"),
    "birthday": ("different", "different birthdays"),
    "phone": ("different", "different mobile phones"),
    "name": ("different", "different names"),
}
HARD_CONTRADICTION = "two different valid e-mails and two different birthdays"
WEAK_LINK = "weak link: the records it would join do not all match each other"


@dataclass
class Alert:
    record_ids: list[str]
    reason: str


def field_conflicts(
    pairs: pd.DataFrame,
    phones: tuple[pd.Series, pd.Series] | None = None,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """The fields on which each pair disagrees (e.g. "different e-mails, different
    birthdays"; "" when none), from the pairs' ``<field>_level`` labels. ``phones``: both
    sides' phones, to count two different phones as a conflict only when both are mobiles.
    ``rows``: a boolean mask of the pairs to read (the others get ""); the clustering
    reads conflicts only below the match threshold, and telling a mobile costs ~50 µs."""
    out = np.full(len(pairs), "", dtype=object)
    wanted = np.ones(len(pairs), dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    mobile: dict[str, bool] = {}

    def is_mobile_once(phone: str) -> bool:
        if phone not in mobile:
            mobile[phone] = is_mobile(phone)
        return mobile[phone]

    for name, (level, label) in CONFLICTS.items():
        column = f"{name}_level"
        if column not in pairs.columns:
            continue
        mask = (pairs[column] == level).to_numpy() & wanted
        if name == "phone":
            if phones is None:
                continue
            left, right = (np.asarray(side, dtype=object) for side in phones)
            checked = np.flatnonzero(mask)
            mask = np.zeros(len(pairs), dtype=bool)
            mask[checked] = [is_mobile_once(left[i]) and is_mobile_once(right[i]) for i in checked]
        out[mask] = np.where(out[mask] == "", label, out[mask] + ", " + label)
    return out


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:
            parent[x], x = root, parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if rb < ra:
                ra, rb = rb, ra
            self.parent[rb] = ra


def pair_key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def strong_components(pairs: pd.DataFrame, settings: MatchSettings) -> dict[str, str]:
    """record_id → component root over strong, non-contradicted edges, for components of
    3 records or more and at most the size cap (those whose missing pairs are worth
    scoring before the density check)."""
    uf = _UnionFind()
    strong = pairs[
        (pairs["match_probability"] >= settings.match_threshold) & ~pairs["contradiction"]
    ]
    for a, b in zip(strong["left_id"], strong["right_id"], strict=True):
        uf.union(a, b)
    nodes = set(uf.parent) | set(uf.parent.values())
    roots = {n: uf.find(n) for n in nodes}
    sizes: dict[str, int] = {}
    for r in roots.values():
        sizes[r] = sizes.get(r, 0) + 1
    return {n: r for n, r in roots.items() if 3 <= sizes[r] <= settings.cluster_size_cap}


class _Density:
    """Whether records may share a cluster: every pair linked, or tolerated (no conflicting
    field and a strong neighbour in common inside the cluster)."""

    def __init__(self) -> None:
        self.linked: set[tuple[str, str]] = set()
        self.tolerated: set[tuple[str, str]] = set()
        self.conflict: dict[tuple[str, str], str] = {}
        self.neighbours: dict[str, set[str]] = {}

    def why_not(self, x: str, y: str, cluster: set[str]) -> str | None:
        """None if x and y may be in ``cluster`` together, else the reason they may not."""
        k = pair_key(x, y)
        if k in self.linked:
            return None
        if k in self.tolerated:
            common = self.neighbours.get(x, set()) & self.neighbours.get(y, set())
            if not common.isdisjoint(cluster):
                return None
            return "weak link: no record links well to both ends"
        if k in self.conflict:
            return f"weak link: it would join records with {self.conflict[k]}"
        return WEAK_LINK

    def is_bridge(self, a: str, b: str) -> bool:
        """A strong edge whose two ends each have other strong neighbours, none shared."""
        na, nb = self.neighbours[a], self.neighbours[b]
        return len(na) > 1 and len(nb) > 1 and na.isdisjoint(nb)

    def why_not_join(self, first: list[str], second: list[str]) -> str | None:
        cluster = set(first) | set(second)
        for x in first:
            for y in second:
                why = self.why_not(x, y, cluster)
                if why is not None:
                    return why
        return None


def cluster_pairs(
    pairs: pd.DataFrame,
    record_ids: Iterable[str],
    settings: MatchSettings,
) -> tuple[pd.DataFrame, pd.DataFrame, list[Alert]]:
    """Decide each pair and build clusters. ``pairs`` needs left_id, right_id,
    match_probability, a boolean ``contradiction`` and ``conflicts`` (the fields the pair
    disagrees on, "" when none: :func:`field_conflicts`). Returns (pairs with ``decision``
    and ``reason``, clusters, alerts)."""
    left = pairs["left_id"].to_numpy()
    right = pairs["right_id"].to_numpy()
    prob = pairs["match_probability"].to_numpy()
    contra = pairs["contradiction"].to_numpy()
    conflicts = pairs["conflicts"].to_numpy()
    density = _Density()
    strong: list[tuple[float, str, str]] = []
    uf = _UnionFind()
    for a, b, p, c, why in zip(left, right, prob, contra, conflicts, strict=True):
        if c:
            continue
        k = pair_key(a, b)
        if p >= settings.review_threshold:
            density.linked.add(k)
        elif why:
            density.conflict[k] = why
        else:
            density.tolerated.add(k)
        if p >= settings.match_threshold:
            strong.append((p, a, b))
            uf.union(a, b)
            density.neighbours.setdefault(a, set()).add(b)
            density.neighbours.setdefault(b, set()).add(a)
    # Every node of a strong edge is in uf.parent's keys or values (a root that was never
    # re-parented appears only as a value).
    nodes = set(uf.parent) | set(uf.parent.values())
    components: dict[str, list[str]] = {}
    for node in nodes:
        components.setdefault(uf.find(node), []).append(node)

    cluster_of: dict[str, str] = {}
    alerted: set[str] = set()
    alerts: list[Alert] = []
    split_reason: dict[tuple[str, str], str] = {}
    strong_by_root: dict[str, list[tuple[float, str, str]]] = {}
    for p, a, b in strong:
        strong_by_root.setdefault(uf.find(a), []).append((p, a, b))

    for root, members in components.items():
        members = sorted(set(members))
        n = len(members)
        if n > settings.cluster_size_cap:
            alerts.append(
                Alert(
                    members,
                    f"{n} records link together, over the cluster size cap of "
                    f"{settings.cluster_size_cap}: not merged",
                )
            )
            alerted.update(members)
            continue
        whole = set(members)
        if all(
            density.why_not(members[i], members[j], whole) is None
            for i in range(n)
            for j in range(i + 1, n)
        ):
            for m in members:
                cluster_of[m] = members[0]
            continue
        # Complete linkage over the strong edges, best first; an edge between two records
        # that each have other strong neighbours, none in common (a bridge between two
        # groups), comes last, so it cannot pull a record out of its own group.
        group: dict[str, list[str]] = {m: [m] for m in members}
        for _inside, _p, a, b in sorted(
            ((not density.is_bridge(a, b), p, a, b) for p, a, b in strong_by_root.get(root, [])),
            reverse=True,
        ):
            ga, gb = group[a], group[b]
            if ga is gb:
                continue
            why = density.why_not_join(ga, gb)
            if why is None:
                merged = ga + gb
                for x in merged:
                    group[x] = merged
            else:
                split_reason[pair_key(a, b)] = why
        for m in members:
            cluster_of[m] = min(group[m])

    decisions = []
    reasons = []
    for a, b, p, c in zip(left, right, prob, contra, strict=True):
        if c:
            decisions.append("refused")
            reasons.append(HARD_CONTRADICTION)
        elif a in alerted or b in alerted:
            decisions.append("alert")
            reasons.append("cluster over the size cap")
        elif a in cluster_of and cluster_of.get(a) == cluster_of.get(b):
            decisions.append("match")
            reasons.append("")
        elif p >= settings.review_threshold:
            decisions.append("review")
            reasons.append(split_reason.get(pair_key(a, b), "score in the review band"))
        else:
            decisions.append("below")
            reasons.append("")
    out = pairs.assign(decision=decisions, reason=reasons)
    out = out[out["decision"] != "below"].reset_index(drop=True)

    ids = pd.Series(list(record_ids), dtype=object)
    clusters = pd.DataFrame(
        {"record_id": ids, "cluster_id": ids.map(lambda r: cluster_of.get(r, r))}
    )
    return out, clusters, alerts
