"""The probabilistic matcher on small generated networks with messy shapes (issue 20).

One Splink run (module fixture) over ~2,400 generated records into which the awkward cases
are planted; cluster_pairs is also tested on its own with hand-made scores."""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import random

import duckdb
import pandas as pd
import pytest

from enseigne.identity.clustering import cluster_pairs, field_conflicts
from enseigne.identity.probabilistic import (
    MatchSettings,
    match,
    prepare,
)

SYL = [
    "ba",
    "be",
    "bi",
    "bo",
    "ca",
    "ce",
    "co",
    "da",
    "de",
    "di",
    "do",
    "fa",
    "fe",
    "fo",
    "ga",
    "gi",
    "go",
    "la",
    "le",
    "li",
    "lo",
    "ma",
    "me",
    "mi",
    "mo",
    "na",
    "ne",
    "ni",
    "no",
    "ra",
    "re",
    "ri",
    "ro",
    "sa",
    "se",
    "so",
    "ta",
    "te",
    "to",
    "va",
    "ve",
    "vo",
]


def _name(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(SYL) for _ in range(parts)).capitalize()


def _record(
    rid: str,
    first,
    last,
    birthday=None,
    postcode="69001",
    city="Lyon",
    phone=None,
    email=None,
    unit="lyon",
):
    return {
        "record_id": rid,
        "unit_id": unit,
        "first_name": first,
        "last_name": last,
        "birthday": birthday,
        "postcode": postcode,
        "city": city,
        "phone": phone,
        "email": email,
    }


def _typo(rng: random.Random, s: str) -> str:
    i = rng.randrange(1, len(s) - 1)
    return s[:i] + s[i + 1] + s[i] + s[i + 2 :]


def network(people: int = 2000, seed: int = 3) -> list[dict]:
    """People in three stores; one in five has a second record with typical variations."""
    rng = random.Random(seed)
    rows = []
    for p in range(people):
        first, last = _name(rng, 2), _name(rng, 3)
        bday = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(20000))
        pc = f"{rng.choice((69, 59, 75))}{rng.randrange(100):03d}"
        phone = f"+336{rng.randrange(10**8):08d}"
        email = f"{first.lower()}.{last.lower()}{p}@example.org".replace("example.org", "mail.fr")
        rows.append(_record(f"p{p}", first, last, bday, pc, "Ville", phone, email, "lyon"))
        if p % 5 == 0:
            r = rng.random()
            rows.append(
                _record(
                    f"p{p}-b",
                    _typo(rng, first) if r < 0.3 else first.upper(),
                    last,
                    bday if rng.random() < 0.8 else None,
                    pc,
                    "VILLE",
                    phone if rng.random() < 0.6 else None,
                    email if rng.random() < 0.6 else None,
                    "lille",
                )
            )
    return rows


SHOP_PHONE = "+33478000000"


def planted() -> list[dict]:
    rows = [
        # Swapped first/last names.
        _record(
            "swap-a", "Gwendoline", "Kerbrat", dt.date(1979, 3, 2), "29200", "Brest", "+33611111111"
        ),
        _record(
            "swap-b",
            "KERBRAT",
            "Gwendoline",
            dt.date(1979, 3, 2),
            "29200",
            "Brest",
            None,
            None,
            "lille",
        ),
        # Accents, hyphens, particles, case.
        _record(
            "acc-a",
            "Jean-Hélène",
            "de la Vérandière",
            dt.date(1966, 7, 14),
            "75011",
            "Paris",
            None,
            "jh.verandiere@free.fr",
        ),
        _record(
            "acc-b",
            "JEAN HELENE",
            "VERANDIERE",
            dt.date(1966, 7, 14),
            "75011",
            "PARIS",
            "+33622222222",
            None,
            "lille",
        ),
        # Hard contradiction: same name, place and phone, but two valid e-mails and two
        # birthdays.
        _record(
            "con-a",
            "Solange",
            "Quimperlé",
            dt.date(1950, 1, 1),
            "56000",
            "Vannes",
            "+33633333333",
            "solange.q@orange.fr",
        ),
        _record(
            "con-b",
            "Solange",
            "Quimperlé",
            dt.date(1950, 1, 2),
            "56000",
            "Vannes",
            "+33633333333",
            "sol.quimperle@gmail.com",
            "lille",
        ),
        # Chain: A and B share a phone, B and C an e-mail; A and C disagree (different
        # valid e-mails and birthdays).
        _record(
            "chain-a",
            "Bérénice",
            "Trouvé",
            dt.date(1971, 5, 5),
            "44000",
            "Nantes",
            "+33644444444",
            "berenice.t@free.fr",
        ),
        _record(
            "chain-b",
            "Bérénice",
            "Trouvé",
            None,
            "44000",
            "Nantes",
            "+33644444444",
            "bt1999@gmail.com",
            "lille",
        ),
        _record(
            "chain-c",
            "Bérénice",
            "Trouvé",
            dt.date(1999, 12, 1),
            "44000",
            "Nantes",
            "+33655555555",
            "bt1999@gmail.com",
            "paris",
        ),
        # Three records of one person: the first two share the e-mail, the last two the
        # phone and birthday; the first and the last share only a first name (a married
        # name, a move) and contradict nothing.
        _record(
            "tri-a",
            "Clémentine",
            "Rouxel",
            None,
            "35000",
            "Rennes",
            None,
            "clementine.rouxel@free.fr",
        ),
        _record(
            "tri-b",
            "Clémentine",
            "Rouxel",
            dt.date(1984, 6, 9),
            "35000",
            "Rennes",
            "+33611223344",
            "clementine.rouxel@free.fr",
            "lille",
        ),
        _record(
            "tri-c",
            "Clémentine",
            "Le Goff",
            dt.date(1984, 6, 9),
            "75011",
            "Paris",
            "+33611223344",
            None,
            "paris",
        ),
        # Only a phone; empty names; NUL bytes.
        _record("only-phone", "", "", None, None, None, "+33666666666", None),
        _record(
            "nul-a",
            "Aur\x00élie",
            "Mon\x00tcalm",
            dt.date(1990, 2, 2),
            "13001",
            "Marseille",
            None,
            "aurelie.montcalm@sfr.fr",
        ),
        _record(
            "nul-b",
            "Aurélie",
            "Montcalm",
            dt.date(1990, 2, 2),
            "13001",
            "Marseille",
            "+33677777777",
            None,
            "lille",
        ),
        _record("empty", None, "  ", None, "", None, None, "   "),
    ]
    rng = random.Random(9)
    # 30 different customers typed with the shop's phone and 20 with placeholder e-mails.
    for i in range(30):
        rows.append(
            _record(f"shop-{i}", _name(rng, 2), _name(rng, 3), None, "69003", "Lyon", SHOP_PHONE)
        )
    for i, email in enumerate(
        ["test@test.fr", "aucun@aucun.fr", "noemail@gmail.com", "none@none.com", "x@x.x"] * 4
    ):
        rows.append(
            _record(f"ph-{i}", _name(rng, 2), _name(rng, 3), None, "69003", "Lyon", None, email)
        )
    return rows


@pytest.fixture(scope="module")
def result():
    frame = pd.DataFrame(network() + planted())
    return match(frame, settings=MatchSettings(u_max_pairs=1e6, threads=2))


def same(result, a: str, b: str) -> bool:
    return b in result.cluster_of(a)


def test_prepare_normalises_names_emails_phones_and_shared_values():
    frame = pd.DataFrame(
        [
            _record(
                "1",
                "Jean-Pierre",
                "de La Fontaine",
                None,
                "69 001",
                "Saint-Étienne",
                "+33612345678",
                "Test@Test.fr",
            ),
            _record(
                "2",
                "JEAN PIERRE",
                "D'Œuvre",
                dt.date(1980, 1, 2),
                None,
                None,
                "0612",
                "marie+promo@gmail.com",
            ),
            _record("3", "Zoé\x00", "Le", None, None, None, "+33600000000", "aucun@orange.fr"),
            _record("4", "", None, None, None, None, None, "not-an-email"),
        ]
        + [
            _record(f"s{i}", "X", "Y", None, None, None, SHOP_PHONE, f"marie.x{i}@shop.fr")
            for i in range(6)
        ]
        + [
            _record(f"e{i}", "X", "Y", None, None, None, None, email)
            for i, email in enumerate(
                [
                    "aa@orange.fr",
                    "123456@free.fr",
                    "test1@gmail.com",
                    "jean@yopmail.com",
                    "p.dupont@none.net",
                    "jean.dupont@orange.fr",
                ]
            )
        ]
    )
    con = duckdb.connect()
    table = prepare([frame], con, shared_value_limit=5)
    got = con.sql(f"SELECT * FROM {table} ORDER BY unique_id").df().set_index("unique_id")  # noqa: S608 (internal table names, no user input)
    assert got.loc["1", "first_name_n"] == "jeanpierre"
    assert got.loc["1", "last_name_n"] == "fontaine"
    assert got.loc["1", "postcode"] == "69001"
    assert got.loc["1", "city_n"] == "saintetienne"
    assert got.loc["1", "phone"] == "+33612345678"
    assert got.loc["1", "email"] is None and "placeholder e-mail" in got.loc["1", "notes"]
    assert got.loc["2", "first_name_n"] == "jeanpierre"
    assert got.loc["2", "last_name_n"] == "oeuvre"
    assert got.loc["2", "birthday"] == "1980-01-02"
    assert got.loc["2", "phone"] is None and "malformed phone" in got.loc["2", "notes"]
    assert got.loc["2", "email"] == "marie+promo@gmail.com"
    assert got.loc["2", "email_local"] == "marie"
    # A name that is only a particle is kept rather than emptied; NUL bytes go.
    assert got.loc["3", "first_name_n"] == "zoe"
    assert got.loc["3", "last_name_n"] == "le"
    assert got.loc["3", "phone"] is None and "placeholder phone" in got.loc["3", "notes"]
    assert got.loc["3", "email"] is None
    assert got.loc["4", "first_name_n"] is None and got.loc["4", "last_name_n"] is None
    assert got.loc["4", "email"] is None and "malformed e-mail" in got.loc["4", "notes"]
    # The shop's phone (on 6 records > limit 5) is ignored, with the reason kept.
    assert got.loc["s0", "phone"] is None
    assert "phone shared by 6 records (ignored)" in got.loc["s0", "notes"]
    # The deterministic keys' placeholder shapes (enseigne/identity/keys.py) hold here too.
    for i in range(5):
        assert got.loc[f"e{i}", "email"] is None, got.loc[f"e{i}"]
        assert "placeholder e-mail" in got.loc[f"e{i}", "notes"]
    assert got.loc["e5", "email"] == "jean.dupont@orange.fr"
    # Distinct e-mails whose local part is not shared stay.
    assert got.loc["s0", "email"] == "marie.x0@shop.fr"


def test_prepare_rejects_missing_columns_and_duplicate_ids():
    con = duckdb.connect()
    with pytest.raises(ValueError, match="missing columns"):
        prepare([pd.DataFrame([{"record_id": "1"}])], con)
    rows = pd.DataFrame([_record("1", "A", "B"), _record("1", "C", "D")])
    with pytest.raises(ValueError, match="unique"):
        prepare([rows], con)


def test_finds_the_generated_duplicates(result):
    clusters = result.clusters.set_index("record_id")["cluster_id"]
    pairs = [(f"p{p}", f"p{p}-b") for p in range(0, 2000, 5)]
    found = sum(clusters[a] == clusters[b] for a, b in pairs)
    assert found / len(pairs) >= 0.9
    # And merges nobody else among the generated people.
    generated = clusters[clusters.index.str.startswith("p")]
    person = generated.index.str.replace("-b", "", regex=False)
    wrong = pd.DataFrame({"c": generated.to_numpy(), "p": person}).groupby("c")["p"].nunique()
    assert (wrong > 1).sum() <= 2


def test_swapped_names_match(result):
    assert same(result, "swap-a", "swap-b")
    row = result.pairs[
        (result.pairs.left_id.isin(["swap-a", "swap-b"]))
        & (result.pairs.right_id.isin(["swap-a", "swap-b"]))
    ]
    assert row["name_level"].iloc[0] == "swapped first/last"


def test_accents_particles_and_nul_bytes_match(result):
    assert same(result, "acc-a", "acc-b")
    assert same(result, "nul-a", "nul-b")


def test_hard_contradiction_is_refused_not_reviewed(result):
    assert not same(result, "con-a", "con-b")
    pairs = result.pairs
    pair = pairs[pairs.left_id.isin(["con-a", "con-b"]) & pairs.right_id.isin(["con-a", "con-b"])]
    # Same name, place and phone: it scores well, and is still refused outright.
    assert list(pair["decision"]) == ["refused"]
    assert pair["match_probability"].iloc[0] >= MatchSettings().match_threshold
    assert "two different valid e-mails" in pair["reason"].iloc[0]
    assert "con-a" not in set(result.review.left_id) | set(result.review.right_id)


def test_chain_through_a_weak_link_is_not_one_cluster(result):
    assert not same(result, "chain-a", "chain-c")
    assert not (same(result, "chain-a", "chain-b") and same(result, "chain-b", "chain-c"))


def test_a_third_record_weak_with_one_and_strong_with_the_other_joins(result):
    pairs = result.pairs.set_index(["left_id", "right_id"])
    weak = pairs.loc[("tri-a", "tri-c")]
    assert weak["match_probability"] < MatchSettings().review_threshold
    assert weak["conflicts"] == ""
    assert result.cluster_of("tri-a") == {"tri-a", "tri-b", "tri-c"}


def test_shop_phone_and_placeholder_emails_merge_nobody(result):
    clusters = result.clusters.set_index("record_id")["cluster_id"]
    shop = clusters[[f"shop-{i}" for i in range(30)]]
    assert shop.nunique() == 30
    placeholders = clusters[[f"ph-{i}" for i in range(20)]]
    assert placeholders.nunique() == 20
    assert clusters["only-phone"] == "only-phone"
    assert clusters["empty"] == "empty"


def test_every_cluster_is_dense_and_free_of_contradictions(result):
    """Every pair inside a cluster links (≥ the review threshold), or is weaker with no
    conflicting field and a record of the cluster that links strongly to both."""
    settings = MatchSettings()
    pairs = {
        frozenset((row["left_id"], row["right_id"])): row for row in result.pairs.to_dict("records")
    }
    strong: dict[str, set[str]] = {}
    for a, b, p in zip(
        result.pairs.left_id, result.pairs.right_id, result.pairs.match_probability, strict=True
    ):
        if p >= settings.match_threshold:
            strong.setdefault(a, set()).add(b)
            strong.setdefault(b, set()).add(a)
    tolerated = 0
    for _cid, members in result.clusters.groupby("cluster_id")["record_id"]:
        assert len(members) <= settings.cluster_size_cap
        for a, b in itertools.combinations(members, 2):
            pair = pairs[frozenset((a, b))]
            assert pair["decision"] == "match" and not pair["contradiction"]
            if pair["match_probability"] < settings.review_threshold:
                tolerated += 1
                assert pair["conflicts"] == ""
                assert strong[a] & strong[b] & set(members)
    # The generated network has third records that link weakly to one of the others.
    assert tolerated >= 1


def test_pairs_say_why(result):
    pairs = result.pairs
    for col in ("name_level", "birthday_level", "place_level", "phone_level", "email_level"):
        assert pairs[col].notna().all()
    assert set(pairs["decision"]) <= {"match", "review", "refused", "alert"}
    assert ((pairs["decision"] == "match") == (pairs["reason"] == "")).all()


def _pairs(rows):
    """(left, right, probability, contradiction[, conflicts]) → the frame cluster_pairs reads."""
    rows = [r if len(r) == 5 else (*r, "") for r in rows]
    return pd.DataFrame(
        rows, columns=["left_id", "right_id", "match_probability", "contradiction", "conflicts"]
    )


def _clusters(pairs, ids, settings):
    out, clusters, alerts = cluster_pairs(_pairs(pairs), ids, settings)
    groups = clusters.groupby("cluster_id")["record_id"].apply(lambda s: "".join(sorted(s)))
    return out.set_index(["left_id", "right_id"]), sorted(groups), alerts


STRICT = MatchSettings(match_threshold=0.9, review_threshold=0.5)


def test_cluster_pairs_splits_a_chain_whose_weak_pair_was_never_scored():
    pairs = _pairs([("a", "b", 0.99, False), ("b", "c", 0.95, False)])
    out, clusters, alerts = cluster_pairs(pairs, ["a", "b", "c", "d"], STRICT)
    got = clusters.set_index("record_id")["cluster_id"]
    assert got["a"] == got["b"] != got["c"]
    assert got["d"] == "d"
    bc = out[(out.left_id == "b") & (out.right_id == "c")].iloc[0]
    assert bc.decision == "review" and bc.reason.startswith("weak link")
    assert alerts == []


def test_cluster_pairs_keeps_a_dense_triangle_and_refuses_contradictions():
    pairs = _pairs(
        [
            ("a", "b", 0.99, False),
            ("b", "c", 0.95, False),
            ("a", "c", 0.6, False),
            ("c", "d", 0.99, True),
        ]
    )
    out, clusters, _ = cluster_pairs(pairs, ["a", "b", "c", "d"], STRICT)
    got = clusters.set_index("record_id")["cluster_id"]
    assert got["a"] == got["b"] == got["c"] == "a"
    assert got["d"] == "d"
    assert out.set_index(["left_id", "right_id"]).loc[("c", "d"), "decision"] == "refused"


def test_a_weak_pair_without_conflict_inside_a_strong_component_is_kept():
    # a–b and b–c link strongly; a–c scores low (a field missing on one side) but nothing
    # contradicts: b links both, so the three are one person.
    out, groups, _ = _clusters(
        [("a", "b", 0.99, False), ("b", "c", 0.95, False), ("a", "c", 0.01, False)],
        ["a", "b", "c", "d"],
        STRICT,
    )
    assert groups == ["abc", "d"]
    assert out.loc[("a", "c"), "decision"] == "match"
    # Four records: d links strongly to a only; its weak pairs with b and c have a as a
    # common strong neighbour.
    out, groups, _ = _clusters(
        [
            ("a", "b", 0.99, False),
            ("a", "c", 0.99, False),
            ("b", "c", 0.99, False),
            ("a", "d", 0.97, False),
            ("b", "d", 0.2, False),
            ("c", "d", 0.0001, False),
        ],
        list("abcd"),
        STRICT,
    )
    assert groups == ["abcd"]
    assert set(out["decision"]) == {"match"}


@pytest.mark.parametrize(
    "conflict",
    [
        "different birthdays",
        "different e-mails",
        "different mobile phones",
        "different names",
        "different e-mails, different mobile phones",
    ],
)
def test_a_weak_pair_with_a_conflicting_field_splits_and_goes_to_review(conflict):
    out, groups, _ = _clusters(
        [("a", "b", 0.99, False), ("b", "c", 0.95, False), ("a", "c", 0.01, False, conflict)],
        ["a", "b", "c"],
        STRICT,
    )
    assert groups == ["ab", "c"]
    bc = out.loc[("b", "c")]
    assert bc["decision"] == "review"
    assert bc["reason"] == f"weak link: it would join records with {conflict}"
    # The weak pair itself is below the review band: not queued, not merged.
    assert ("a", "c") not in out.index
    # A conflicting pair scored in the review band links well enough: kept, as before.
    _, groups, _ = _clusters(
        [("a", "b", 0.99, False), ("b", "c", 0.95, False), ("a", "c", 0.6, False, conflict)],
        ["a", "b", "c"],
        STRICT,
    )
    assert groups == ["abc"]


def test_a_hard_contradiction_inside_a_strong_component_splits_it():
    out, groups, _ = _clusters(
        [("a", "b", 0.99, False), ("b", "c", 0.95, False), ("a", "c", 0.7, True)],
        ["a", "b", "c"],
        STRICT,
    )
    assert groups == ["ab", "c"]
    assert out.loc[("a", "c"), "decision"] == "refused"
    assert out.loc[("b", "c"), "decision"] == "review"


@pytest.mark.parametrize("bridge", [0.91, 0.95, 0.999])
def test_one_strong_edge_between_two_strong_triangles_never_merges_them(bridge):
    """Two people of three records each; c (first person) and d (second) link strongly
    through one pair — a shared phone, say; every other cross pair scores low with no
    conflicting field. No record links well to both a and e: two clusters, the bridge goes
    to review. Whatever the bridge's score, even above every triangle edge."""
    triangle = [
        (x, y, 0.99, False) for t in ("abc", "def") for x, y in itertools.combinations(t, 2)
    ]
    cross = [(x, y, 0.01, False) for x in "abc" for y in "def" if (x, y) != ("c", "d")]
    out, groups, alerts = _clusters(
        [*triangle, ("c", "d", bridge, False), *cross], list("abcdef"), STRICT
    )
    assert groups == ["abc", "def"]
    assert out.loc[("c", "d"), "decision"] == "review"
    assert out.loc[("c", "d"), "reason"] == "weak link: no record links well to both ends"
    assert alerts == []


def test_a_weak_bridge_between_two_groups_is_review_not_merge():
    # The bridge itself scores in the review band: the two triangles are two components.
    triangle = [
        (x, y, 0.99, False) for t in ("abc", "def") for x, y in itertools.combinations(t, 2)
    ]
    out, groups, _ = _clusters([*triangle, ("c", "d", 0.7, False)], list("abcdef"), STRICT)
    assert groups == ["abc", "def"]
    assert out.loc[("c", "d"), "decision"] == "review"
    assert out.loc[("c", "d"), "reason"] == "score in the review band"


def test_a_path_of_four_keeps_at_most_one_step_of_chaining():
    # a–b–c–d strong, every other pair weak without conflict: a and d have no common strong
    # neighbour, so the four are not one cluster; the middle edge, a bridge between the two
    # ends' pairs, is the one left out.
    out, groups, _ = _clusters(
        [
            ("a", "b", 0.99, False),
            ("b", "c", 0.999, False),
            ("c", "d", 0.97, False),
            ("a", "c", 0.01, False),
            ("b", "d", 0.01, False),
            ("a", "d", 0.01, False),
        ],
        list("abcd"),
        STRICT,
    )
    assert groups == ["ab", "cd"]
    assert out.loc[("b", "c"), "decision"] == "review"
    # With a fifth record linking strongly to b and c, b–c is no bridge: a, b, c, e stay
    # together (every weak pair has b or c in common) and d, whose pairs with a and e have
    # no common strong neighbour, is left out.
    out, groups, _ = _clusters(
        [
            ("a", "b", 0.99, False),
            ("b", "c", 0.999, False),
            ("c", "d", 0.97, False),
            ("b", "e", 0.98, False),
            ("c", "e", 0.98, False),
            *[(x, y, 0.01, False) for x, y in (("a", "c"), ("a", "d"), ("a", "e"), ("b", "d"))],
            ("d", "e", 0.01, False),
        ],
        list("abcde"),
        STRICT,
    )
    assert groups == ["abce", "d"]
    assert out.loc[("c", "d"), "decision"] == "review"


def test_field_conflicts_reads_the_levels_and_only_mobiles_conflict():
    levels = pd.DataFrame(
        {
            "name_level": ["exact", "different", "same first name only", "exact", "exact"],
            "birthday_level": ["different", "exact", "one field off", "missing", "exact"],
            "email_level": ["different", "different", "same local part", "missing", "exact"],
            "phone_level": ["different", "exact", "different", "different", "missing"],
        }
    )
    phones = (
        pd.Series(["+33612345678", "+33612345678", "+33478000000", "+33698765432", None]),
        pd.Series(["+33761234567", "+33612345678", "+33612345678", "+33798765432", None]),
    )
    assert list(field_conflicts(levels, phones)) == [
        "different e-mails, different birthdays, different mobile phones",
        "different e-mails, different names",
        "",  # a landline and a mobile: a household's phone, no conflict
        "different mobile phones",
        "",
    ]
    # Only the rows asked for are read (the clustering asks for the weak pairs).
    weak = [True, False, False, True, True]
    assert list(field_conflicts(levels, phones, rows=weak)) == [
        "different e-mails, different birthdays, different mobile phones",
        "",
        "",
        "different mobile phones",
        "",
    ]
    # FEBRL-like data: no phone nor e-mail comparison.
    assert list(field_conflicts(levels[["name_level", "birthday_level"]])) == [
        "different birthdays",
        "different names",
        "",
        "",
        "",
    ]


def test_cluster_over_the_cap_is_an_alert_not_a_merge():
    settings = MatchSettings(match_threshold=0.9, review_threshold=0.5, cluster_size_cap=4)
    ids = [f"r{i}" for i in range(6)]
    pairs = _pairs([(a, b, 0.99, False) for a, b in itertools.combinations(ids, 2)])
    out, clusters, alerts = cluster_pairs(pairs, ids, settings)
    assert clusters["cluster_id"].nunique() == 6
    assert len(alerts) == 1 and sorted(alerts[0].record_ids) == ids
    assert "size cap" in alerts[0].reason
    assert set(out["decision"]) == {"alert"}
    # A star whose other pairs are tolerated (weak, no conflict) is still over the cap.
    star = [("r0", r, 0.99, False) for r in ids[1:]]
    weak = [(a, b, 0.01, False) for a, b in itertools.combinations(ids[1:], 2)]
    out, groups, alerts = _clusters([*star, *weak], ids, settings)
    assert groups == ids and len(alerts) == 1
    assert set(out["decision"]) == {"alert"}


def test_link_mode_takes_two_tables():
    left = pd.DataFrame(network(300, seed=5)).query("~record_id.str.endswith('-b')")
    right = pd.DataFrame(network(300, seed=5)).query("record_id.str.endswith('-b')")
    right = right.assign(record_id=right["record_id"] + "-r")
    res = match([left, right], mode="link", settings=MatchSettings(u_max_pairs=2e5))
    clusters = res.clusters.set_index("record_id")["cluster_id"]
    found = sum(clusters[f"p{p}"] == clusters[f"p{p}-b-r"] for p in range(0, 300, 5))
    assert found >= 0.9 * 60
    with pytest.raises(ValueError):
        match([left], mode="link")


@pytest.mark.slow
def test_same_settings_run_on_a_local_spark_session(tmp_path):
    """The Spark path (docs/benchmarks.md, "Identity resolution"): same model code on a local[2]
    SparkSession with Splink's similarity UDF jar. Needs pyspark (the [spark] extra) and
    Java 17; skipped without them."""
    from django.db import connection

    if connection.vendor == "postgresql":
        pytest.skip("no database involved: runs once per CI run, in its SQLite half")
    pytest.importorskip("pyspark")
    import shutil

    if shutil.which("java") is None:
        pytest.skip("no Java")
    from pyspark.sql import SparkSession
    from splink.internals.spark.jar_location import similarity_jar_location

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("enseigne-identity-test")
        .config("spark.jars", similarity_jar_location())
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    # Splink breaks long lineages with checkpoints.
    spark.sparkContext.setCheckpointDir(str(tmp_path / "checkpoints"))
    try:
        frame = pd.DataFrame(network(400, seed=11) + planted())
        res = match(
            frame,
            settings=MatchSettings(u_max_pairs=2e5),
            backend="spark",
            spark_session=spark,
        )
    finally:
        spark.stop()
        # py4j's objects close their sockets in finalizers: run them here, not inside a later
        # test's C code (see tests/catalogue_reading._parse).
        gc.collect()
    clusters = res.clusters.set_index("record_id")["cluster_id"]
    found = sum(clusters[f"p{p}"] == clusters[f"p{p}-b"] for p in range(0, 400, 5))
    assert found >= 0.9 * 80
    assert same(res, "swap-a", "swap-b")
    assert not same(res, "con-a", "con-b")
    assert clusters[[f"shop-{i}" for i in range(30)]].nunique() == 30
