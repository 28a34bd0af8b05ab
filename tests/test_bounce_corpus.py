"""The bounce corpus: real-shaped reports from the MTAs and mailbox providers a French
network meets, each labelled with the verdict and the address it is about.

``tests/data/bounces/manifest.csv`` lists every file: ``verdict`` is one of hard, soft,
complaint, auto_reply, delay, challenge, unknown (not understood) or none (no report at
all: a delivery notice, an ARF "not-spam"); ``address`` is the address the report is about
as it writes it. The files name their message with a placeholder VERP address and
Message-ID; the end-to-end test swaps in genuine ones for a real ledger row.
"""

from __future__ import annotations

import csv
import pathlib

import pytest

from enseigne.campaigns.models import Recipient
from enseigne.contacts.models import ConsentStatus, Suppression
from enseigne.delivery import bounces
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.delivery.messages import bounce_address, message_id
from enseigne.delivery.models import Bounce
from enseigne.delivery.pipeline import run_campaign
from enseigne.lib.hashing import identifier_hash
from tests.campaign_helpers import launched, local_campaign
from tests.factories import ContactFactory

CORPUS = pathlib.Path(__file__).parent / "data" / "bounces"
MANIFEST = list(csv.DictReader((CORPUS / "manifest.csv").open(encoding="utf-8")))
VERDICTS = {"hard", "soft", "complaint", "auto_reply", "delay", "challenge", "unknown", "none"}
PLACEHOLDER_VERP = b"bounces+1.0000000000000000@news.enseigne.example"
PLACEHOLDER_MID = b"<c1.r1.000000000000@news.enseigne.example>"


def _raw(entry: dict) -> bytes:
    return (CORPUS / entry["file"]).read_bytes()


def test_the_corpus_is_whole_and_labelled():
    files = sorted(p.name for p in CORPUS.glob("*.eml"))
    assert files == sorted(e["file"] for e in MANIFEST), "every file is labelled, once"
    assert len(files) >= 60
    assert {e["verdict"] for e in MANIFEST} == VERDICTS, "every class is represented"
    counts = {v: sum(e["verdict"] == v for e in MANIFEST) for v in VERDICTS}
    assert min(counts[v] for v in VERDICTS - {"none"}) >= 5, counts
    named = [e["address"] for e in MANIFEST if e["address"]]
    assert len(named) == len(set(named)), "one address per report, so the end-to-end run is exact"
    # All but the SNS subscription confirmation name their message (VERP or Message-ID).
    assert [
        e["file"]
        for e in MANIFEST
        if PLACEHOLDER_VERP not in _raw(e) and PLACEHOLDER_MID not in _raw(e)
    ] == ["ses_sns_subscription_confirmation.eml"]


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_each_report_is_read_as_labelled(entry):
    report = bounces.parse(_raw(entry))
    got = ("none", "") if report is None else (str(report.kind), report.address)
    assert got == (entry["verdict"], entry["address"]), entry["note"]
    assert report is None or report.recipient_id is None, "a placeholder is not signed"


def test_every_hard_bounce_and_complaint_suppresses_and_nothing_else_does(world):
    """The whole corpus through ``process``, each file delivered to the genuine VERP address
    (and quoting the genuine Message-ID) of a row sent to the address it is about."""
    locmem.outbox.clear()
    for index, entry in enumerate(MANIFEST):
        ContactFactory(
            unit=world.unit_a,
            email=entry["address"].lower() or f"not-named-{index}@example.com",
            email_consent=ConsentStatus.GRANTED,
        )
    campaign = local_campaign(world)
    launched(world, campaign)
    run_campaign(campaign.pk)
    locmem.outbox.clear()
    rows = {
        email: pk
        for email, pk in Recipient.objects.filter(campaign=campaign).values_list(
            "contact__email", "pk"
        )
    }
    assert len(rows) == len(MANIFEST)
    expected_kinds = {}
    for index, entry in enumerate(MANIFEST):
        row = rows[entry["address"].lower() or f"not-named-{index}@example.com"]
        raw = (
            _raw(entry)
            .replace(PLACEHOLDER_VERP, bounce_address(row, "news.enseigne.example").encode())
            .replace(
                PLACEHOLDER_MID, message_id(campaign.pk, row, "news.enseigne.example").encode()
            )
        )
        report = bounces.parse(raw)
        if entry["verdict"] == "none":
            assert report is None
            assert bounces.process(raw, source="mailbox") is None
            continue
        named = PLACEHOLDER_VERP in _raw(entry) or PLACEHOLDER_MID in _raw(entry)
        assert report.recipient_id == (row if named else None), entry["file"]
        bounce = bounces.process(raw, source="mailbox")
        assert bounce is not None and bounce.recipient_id == report.recipient_id, entry["file"]
        expected_kinds[entry["file"]] = report.stored_kind
        assert bounce.kind == report.stored_kind, entry["file"]
    suppressed = set(Suppression.objects.values_list("value_hash", "reason"))
    assert suppressed == {
        (
            identifier_hash("email", e["address"].lower()),
            "hard_bounce" if e["verdict"] == "hard" else "complaint",
        )
        for e in MANIFEST
        if e["verdict"] in ("hard", "complaint")
    }
    assert Bounce.objects.filter(kind="hard").count() == sum(
        e["verdict"] == "hard" for e in MANIFEST
    )
    # Delays are kept as soft bounces, challenges as automatic replies; neither suppresses.
    assert Bounce.objects.filter(kind="auto_reply").count() == sum(
        e["verdict"] in ("auto_reply", "challenge") for e in MANIFEST
    )
