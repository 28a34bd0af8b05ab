"""Probabilistic record linkage across the network's stores (issue 20), with Splink.

Pure data code: no Django model is read or written here. The caller hands a **pandas**
DataFrame of contact records with the columns

    record_id, unit_id, first_name, last_name, birthday (date or null), postcode, city,
    phone (E.164 or null), email (normalised or null)

and optionally ``address`` (street line), and gets back scored pairs and clusters
(:class:`MatchResult`). ``dedupe`` matches one table against itself; ``link`` matches two
tables (record ids must be unique across both).

How it works
------------
1. **Preparation** (DuckDB SQL, whatever the backend): NUL bytes removed; names lower-cased,
   accents stripped (œ → oe, æ → ae), every non-letter (hyphen, apostrophe, digit) made a
   space, particles (de, du, des, d', le, la, les, l', van, von, der, den, di, da, del, dos…)
   dropped (unless the name is nothing else), spaces removed — "Jean-Pierre de La Fontaine"
   and "JEAN PIERRE LA FONTAINE" both give ``jeanpierre`` / ``fontaine``. E-mails that are placeholders
   (``test@test.fr``, ``aucun@…``, ``noemail@``, ``none@``, ``x@x.x``, ``@example.com``…) or
   malformed are **ignored** (NULL for the model), and so are phones that are not E.164 or
   are all one or two digits. **Shared values**: a phone, an e-mail or an e-mail local part
   held by more than ``shared_value_limit`` records (a shop's phone, ``contact@…``) is
   **ignored** too: it is set to NULL before comparison, so it neither blocks nor scores,
   and the record keeps a note saying why (``notes`` on the pairs).
2. **Model** (Splink, Fellegi–Sunter): comparisons for names (exact, swapped first/last,
   Jaro–Winkler ≥ 0.92 on both, swapped with Jaro–Winkler ≥ 0.88, Jaro–Winkler ≥ 0.80 on
   both, same last name only, same first name only — a maiden name), birthday (exact, one of
   day/month/year off or day and month swapped), postcode + city (both, postcode, city,
   département), phone (exact), e-mail (exact, same local part) and the optional address.
   Phone and e-mail comparisons are left out when the data has none (FEBRL). u by random
   sampling (an identifier's exact level that no sampled pair shared gets u = 1 / sampled
   pairs), m by EM on the data itself (two passes: blocked on first+last name, then on
   birthday+postcode), the prior from deterministic rules (same name and birthday, same
   e-mail, same phone and first name) with an assumed recall of 0.8. No per-dataset tuning:
   the same defaults run FEBRL and the generated network. (A Jaro–Winkler level on the
   e-mail local part was tried and dropped: local parts are made of names, so EM took
   "similar local part" for "same person".)
3. **Blocking**: equality joins only (phone; e-mail local part; first+last name within a
   département; swapped first/last; birthday+postcode; last name+birthday; first
   name+birthday; postcode+last name; postcode+first name; city+birthday; city+last
   name+first initial; address when given) — each block is small, so the work grows with
   the data, never as a cartesian product. Shared values are NULL, so a shop phone opens no
   block. Before the density check (4.), pairs inside a would-be cluster that no rule
   compared are scored with the same model (blocked on the component).
4. **Clustering** (:mod:`enseigne.identity.clustering`, on the scored pairs): a hard
   contradiction (two different valid e-mails AND two different birthdays) is ``refused``;
   connected components on *strong* edges (≥ ``match_threshold``); a component is kept when
   every pair inside links (≥ ``review_threshold``) or is weak with no conflicting field and
   a strong neighbour in common, otherwise split by complete linkage with the strong edges
   left out sent to ``review`` — nothing chains through one link; over
   ``cluster_size_cap`` records it is an **alert**, never a merge.

Backends: DuckDB (embedded, default) or Spark (``backend="spark"`` with a SparkSession;
preparation still runs in DuckDB, the model's SQL runs on Spark, and clustering works on
the scored pairs in Python, so both backends share the same settings and code).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb
import pandas as pd
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.blocking_rule_library import CustomRule

from enseigne.identity import keys
from enseigne.identity.clustering import (
    Alert,
    cluster_pairs,
    field_conflicts,
    pair_key,
    strong_components,
)

INPUT_COLUMNS = (
    "record_id",
    "unit_id",
    "first_name",
    "last_name",
    "birthday",
    "postcode",
    "city",
    "phone",
    "email",
)
# Read when present: the street line (number and street), for networks that keep it.
OPTIONAL_COLUMNS = ("address",)

NAME_PARTICLES = (
    "de",
    "du",
    "des",
    "d",
    "le",
    "la",
    "les",
    "l",
    "van",
    "von",
    "der",
    "den",
    "di",
    "da",
    "del",
    "della",
    "dos",
    "das",
    "ten",
    "ter",
)

# Local parts and domains that say "no e-mail" (compared after lower-casing): the
# deterministic keys' lists (enseigne/identity/keys.py) plus these.
PLACEHOLDER_LOCALS = (
    "test",
    "tests",
    "aucun",
    "aucune",
    "noemail",
    "no-email",
    "no.email",
    "nomail",
    "no-mail",
    "none",
    "non",
    "no",
    "na",
    "nc",
    "x",
    "xx",
    "xxx",
    "a",
    "aa",
    "email",
    "mail",
    "rien",
    "pasdemail",
    "pas.de.mail",
    "inconnu",
    "unknown",
    "null",
    "nobody",
    "personne",
    "client",
    "contact",
    "info",
    "nepasutiliser",
)
PLACEHOLDER_DOMAIN_PREFIXES = (
    "example.",
    "test.",
    "aucun.",
    "noemail.",
    "nomail.",
    "none.",
    "x.",
    "xx.",
    "xxx.",
    "a.",
    "mailinator.",
)
PLACEHOLDER_LOCAL_PREFIXES = ("aucun", "noemail", "nomail", "pasdemail", "pas.de.mail")

Mode = Literal["dedupe", "link"]
Decision = Literal["match", "review", "refused", "alert"]


@dataclass(frozen=True)
class MatchSettings:
    """Defaults are the product's: no per-dataset tuning."""

    # A pair at or above this probability is a match (strong edge): "more likely the same
    # person than not" under the model's own prior, trained on the data.
    match_threshold: float = 0.5
    # Pairs in [review_threshold, match_threshold) go to review; a pair inside a cluster is at
    # least this good, or weaker without a conflicting field (clustering.py).
    review_threshold: float = 0.05
    # A component with more records than this raises an alert instead of merging.
    cluster_size_cap: int = 20
    # A phone / e-mail / e-mail local part held by more records than this is ignored.
    shared_value_limit: int = 5
    # Training sample sizes.
    u_max_pairs: float = 5e6
    em_max_pairs: float | None = 2e6
    seed: int = 42
    # DuckDB resources (None: DuckDB's defaults — all cores, 80 % of RAM).
    threads: int | None = None
    memory_limit: str | None = None


@dataclass
class MatchResult:
    """``pairs``: one row per scored pair at or above the review threshold, plus refused
    ones — left_id, right_id, match_weight, match_probability, one ``<field>_level`` column
    per comparison (a readable label, e.g. "swapped first/last"), ``decision`` (match,
    review, refused, alert), ``reason``, ``notes`` (ignored shared/placeholder values) and,
    for pairs below the match threshold, ``conflicts`` (the fields they disagree on).
    ``clusters``: record_id → cluster_id (the smallest record_id of the cluster; a
    singleton is its own cluster)."""

    pairs: pd.DataFrame
    clusters: pd.DataFrame
    alerts: list[Alert]
    model: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def review(self) -> pd.DataFrame:
        return self.pairs[self.pairs["decision"] == "review"]

    @property
    def refused(self) -> pd.DataFrame:
        return self.pairs[self.pairs["decision"] == "refused"]

    def cluster_of(self, record_id: str) -> set[str]:
        c = self.clusters
        cid = c.loc[c["record_id"] == record_id, "cluster_id"].iloc[0]
        return set(c.loc[c["cluster_id"] == cid, "record_id"])


# --------------------------------------------------------------------------------------
# Preparation (DuckDB SQL)


def _sql_list(values: Iterable[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _name_sql(col: str) -> str:
    """Normalised name key: accents, case, hyphens, particles; NULL when empty."""
    base = (
        f"lower(strip_accents(replace(replace(replace(replace(coalesce(CAST({col} AS VARCHAR), ''),"
        f" chr(0), ''), 'œ', 'oe'), 'Œ', 'OE'), 'æ', 'ae')))"
    )
    spaced = f"(' ' || regexp_replace({base}, '[^a-z]+', ' ', 'g') || ' ')"
    particles = "|".join(NAME_PARTICLES)
    # Applied twice: "de la" shares the space between its two particles.
    stripped = spaced
    for _ in range(2):
        stripped = f"regexp_replace({stripped}, ' ({particles}) ', ' ', 'g')"
    return f"coalesce(nullif(replace({stripped}, ' ', ''), ''), nullif(replace({spaced}, ' ', ''), ''))"


def _prepare_sql(source: str, has_address: bool) -> str:
    email = "nullif(lower(trim(replace(CAST(email AS VARCHAR), chr(0), ''))), '')"
    phone = "nullif(replace(replace(trim(replace(CAST(phone AS VARCHAR), chr(0), '')), ' ', ''), '.', ''), '')"
    domain_like = " OR ".join(f"starts_with(e_domain, '{p}')" for p in PLACEHOLDER_DOMAIN_PREFIXES)
    local_like = " OR ".join(f"starts_with(e_local, '{p}')" for p in PLACEHOLDER_LOCAL_PREFIXES)
    locals_sql = _sql_list(sorted(set(PLACEHOLDER_LOCALS) | keys.PLACEHOLDER_LOCALS))
    domains_sql = _sql_list(sorted(keys.PLACEHOLDER_DOMAINS | {"x.x", "xx.xx", "a.a", "test.test"}))
    address = _name_sql("address") if has_address else "CAST(NULL AS VARCHAR)"
    return f"""
    WITH name_values AS (
        -- Names and cities repeat: normalise each distinct value once, then join.
        SELECT DISTINCT CAST(first_name AS VARCHAR) AS v FROM {source}
        UNION SELECT CAST(last_name AS VARCHAR) FROM {source}
        UNION SELECT CAST(city AS VARCHAR) FROM {source}
    ), name_keys AS (
        SELECT v, {_name_sql("v")} AS k FROM name_values WHERE v IS NOT NULL
    ), raw AS (
        SELECT CAST(record_id AS VARCHAR) AS unique_id, CAST(unit_id AS VARCHAR) AS unit_id,
               _side,
               fn.k AS first_name_n,
               ln.k AS last_name_n,
               strftime(TRY_CAST(birthday AS DATE), '%Y-%m-%d') AS birthday,
               nullif(upper(regexp_replace(coalesce(CAST(postcode AS VARCHAR), ''), '[^0-9A-Za-z]', '', 'g')), '') AS postcode,
               cn.k AS city_n,
               {address} AS address_n,
               {phone} AS phone_raw,
               {email} AS email_raw
        FROM {source} s
        LEFT JOIN name_keys fn ON fn.v = CAST(s.first_name AS VARCHAR)
        LEFT JOIN name_keys ln ON ln.v = CAST(s.last_name AS VARCHAR)
        LEFT JOIN name_keys cn ON cn.v = CAST(s.city AS VARCHAR)
    ), parsed AS (
        SELECT *,
            split_part(email_raw, '@', 1) AS e_local_full,
            split_part(split_part(email_raw, '@', 1), '+', 1) AS e_local,
            split_part(email_raw, '@', 2) AS e_domain,
            regexp_replace(split_part(email_raw, '@', 1), '[._-]', '', 'g') AS e_plain
        FROM raw
    ), checked AS (
        SELECT *,
            CASE
              WHEN email_raw IS NULL THEN NULL
              WHEN NOT regexp_full_match(email_raw, '[^@\\s]+@[^@\\s]+\\.[^@\\s]+') THEN 'malformed e-mail'
              WHEN e_local IN ({locals_sql}) OR e_plain IN ({locals_sql})
                   OR {local_like} OR {domain_like}
                   OR e_domain IN ({domains_sql})
                   OR split_part(e_domain, '.', 1) IN ({_sql_list(keys.PLACEHOLDER_DOMAIN_NAMES)})
                   OR regexp_full_match(e_plain, '[0-9]+')
                   OR (length(e_plain) >= 2 AND length(list_distinct(string_split(e_plain, ''))) = 1)
                   OR regexp_extract(e_plain, '^([a-z]+)[0-9]+$', 1) IN ({locals_sql})
                THEN 'placeholder e-mail'
            END AS email_problem,
            CASE
              WHEN phone_raw IS NULL THEN NULL
              WHEN NOT regexp_full_match(phone_raw, '\\+[1-9][0-9]{{6,14}}') THEN 'malformed phone'
              WHEN length(list_distinct(string_split(substr(phone_raw, 4), ''))) <= 2 THEN 'placeholder phone'
            END AS phone_problem
        FROM parsed
    ), valid AS (
        SELECT *,
            CASE WHEN email_problem IS NULL THEN email_raw END AS email_v,
            CASE WHEN email_problem IS NULL THEN e_local END AS local_v,
            CASE WHEN phone_problem IS NULL THEN phone_raw END AS phone_v
        FROM checked
    ), counted AS (
        SELECT *,
            CASE WHEN email_v IS NULL THEN 0 ELSE count(*) OVER (PARTITION BY email_v) END AS email_count,
            CASE WHEN local_v IS NULL THEN 0 ELSE count(*) OVER (PARTITION BY local_v) END AS local_count,
            CASE WHEN phone_v IS NULL THEN 0 ELSE count(*) OVER (PARTITION BY phone_v) END AS phone_count
        FROM valid
    )
    SELECT unique_id, unit_id, _side, first_name_n, last_name_n, birthday, postcode, city_n,
        address_n,
        CASE WHEN phone_count <= $limit THEN phone_v END AS phone,
        CASE WHEN email_count <= $limit THEN email_v END AS email,
        CASE WHEN email_count <= $limit AND local_count <= $limit THEN local_v END AS email_local,
        concat_ws('; ',
            CASE WHEN phone_count > $limit THEN 'phone shared by ' || phone_count || ' records (ignored)' END,
            phone_problem || CASE WHEN phone_problem IS NOT NULL THEN ' (ignored)' END,
            CASE WHEN email_count > $limit THEN 'e-mail shared by ' || email_count || ' records (ignored)'
                 WHEN local_count > $limit THEN 'e-mail local part shared by ' || local_count || ' records (ignored)' END,
            email_problem || CASE WHEN email_problem IS NOT NULL THEN ' (ignored)' END
        ) AS notes
    FROM counted
    """  # noqa: S608 (internal table names, no user input)


def _check_input(df: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in INPUT_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"missing columns: {', '.join(missing)}")
    cols = list(INPUT_COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in df.columns]
    # NaN (pandas' missing float) would reach DuckDB as the string 'nan'.
    out = df[cols].astype(object)
    return out.where(out.notna(), None)


def prepare(
    frames: list[pd.DataFrame],
    con: duckdb.DuckDBPyConnection,
    shared_value_limit: int = 5,
    table: str = "identity_prepared",
) -> str:
    """Normalise the input frames into DuckDB table ``table`` (``_side`` 0, 1… per frame).
    Shared values are counted over all frames together."""
    has_address = any("address" in f.columns for f in frames)
    parts = []
    for i, f in enumerate(frames):
        f = _check_input(f).copy()
        if has_address and "address" not in f.columns:
            f["address"] = None
        f["_side"] = i
        # Object columns with mixed None/str are fine for DuckDB; dates stay dates.
        parts.append(f)
    all_rows = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if all_rows["record_id"].astype(str).duplicated().any():
        raise ValueError("record_id must be unique (across both tables in link mode)")
    con.register("identity_input", all_rows)
    con.execute(
        f"CREATE OR REPLACE TABLE {table} AS " + _prepare_sql("identity_input", has_address),
        {"limit": shared_value_limit},
    )
    con.unregister("identity_input")
    return table


# --------------------------------------------------------------------------------------
# Model


class _SwappedJaroWinklerLevel(cll.CustomLevel):
    """First name like the other's last name and last name like the other's first name,
    with the backend's own Jaro-Winkler function (DuckDB and Spark name it differently)."""

    def __init__(self, first: str, last: str, threshold: float) -> None:
        super().__init__("", f"swapped first/last, Jaro-Winkler >= {threshold}")
        self.first, self.last, self.threshold = first, last, threshold

    def create_sql(self, sql_dialect: Any) -> str:
        jw = sql_dialect.jaro_winkler_function_name
        f, la, t = self.first, self.last, self.threshold
        return f"{jw}({f}_l, {la}_r) >= {t} AND {jw}({la}_l, {f}_r) >= {t}"


def _comparisons(
    has_address: bool, has_phone: bool, has_email: bool, u_floor: float = 1e-7
) -> list[Any]:
    """``u_floor``: the u given to an identifier's exact level when random sampling never
    saw two unrelated records share it (on a large network: 1 / sampled pairs); it is
    replaced by the sampled value whenever there is one."""
    f, la = "first_name_n", "last_name_n"
    names = cl.CustomComparison(
        output_column_name="name",
        comparison_levels=[
            cll.And(cll.NullLevel(f), cll.NullLevel(la)),
            cll.And(cll.ExactMatchLevel(f), cll.ExactMatchLevel(la)).configure(
                label_for_charts="exact"
            ),
            cll.ColumnsReversedLevel(f, la, symmetrical=True).configure(
                label_for_charts="swapped first/last"
            ),
            cll.And(cll.JaroWinklerLevel(f, 0.92), cll.JaroWinklerLevel(la, 0.92)).configure(
                label_for_charts="both Jaro-Winkler >= 0.92"
            ),
            _SwappedJaroWinklerLevel(f, la, 0.88),
            cll.And(cll.JaroWinklerLevel(f, 0.80), cll.JaroWinklerLevel(la, 0.80)).configure(
                label_for_charts="both Jaro-Winkler >= 0.80"
            ),
            cll.ExactMatchLevel(la).configure(label_for_charts="same last name only"),
            cll.ExactMatchLevel(f).configure(label_for_charts="same first name only"),
            cll.ElseLevel().configure(label_for_charts="different"),
        ],
    )
    y = "substr(birthday_{s}, 1, 4)"
    m = "substr(birthday_{s}, 6, 2)"
    d = "substr(birthday_{s}, 9, 2)"

    def eq(part: str) -> str:
        return f"{part.format(s='l')} = {part.format(s='r')}"

    one_off = (
        f"({eq(y)} AND {eq(m)}) OR ({eq(y)} AND {eq(d)}) OR ({eq(m)} AND {eq(d)}) "
        f"OR ({eq(y)} AND {m.format(s='l')} = {d.format(s='r')} AND {d.format(s='l')} = {m.format(s='r')})"
    )
    birthday = cl.CustomComparison(
        output_column_name="birthday",
        comparison_levels=[
            cll.NullLevel("birthday"),
            cll.ExactMatchLevel("birthday").configure(label_for_charts="exact"),
            cll.CustomLevel(one_off, label_for_charts="one field off", base_dialect_str="duckdb"),
            cll.ElseLevel().configure(label_for_charts="different"),
        ],
    )
    place = cl.CustomComparison(
        output_column_name="place",
        comparison_levels=[
            cll.And(cll.NullLevel("postcode"), cll.NullLevel("city_n")),
            cll.And(cll.ExactMatchLevel("postcode"), cll.ExactMatchLevel("city_n")).configure(
                label_for_charts="same postcode and city"
            ),
            cll.ExactMatchLevel("postcode").configure(label_for_charts="same postcode"),
            cll.JaroWinklerLevel("city_n", 0.92).configure(label_for_charts="same city"),
            cll.CustomLevel(
                "substr(postcode_l, 1, 2) = substr(postcode_r, 1, 2)",
                label_for_charts="same département",
                base_dialect_str="duckdb",
            ),
            cll.ElseLevel().configure(label_for_charts="different"),
        ],
    )
    phone = cl.CustomComparison(
        output_column_name="phone",
        comparison_levels=[
            cll.NullLevel("phone"),
            cll.ExactMatchLevel("phone").configure(label_for_charts="exact", u_probability=u_floor),
            cll.ElseLevel().configure(label_for_charts="different"),
        ],
    )
    email = cl.CustomComparison(
        output_column_name="email",
        comparison_levels=[
            cll.NullLevel("email_local"),
            cll.ExactMatchLevel("email").configure(label_for_charts="exact", u_probability=u_floor),
            cll.ExactMatchLevel("email_local").configure(
                label_for_charts="same local part", u_probability=u_floor
            ),
            cll.ElseLevel().configure(label_for_charts="different"),
        ],
    )
    comparisons = [names, birthday, place]
    if has_phone:
        comparisons.append(phone)
    if has_email:
        comparisons.append(email)
    if has_address:
        comparisons.append(
            cl.CustomComparison(
                output_column_name="address",
                comparison_levels=[
                    cll.NullLevel("address_n"),
                    cll.ExactMatchLevel("address_n").configure(label_for_charts="exact"),
                    cll.JaroWinklerLevel("address_n", 0.90).configure(
                        label_for_charts="Jaro-Winkler >= 0.90"
                    ),
                    cll.JaroWinklerLevel("address_n", 0.80).configure(
                        label_for_charts="Jaro-Winkler >= 0.80"
                    ),
                    cll.ElseLevel().configure(label_for_charts="different"),
                ],
            )
        )
    return comparisons


def _blocking_rules(has_address: bool) -> list[Any]:
    rules: list[Any] = [
        block_on("phone"),
        block_on("email_local"),
        # Same name within one département (a common name network-wide is a big block).
        CustomRule(
            "l.first_name_n = r.first_name_n AND l.last_name_n = r.last_name_n"
            " AND substr(l.postcode, 1, 2) = substr(r.postcode, 1, 2)"
        ),
        CustomRule("l.first_name_n = r.last_name_n AND l.last_name_n = r.first_name_n"),
        block_on("birthday", "postcode"),
        block_on("last_name_n", "birthday"),
        block_on("first_name_n", "birthday"),
        block_on("postcode", "last_name_n"),
        block_on("postcode", "first_name_n"),
        block_on("city_n", "birthday"),
        CustomRule(
            "l.city_n = r.city_n AND l.last_name_n = r.last_name_n"
            " AND substr(l.first_name_n, 1, 1) = substr(r.first_name_n, 1, 1)"
        ),
    ]
    if has_address:
        rules.append(block_on("address_n"))
    return rules


def settings_for(
    mode: Mode,
    has_address: bool,
    has_phone: bool = True,
    has_email: bool = True,
    u_floor: float = 1e-7,
) -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only" if mode == "dedupe" else "link_only",
        comparisons=_comparisons(has_address, has_phone, has_email, u_floor),
        blocking_rules_to_generate_predictions=_blocking_rules(has_address),
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=["notes", "unit_id"],
        unique_id_column_name="unique_id",
    )


def level_labels(model: dict[str, Any]) -> dict[str, dict[int, str]]:
    """gamma value → readable label, per comparison output column."""
    out: dict[str, dict[int, str]] = {}
    for comp in model["comparisons"]:
        levels = comp["comparison_levels"]
        non_null = [lv for lv in levels if not lv.get("is_null_level")]
        labels = {-1: "missing"}
        for i, lv in enumerate(non_null):
            labels[len(non_null) - 1 - i] = lv.get("label_for_charts", "")
        out[comp["output_column_name"]] = labels
    return out


def train_and_score(
    linker: Linker, settings: MatchSettings, has_email: bool, has_phone: bool
) -> tuple[pd.DataFrame, dict[str, float]]:
    t: dict[str, float] = {}
    start = time.perf_counter()
    deterministic: list[Any] = [
        "l.first_name_n = r.first_name_n AND l.last_name_n = r.last_name_n"
        " AND l.birthday = r.birthday"
    ]
    if has_email:
        deterministic.append("l.email = r.email")
    if has_phone:
        deterministic.append("l.phone = r.phone AND l.first_name_n = r.first_name_n")
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.8)
    linker.training.estimate_u_using_random_sampling(
        max_pairs=settings.u_max_pairs, seed=settings.seed
    )
    t["u"] = time.perf_counter() - start
    for rule in (block_on("first_name_n", "last_name_n"), block_on("birthday", "postcode")):
        linker.training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True, max_pairs=settings.em_max_pairs
        )
    t["em"] = time.perf_counter() - start - t["u"]
    mid = time.perf_counter()
    predictions = linker.inference.predict(threshold_match_probability=settings.review_threshold)
    pairs = predictions.as_pandas_dataframe()
    t["predict"] = time.perf_counter() - mid
    return pairs, t


# --------------------------------------------------------------------------------------
# Entry point


def _duckdb_connection(settings: MatchSettings) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    if settings.threads:
        con.execute(f"SET threads = {int(settings.threads)}")
    if settings.memory_limit:
        con.execute("SET memory_limit = $m", {"m": settings.memory_limit})
    con.execute("SET preserve_insertion_order = false")
    return con


def match(
    frames: pd.DataFrame | list[pd.DataFrame],
    mode: Mode = "dedupe",
    settings: MatchSettings | None = None,
    backend: Literal["duckdb", "spark"] = "duckdb",
    spark_session: Any = None,
) -> MatchResult:
    """Train the model on ``frames`` and match. ``dedupe``: one frame; ``link``: two."""
    settings = settings or MatchSettings()
    if isinstance(frames, pd.DataFrame):
        frames = [frames]
    if mode == "dedupe" and len(frames) != 1:
        raise ValueError("dedupe takes one table")
    if mode == "link" and len(frames) != 2:
        raise ValueError("link takes two tables")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    con = _duckdb_connection(settings)
    table = prepare(frames, con, settings.shared_value_limit)
    has_address = bool(
        con.execute(f"SELECT count(address_n) FROM {table}").fetchall()[0][0]  # noqa: S608 (internal table names, no user input)
    )
    has_email, has_phone = con.execute(
        f"SELECT count(email) > 0, count(phone) > 0 FROM {table}"  # noqa: S608 (internal table names, no user input)
    ).fetchall()[0]
    columns = (
        "unique_id, unit_id, first_name_n, last_name_n, birthday, postcode, city_n, "
        "address_n, phone, email, email_local, notes"
    )
    timings["prepare"] = time.perf_counter() - start

    if backend == "duckdb":
        db_api: Any = DuckDBAPI(connection=con)
        if mode == "dedupe":
            inputs: Any = _register_side(db_api, con, table, columns, None, "records")
        else:
            inputs = [
                _register_side(db_api, con, table, columns, 0, "left_records"),
                _register_side(db_api, con, table, columns, 1, "right_records"),
            ]
    elif backend == "spark":
        from splink import SparkAPI

        if spark_session is None:
            raise ValueError("backend='spark' needs spark_session")
        db_api = SparkAPI(spark_session=spark_session)

        def side(which: int | None, name: str) -> Any:
            where = "" if which is None else f" WHERE _side = {which}"
            pdf = con.sql(f"SELECT {columns} FROM {table}{where}").df()  # noqa: S608 (internal table names, no user input)
            return db_api.register(pdf, table_name=name)

        inputs = (
            side(None, "records")
            if mode == "dedupe"
            else [side(0, "left_records"), side(1, "right_records")]
        )
    else:
        raise ValueError(f"unknown backend {backend!r}")

    linker = Linker(
        inputs,
        settings_for(mode, has_address, bool(has_phone), bool(has_email), 1 / settings.u_max_pairs),
        log_level=logging.WARNING,
    )
    raw_pairs, t = train_and_score(linker, settings, bool(has_email), bool(has_phone))
    timings.update(t)
    model = linker.misc.save_model_to_json()

    mid = time.perf_counter()
    pairs = _readable_pairs(raw_pairs, model, settings)
    # Pairs inside a would-be cluster that blocking never compared are scored now, so the
    # density check judges every pair on its evidence rather than on its absence.
    components = strong_components(pairs, settings)
    if components:
        extra = _score_within_components(
            con, db_api, table, columns, components, model, mode, backend, spark_session
        )
        if len(extra):
            extra_pairs = _readable_pairs(extra, model, settings)
            pairs = pd.concat([pairs, extra_pairs], ignore_index=True)
            pairs["_k"] = [
                pair_key(a, b) for a, b in zip(pairs["left_id"], pairs["right_id"], strict=True)
            ]
            pairs = pairs.drop_duplicates("_k").drop(columns="_k").reset_index(drop=True)
    timings["rescore"] = time.perf_counter() - mid
    mid = time.perf_counter()
    record_ids = con.execute(f"SELECT unique_id FROM {table}").df()["unique_id"]  # noqa: S608 (internal table names, no user input)
    pairs, clusters, alerts = cluster_pairs(pairs, record_ids, settings)
    timings["cluster"] = time.perf_counter() - mid
    timings["total"] = time.perf_counter() - start
    con.close()
    return MatchResult(pairs=pairs, clusters=clusters, alerts=alerts, model=model, timings=timings)


def _score_within_components(
    con: duckdb.DuckDBPyConnection,
    db_api: Any,
    table: str,
    columns: str,
    components: dict[str, str],
    model: dict[str, Any],
    mode: Mode,
    backend: str,
    spark_session: Any,
) -> pd.DataFrame:
    """Score every pair inside the given components with the trained model: the same
    model, blocked on the component id (public API: a new Linker from the saved model)."""
    comp = pd.DataFrame({"unique_id": list(components), "component_id": list(components.values())})
    con.register("identity_components", comp)
    con.execute(
        f"CREATE OR REPLACE TABLE identity_in_components AS SELECT {columns}, _side, c.component_id "  # noqa: S608 (internal table names, no user input)
        f"FROM {table} JOIN identity_components c USING (unique_id)"
    )
    con.unregister("identity_components")
    settings = dict(model)
    settings.pop("linker_uid", None)
    settings["blocking_rules_to_generate_predictions"] = [
        block_on("component_id").get_blocking_rule(db_api.sql_dialect.sql_dialect_str).as_dict()
    ]
    cols = columns + ", component_id"
    inputs: Any
    if backend == "duckdb":
        if mode == "dedupe":
            inputs = _register_side(
                db_api, con, "identity_in_components", cols, None, "comp_records"
            )
        else:
            inputs = [
                _register_side(db_api, con, "identity_in_components", cols, 0, "comp_left"),
                _register_side(db_api, con, "identity_in_components", cols, 1, "comp_right"),
            ]
    else:

        def side(which: int | None, name: str) -> Any:
            where = "" if which is None else f" WHERE _side = {which}"
            pdf = con.sql(f"SELECT {cols} FROM identity_in_components{where}").df()  # noqa: S608 (internal table names, no user input)
            return db_api.register(pdf, table_name=name)

        inputs = (
            side(None, "comp_records")
            if mode == "dedupe"
            else [side(0, "comp_left"), side(1, "comp_right")]
        )
    linker = Linker(inputs, settings, log_level=logging.WARNING)
    return linker.inference.predict().as_pandas_dataframe()


def _register_side(
    db_api: Any,
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: str,
    which: int | None,
    name: str,
) -> Any:
    where = "" if which is None else f" WHERE _side = {which}"
    con.execute(f"CREATE OR REPLACE TABLE {name}_t AS SELECT {columns} FROM {table}{where}")  # noqa: S608 (internal table names, no user input)
    return db_api.register(f"{name}_t", table_name=name)


def _readable_pairs(
    raw: pd.DataFrame, model: dict[str, Any], settings: MatchSettings
) -> pd.DataFrame:
    labels = level_labels(model)
    out = pd.DataFrame(
        {
            "left_id": raw["unique_id_l"].astype(str),
            "right_id": raw["unique_id_r"].astype(str),
            "left_unit": raw["unit_id_l"],
            "right_unit": raw["unit_id_r"],
            "match_weight": raw["match_weight"].astype(float),
            "match_probability": raw["match_probability"].astype(float),
        }
    )
    for name, mapping in labels.items():
        out[f"{name}_level"] = raw[f"gamma_{name}"].map(mapping)
    if "email_l" in raw.columns:
        email_l, email_r = raw["email_l"], raw["email_r"]
        bday_l, bday_r = raw["birthday_l"], raw["birthday_r"]
        out["contradiction"] = (
            email_l.notna()
            & email_r.notna()
            & (email_l != email_r)
            & bday_l.notna()
            & bday_r.notna()
            & (bday_l != bday_r)
        ).to_numpy()
    else:
        out["contradiction"] = False
    phones = (raw["phone_l"], raw["phone_r"]) if "phone_l" in raw.columns else None
    weak = (out["match_probability"] < settings.match_threshold).to_numpy()
    out["conflicts"] = field_conflicts(out, phones, rows=weak)
    notes_l = raw["notes_l"].fillna("")
    notes_r = raw["notes_r"].fillna("")
    out["notes"] = (
        ("left: " + notes_l).where(notes_l != "", "")
        + "; "
        + ("right: " + notes_r).where(notes_r != "", "")
    ).str.strip("; ")
    return out
