"""Hostile and broken reports: anyone can mail the bounce address.

Each is read without an exception, within bounded time, and suppresses nobody it should
not: huge reports, malformed MIME, NUL bytes, wrong charsets, nested message loops, a
report about an address we never sent to or about another unit's contact.
"""

from __future__ import annotations

import json
import mailbox
import pathlib
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enseigne.contacts.models import Suppression
from enseigne.delivery import bounces, report_reading
from enseigne.delivery.models import Bounce
from enseigne.delivery.report_reading import read
from enseigne.lib.signing import sign_id
from tests.campaign_helpers import contacts
from tests.test_bounces import _arf, _dsn, _row, _sent, _suppressed

CORPUS = pathlib.Path(__file__).parent / "data" / "bounces"


def _timed_parse(raw: bytes, budget: float = 5.0):
    started = time.perf_counter()
    report = read(raw)
    assert time.perf_counter() - started < budget
    return report


# -- size and structure -------------------------------------------------------------------


def test_a_huge_report_is_read_from_its_first_megabyte(world):
    campaign, made, sent = _sent(world)
    raw = _dsn(sent[made[0].email])
    head, tail = raw.rsplit(b"--B1--", 1)
    huge = head + b"--B1\r\nContent-Type: application/octet-stream\r\n\r\n" + b"A" * 30_000_000
    report = _timed_parse(huge)
    assert (report.kind, report.address) == ("hard", made[0].email)
    assert bounces.process(huge, source="mailbox").kind == "hard"
    assert _suppressed(made[0].email, "hard_bounce")
    assert len(huge) > 30_000_000


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: " + b"x" * 5_000_000 + b"\r\n\r\nbody",
        b"X-Failed-Recipients: " + b"a@b.example, " * 200_000 + b"\r\n\r\n",
        b"From: MAILER-DAEMON@x.example\r\n\r\n" + b"550 5.1.1 user unknown\n" * 500_000,
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--b\r\n\r\nx\r\n" * 200_000,
        b"Content-Type: text/plain\r\n\r\n{" + b'"a":[' * 100_000,
    ],
    ids=["long-header", "many-failed", "long-body", "many-parts", "deep-json"],
)
def test_oversized_shapes_are_read_in_bounded_time(raw):
    report = _timed_parse(raw)
    assert report is None or report.kind in {*Bounce.Kind.values, "delay", "challenge"}


def _nested(depth: int, core: bytes) -> bytes:
    raw = core
    for _ in range(depth):
        raw = b"From: loop@x.example\r\nContent-Type: message/rfc822\r\n\r\n" + raw
    return raw


@pytest.mark.parametrize("depth", [50, 3_000, 20_000])
def test_nested_returned_messages_do_not_recurse_without_end(world, depth):
    campaign, made, sent = _sent(world)
    report = _timed_parse(_nested(depth, b"Subject: 550 5.1.1 user unknown\r\n\r\nx"))
    assert report is not None and report.kind == "unknown"
    # The same loop as the "returned message" of a genuine DSN: the report still reads.
    dsn = _dsn(sent[made[0].email], include="none")
    looped = dsn.replace(
        b"Content-Type: text/plain\r\n\r\n(nothing returned)",
        b"Content-Type: message/rfc822\r\n\r\n" + _nested(depth, b"Subject: x\r\n\r\nx"),
    )
    report = _timed_parse(looped)
    assert report.kind == "hard" and report.recipient_id == _row(campaign, made[0].email).pk


# -- malformed MIME, NUL bytes, charsets ----------------------------------------------------

BROKEN = {
    "empty": b"",
    "only-crlf": b"\r\n\r\n\r\n",
    "no-headers": b"just some words 550 5.1.1",
    "nul-everywhere": b"\x00From: \x00MAILER-DAEMON\x00\r\nSubject:\x00 fail\x00\r\n\r\n\x00550 5.1.1\x00",
    "report-without-boundary": b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\n"
    b"Action: failed\r\nStatus: 5.1.1\r\n",
    "unclosed-boundary": b'Content-Type: multipart/report; report-type=delivery-status; boundary="Z"\r\n\r\n'
    b"--Z\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: x\r\n\r\n"
    b"Final-Recipient: rfc822; a@b.example\r\nAction: failed\r\nStatus: 5.1.1\r\n",
    "garbage-content-type": b'Content-Type: ;;;===///"""\r\n\r\nhello',
    "broken-rfc2231": b"Content-Type: multipart/report; report-type*0*=utf-8''%ZZ%; "
    b"report-type*1=x; boundary=q\r\n\r\n--q\r\n\r\nx\r\n--q--",
    "broken-base64": b"From: MAILER-DAEMON@x.example\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64@@@",
    "broken-qp": b"From: MAILER-DAEMON@x.example\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=ZZ=\r\n=",
    "broken-encoded-word": b"Subject: =?utf-8?b?!!!?= =?unknown-8bit?q?=FF?= =?x?y?z?=\r\nAuto-Submitted: "
    b"=?utf-8?b?YXV0by1yZXBsaWVk?=\r\n\r\n",
    "eight-bit-headers": b"From: Jos\xe9 <mailer-daemon@x.example>\r\nSubject: \xff\xfe\xe9chec\r\n\r\n\xff\xfe",
    "unknown-charset": b"From: MAILER-DAEMON@x.example\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\n"
    b"550 5.1.1 \xe9\xe9 user unknown",
    "codec-that-is-no-charset": b"From: MAILER-DAEMON@x.example\r\nContent-Type: text/plain; charset=base64\r\n\r\n550",
    "utf16-declared-latin1-sent": b"From: MAILER-DAEMON@x.example\r\nContent-Type: text/plain; charset=utf-16\r\n\r\n"
    b"550 5.1.1 utilisateur inconnu \xe9",
    "delivery-status-base64": b'Content-Type: multipart/report; report-type=delivery-status; boundary="Q"\r\n\r\n'
    b"--Q\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"QWN0aW9uOiBmYWlsZWQKU3RhdHVzOiA1LjEuMQo=\r\n--Q--\r\n",
    "json-not-object": b"From: no-reply@sns.amazonaws.com\r\n\r\n[1, 2, 3]",
    "json-wrong-types": b"From: no-reply@sns.amazonaws.com\r\n\r\n"
    b'{"notificationType": "Bounce", "bounce": [], "mail": "x"}',
    "json-message-not-json": b'From: no-reply@sns.amazonaws.com\r\n\r\n{"Type": "Notification", "Message": "{oops"}',
    "json-nested-nonsense": b"From: no-reply@sns.amazonaws.com\r\n\r\n"
    b'{"notificationType": "Bounce", "bounce": {"bounceType": "Permanent", "bounceSubType": "General", '
    b'"bouncedRecipients": [null, 5]}, "mail": {"headers": [1, {"name": "X-Metadata", "value": "[}"}]}}',
    "nul-in-charset": b'From: MAILER-DAEMON@x.example\r\nContent-Type: text/plain; charset="utf\x00-8"\r\n\r\n\xe9 550',
    "json-headers-not-a-list": b"From: no-reply@sns.amazonaws.com\r\n\r\n"
    b'{"eventType": "Bounce", "bounce": {"bounceType": 7}, "mail": {"headers": 12}}',
    "arf-without-fields": b'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\r\n\r\n'
    b"--F\r\nContent-Type: message/feedback-report\r\n\r\n\r\n--F--\r\n",
}


@pytest.mark.parametrize("raw", list(BROKEN.values()), ids=list(BROKEN))
def test_malformed_reports_are_read_without_an_exception_and_suppress_nobody(world, raw):
    _campaign, made, _sent_by_to = _sent(world)
    contacts(world.unit_b, 1)
    report = _timed_parse(raw)
    assert report is None or report.recipient_id is None
    bounce = bounces.process(raw, source="mailbox")
    assert not Suppression.objects.exists()
    if bounce is not None:
        bounce.refresh_from_db()
        for value in (bounce.diagnostic, bounce.status_code, bounce.reference):
            assert "\x00" not in value
            value.encode("utf-8")  # no lone surrogate left


def test_nul_bytes_and_bad_charsets_in_a_genuine_report_are_stored_cleanly(world):
    """PostgreSQL refuses NUL in text: the stored fields are cleaned, the verdict stands."""
    campaign, made, sent = _sent(world)
    raw = _dsn(
        sent[made[0].email],
        diagnostic="smtp; 550 5.1.1 <{to}>:\x00 Recipient address rejected: User unknown MARK",
        message_id="<nul\x00id@mx.example.net>",
    ).replace(b"charset=us-ascii", b"charset=x-unknown")
    bounce = bounces.process(raw.replace(b"MARK", b"\xff\xfe"), source="mailbox")
    assert bounce.kind == "hard" and "\x00" not in bounce.diagnostic + bounce.reference
    assert _suppressed(made[0].email, "hard_bounce")


# -- reports about someone else ----------------------------------------------------------


def test_a_report_about_an_address_we_never_sent_to_acts_on_nothing(world):
    campaign, made, sent = _sent(world)
    original = sent[made[0].email]
    raw = _dsn(original).replace(
        f"rfc822; {original.to}".encode(), b"rfc822; stranger@nowhere.example"
    )
    raw = raw.replace(f"rfc822;{original.to}".encode(), b"rfc822;stranger@nowhere.example")
    report = bounces.parse(raw)
    assert (report.kind, report.address) == ("hard", "stranger@nowhere.example")
    assert report.recipient_id == _row(campaign, made[0].email).pk
    bounce = bounces.process(raw, source="mailbox")
    assert bounce.kind == "unknown" and bounce.diagnostic.startswith("other address")
    assert not Suppression.objects.exists()
    assert _row(campaign, made[0].email).feedback == ""


def test_a_report_naming_another_units_contact_suppresses_neither(world):
    campaign, made, sent = _sent(world)
    other = contacts(world.unit_b, 1)[0]
    original = sent[made[0].email]
    dsn = _dsn(original).replace(original.to.encode(), other.email.encode())
    # The returned message was rewritten too: the VERP address still names unit A's row.
    assert bounces.parse(dsn).recipient_id == _row(campaign, made[0].email).pk
    bounces.process(dsn, source="mailbox")
    arf = _arf(original).replace(f"<{original.to}>".encode(), f"<{other.email}>".encode())
    assert bounces.parse(arf).address == other.email
    bounces.process(arf, source="mailbox")
    assert not Suppression.objects.exists()
    assert list(Bounce.objects.values_list("kind", flat=True)) == ["unknown", "unknown"]
    assert _row(campaign, made[0].email).feedback == ""


def test_a_report_that_names_no_row_suppresses_no_address_it_names(world):
    _campaign, made, _sent_by_to = _sent(world)
    exim = (
        "From: Mail Delivery System <Mailer-Daemon@x.example>\r\nTo: bounces@news.example.com\r\n"
        f"X-Failed-Recipients: {made[0].email}\r\nAuto-Submitted: auto-replied\r\n"
        "Subject: Mail delivery failed: returning message to sender\r\n\r\n"
        f"  {made[0].email}\r\n    550 5.1.1 user unknown\r\n"
    ).encode()
    ses = (
        "From: AWS Notifications <no-reply@sns.amazonaws.com>\r\nSubject: AWS Notification Message\r\n\r\n"
        + json.dumps(
            {
                "notificationType": "Bounce",
                "bounce": {
                    "bounceType": "Permanent",
                    "bounceSubType": "General",
                    "bouncedRecipients": [{"emailAddress": made[1].email, "status": "5.1.1"}],
                },
                "mail": {"headers": [{"name": "X-Metadata", "value": '{"enseigne": "1.forged"}'}]},
            }
        )
    ).encode()
    for raw, email in ((exim, made[0].email), (ses, made[1].email)):
        report = bounces.parse(raw)
        assert (report.kind, report.address, report.recipient_id) == ("hard", email, None)
        bounces.process(raw, source="mailbox")
    assert not Suppression.objects.exists()


def test_an_esp_notification_by_mail_names_its_row_by_the_signed_metadata(world):
    campaign, made, sent = _sent(world)
    row = _row(campaign, made[2].email).pk
    notice = {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": made[2].email}],
            "complaintFeedbackType": "abuse",
        },
        "mail": {
            "headers": [
                {"name": "X-Metadata", "value": json.dumps({"enseigne": sign_id("esp", row)})}
            ]
        },
    }
    envelope = {"Type": "Notification", "Message": json.dumps(notice)}
    raw = (
        "From: AWS Notifications <no-reply@sns.amazonaws.com>\r\nMessage-ID: <sns1@amazonses.com>\r\n"
        "Content-Type: text/plain; charset=UTF-8\r\n\r\n" + json.dumps(envelope)
    ).encode()
    report = bounces.parse(raw)
    assert (report.kind, report.recipient_id) == ("complaint", row)
    bounces.process(raw, source="mailbox")
    assert _suppressed(made[2].email, "complaint")


def test_an_alias_named_by_the_report_is_the_rows_address(world):
    """Final-Recipient after an alias, Original-Recipient the address we sent to, in any case."""
    campaign, made, sent = _sent(world)
    original = sent[made[1].email]
    raw = _dsn(original).replace(
        f"Final-Recipient: rfc822; {original.to}".encode(),
        b"Final-Recipient: rfc822; real.mailbox@internal.example",
    )
    raw = raw.replace(
        f"Original-Recipient: rfc822;{original.to}".encode(),
        f"Original-Recipient: rfc822;{original.to.upper()}".encode(),
    )
    assert bounces.process(raw, source="mailbox").kind == "hard"
    assert _suppressed(made[1].email, "hard_bounce")


# -- any bytes at all -------------------------------------------------------------------

_SAMPLES = sorted(CORPUS.glob("*.eml"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_any_bytes_are_read_without_an_exception(raw):
    read(raw)  # the reader itself, without the guard ``bounces.parse`` puts around it


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_SAMPLES),
    st.integers(min_value=0, max_value=20_000),
    st.binary(min_size=0, max_size=40),
    st.integers(min_value=0, max_value=20_000),
)
def test_corpus_reports_cut_and_spliced_are_read_without_an_exception(path, cut, insert, at):
    raw = path.read_bytes()[:cut] if cut else path.read_bytes()
    raw = raw[:at] + insert + raw[at:]
    report = read(raw)
    assert report is None or report.recipient_id is None


def test_a_reading_bug_keeps_the_report_and_never_blocks_the_mailbox(world, monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr(report_reading, "_report", broken)
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(b"From: MAILER-DAEMON@x.example\r\nMessage-ID: <a@x>\r\n\r\n550 5.1.1")
    box.add(b"From: MAILER-DAEMON@x.example\r\nMessage-ID: <b@x>\r\n\r\n550 5.1.1")
    assert bounces.process_maildir(str(tmp_path / "bounces")) == 2
    assert len(box) == 0
    assert list(Bounce.objects.values_list("kind", "diagnostic")) == [
        ("unknown", "unreadable report"),
        ("unknown", "unreadable report"),
    ]
    assert not Suppression.objects.exists()
