"""Bounce reports (RFC 3464), complaints (RFC 5965), automatic replies and ESP events.

The reports here are written as Postfix, Exchange-style relays, qmail and a mailbox
provider's feedback loop write them, around the very message Enseigne sent.
"""

from __future__ import annotations

import base64
import json
import mailbox
import re

import pytest
from anymail.signals import AnymailTrackingEvent, tracking
from django.core.management import call_command

from enseigne.campaigns import audience, services
from enseigne.campaigns.models import Campaign, Recipient
from enseigne.contacts.models import ConsentStatus, Contact, Suppression
from enseigne.delivery import bounces
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.delivery.models import Bounce
from enseigne.delivery.pipeline import Runner, run_campaign
from enseigne.lib.hashing import identifier_hash
from enseigne.lib.signing import sign_id, webhook_key
from tests.campaign_helpers import contacts, launched, local_campaign
from tests.factories import PASSWORD


@pytest.fixture(autouse=True)
def _empty_outbox():
    locmem.outbox.clear()
    yield
    locmem.outbox.clear()


def _sent(world, n=3):
    made = contacts(world.unit_a, n)
    campaign = local_campaign(world)
    launched(world, campaign)
    run_campaign(campaign.pk)
    by_to = {m.to: m for m in locmem.outbox}
    return campaign, made, by_to


def _dsn(
    original,
    *,
    status="5.1.1",
    action="failed",
    diagnostic="smtp; 550 5.1.1 <{to}>: Recipient address rejected: "
    "User unknown in virtual mailbox table",
    delivered_to=None,
    include="message",
    message_id="<dsn1@mx.example.net>",
):
    """A Postfix-style DSN for ``original`` (an EmailOut), sent back to its envelope sender."""
    headers = original.data.split(b"\r\n\r\n", 1)[0].decode()
    returned = (
        f"Content-Type: message/rfc822\r\n\r\n{original.data.decode()}"
        if include == "message"
        else f"Content-Type: text/rfc822-headers\r\n\r\n{headers}\r\n"
        if include == "headers"
        else "Content-Type: text/plain\r\n\r\n(nothing returned)\r\n"
    )
    to = delivered_to if delivered_to is not None else original.mail_from
    return (
        f"Return-Path: <>\r\nDelivered-To: {to}\r\n"
        f"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\nTo: {to}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: {message_id}\r\nAuto-Submitted: auto-replied\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="B1"\r\n\r\n'
        "--B1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nI'm sorry to have to inform you that your message "
        "could not be delivered.\r\n\r\n"
        "--B1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n"
        "Arrival-Date: Mon, 23 Nov 2026 10:00:00 +0100\r\n\r\n"
        f"Final-Recipient: rfc822; {original.to}\r\nOriginal-Recipient: rfc822;{original.to}\r\nAction: {action}\r\n"
        f"Status: {status}\r\nRemote-MTA: dns; mail.example.org\r\n"
        f"Diagnostic-Code: {diagnostic.format(to=original.to)}\r\n\r\n"
        f"--B1\r\n{returned}\r\n--B1--\r\n"
    ).encode()


def _arf(original, *, feedback="abuse", message_id="<arf1@fbl.example.net>"):
    return (
        "From: fbl@fbl.example.net\r\nTo: abuse@news.example.com\r\nSubject: Complaint about message\r\n"
        f"Message-ID: {message_id}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="F1"\r\n\r\n'
        "--F1\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n"
        "--F1\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: {feedback}\r\nUser-Agent: ExampleFBL/1.0\r\nVersion: 1\r\n"
        f"Original-Mail-From: <{original.mail_from}>\r\nOriginal-Rcpt-To: <{original.to}>\r\n\r\n"
        f"--F1\r\nContent-Type: message/rfc822\r\n\r\n{original.data.decode()}\r\n--F1--\r\n"
    ).encode()


def _row(campaign, email):
    return Recipient.objects.get(campaign=campaign, contact__email=email)


def _suppressed(email, reason):
    return Suppression.objects.filter(
        unit_path="", channel="email", value_hash=identifier_hash("email", email), reason=reason
    ).exists()


def test_a_hard_bounce_to_the_verp_address_suppresses_brand_wide_once(world):
    campaign, made, sent = _sent(world)
    target = made[0].email
    raw = _dsn(sent[target])
    report = bounces.parse(raw)
    assert (report.kind, report.status, report.address) == ("hard", "5.1.1", target)
    assert report.recipient_id == _row(campaign, target).pk
    assert "User unknown" in report.diagnostic

    assert bounces.process(raw, source="mailbox") is not None
    assert bounces.process(raw, source="mailbox") is None, "the same report is recorded once"
    assert Bounce.objects.filter(kind="hard").count() == 1
    row = _row(campaign, target)
    assert (row.status, row.feedback) == ("sent", "hard")
    assert _suppressed(target, "hard_bounce")
    assert not _suppressed(made[1].email, "hard_bounce")
    # The next campaign, from any unit, leaves the address out and says why.
    preview = audience.preview(local_campaign(world))
    assert preview.exclusions.get("suppressed") == 1


@pytest.mark.parametrize(
    ("status", "action", "diagnostic"),
    [
        ("5.2.2", "failed", "smtp; 552 5.2.2 Mailbox full"),
        ("5.7.1", "failed", "smtp; 550 5.7.1 Message rejected as spam"),
        # A disabled mailbox exists: only a mailbox that does not exist suppresses (codes.py).
        (
            "5.2.1",
            "failed",
            "smtp; 550 5.2.1 The email account that you tried to reach is disabled.",
        ),
        ("5.1.8", "failed", "smtp; 553 5.1.8 Sender address rejected: Domain not found"),
        ("4.4.1", "delayed", "X-Postfix; connect to mail.example.org: Connection timed out"),
    ],
)
def test_full_mailboxes_policy_blocks_and_delays_are_soft_and_suppress_nothing(
    world, status, action, diagnostic
):
    campaign, made, sent = _sent(world)
    bounce = bounces.process(
        _dsn(sent[made[0].email], status=status, action=action, diagnostic=diagnostic),
        source="mailbox",
    )
    assert bounce.kind == "soft" and bounce.status_code == status
    assert _row(campaign, made[0].email).feedback == "soft"
    assert not Suppression.objects.exists()


def test_a_delivery_notice_is_not_a_bounce(world):
    _campaign, made, sent = _sent(world)
    assert (
        bounces.parse(
            _dsn(sent[made[0].email], status="2.0.0", action="delivered", diagnostic="smtp; 250 ok")
        )
        is None
    )


@pytest.mark.parametrize("include", ["message", "headers"])
def test_the_row_is_found_from_the_returned_message_when_the_verp_address_is_lost(world, include):
    campaign, made, sent = _sent(world)
    raw = _dsn(sent[made[1].email], delivered_to="bounces@news.example.com", include=include)
    assert bounces.parse(raw).recipient_id == _row(campaign, made[1].email).pk


def test_forged_reports_name_no_row_and_suppress_nobody(world):
    campaign, made, sent = _sent(world)
    original = sent[made[0].email]
    row = _row(campaign, made[0].email).pk
    forged_verp = original.mail_from.replace(original.mail_from.split(".")[1][:16], "0" * 16)
    forged_mid = re.sub(r"\.[0-9a-f]{12}@", ".000000000000@", original.message_id)
    assert forged_mid != original.message_id
    forged = _dsn(original, delivered_to=forged_verp, include="none")
    assert bounces.parse(forged).recipient_id is None
    # A made-up Message-ID quoted in the body is not ours either.
    quoted = _dsn(original, delivered_to="bounces@news.example.com", include="headers")
    quoted = quoted.replace(original.message_id.encode(), forged_mid.encode())
    assert bounces.parse(quoted).recipient_id is None
    bounces.process(forged, source="mailbox")
    assert not Suppression.objects.exists()
    assert Bounce.objects.get().recipient is None
    assert Recipient.objects.get(pk=row).feedback == ""


def test_a_complaint_suppresses_and_pauses_the_campaign_past_the_rate(world, settings, client):
    settings.COMPLAINT_MIN_SENT = 10
    contacts(world.unit_a, 30)
    campaign = local_campaign(world)
    launched(world, campaign)
    Runner(campaign.pk, batch_size=10, chunk_size=10).run(max_batches=1)
    assert Campaign.objects.get(pk=campaign.pk).status == "sending"
    first = locmem.outbox[0]
    report = bounces.parse(_arf(first))
    assert (report.kind, report.address) == ("complaint", first.to)
    bounces.process(_arf(first), source="mailbox")
    assert _suppressed(first.to, "complaint")
    campaign.refresh_from_db()
    # 1 complaint for 10 sent is far above 0.3 %: sending stops by itself and says why.
    assert (campaign.status, campaign.pause_reason) == ("paused", "complaint_rate")
    assert Runner(campaign.pk).run().sent == 0
    assert client.login(username=world.manager_a.email, password=PASSWORD)
    page = client.get(f"/campaigns/{campaign.public_id}/").content.decode()
    assert 'id="pause-reason"' in page and "1 spam complaint (" in page
    services.campaign_resume(actor=world.manager_a, campaign=campaign)
    assert Campaign.objects.get(pk=campaign.pk).pause_reason == ""
    # A "not spam" report is no complaint.
    assert bounces.parse(_arf(locmem.outbox[1], feedback="not-spam")) is None


def test_below_the_minimum_volume_a_complaint_does_not_pause(world, settings):
    settings.COMPLAINT_MIN_SENT = 1000
    made = contacts(world.unit_a, 20)
    campaign = local_campaign(world)
    launched(world, campaign)
    Runner(campaign.pk, batch_size=10, chunk_size=10).run(max_batches=1)
    bounces.process(_arf(locmem.outbox[0]), source="mailbox")
    assert Campaign.objects.get(pk=campaign.pk).status == "sending"
    assert len(made) == 20


def test_automatic_replies_are_kept_apart_and_change_nothing(world):
    campaign, made, sent = _sent(world)
    original = sent[made[2].email]
    reply = (
        f"From: {original.to}\r\nTo: {original.mail_from}\r\nDelivered-To: {original.mail_from}\r\n"
        f"Subject: Réponse automatique : absent jusqu'au 2 décembre\r\nAuto-Submitted: auto-replied\r\n"
        f"In-Reply-To: {original.message_id}\r\nMessage-ID: <ooo1@example.org>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nJe suis absent.\r\n"
    ).encode()
    bounce = bounces.process(reply, source="mailbox")
    assert bounce.kind == "auto_reply" and bounce.recipient_id == _row(campaign, made[2].email).pk
    assert _row(campaign, made[2].email).feedback == ""
    assert not Suppression.objects.exists()


def test_a_plain_text_bounce_is_read_from_its_words(world):
    campaign, made, sent = _sent(world)
    original = sent[made[0].email]
    body = (
        f"Hi. This is the qmail-send program at mx.example.org.\r\nI'm afraid I wasn't able to deliver your "
        f"message to the following addresses.\r\n\r\n<{original.to}>:\r\n"
        "Remote host said: 550 5.1.1 This mailbox does not exist\r\n\r\n--- Below this line is a copy of the "
        f"message.\r\n\r\n{original.data.decode()}"
    )
    raw = (
        f"From: MAILER-DAEMON@mx.example.org\r\nTo: bounces@news.example.com\r\nSubject: failure notice\r\n"
        f"Message-ID: <q1@mx.example.org>\r\n\r\n{body}"
    ).encode()
    report = bounces.parse(raw)
    assert (report.kind, report.status, report.recipient_id) == (
        "hard",
        "5.1.1",
        _row(campaign, made[0].email).pk,
    )


def test_the_three_doors_inbound_url_stdin_command_and_maildir(world, client, tmp_path, settings):
    campaign, made, sent = _sent(world)
    raw = _dsn(sent[made[0].email])
    assert (
        client.post("/hooks/bounces/not-the-key/", raw, content_type="message/rfc822").status_code
        == 404
    )
    assert not Bounce.objects.exists()
    response = client.post(
        f"/hooks/bounces/{webhook_key('bounces')}/", raw, content_type="message/rfc822"
    )
    assert (response.status_code, response.content) == (202, b"hard")
    # A Maildir the MTA delivers to: read, acted on, emptied.
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(_dsn(sent[made[1].email], message_id="<dsn2@mx.example.net>"))
    box.add(_arf(sent[made[2].email]))
    call_command("process_bounces", "--maildir", str(tmp_path / "bounces"))
    assert len(box) == 0
    assert _suppressed(made[1].email, "hard_bounce") and _suppressed(made[2].email, "complaint")
    # Saved files (the stdin form reads the same way).
    path = tmp_path / "dsn3.eml"
    path.write_bytes(
        _dsn(
            sent[made[0].email],
            status="5.2.2",
            diagnostic="smtp; 552 full",
            message_id="<dsn3@mx.example.net>",
        )
    )
    call_command("process_bounces", str(path))
    assert Bounce.objects.filter(kind="soft").count() == 1
    assert dict(
        Recipient.objects.filter(campaign=campaign).values_list("contact__email", "feedback")
    ) == {made[0].email: "hard", made[1].email: "hard", made[2].email: "complaint"}


def test_esp_events_through_anymail(world):
    campaign, made, sent = _sent(world)
    rows = {m.email: _row(campaign, m.email).pk for m in made}

    def event(kind, email, **extra):
        return AnymailTrackingEvent(
            event_type=kind,
            recipient=email,
            event_id=f"{kind}-{email}",
            metadata={"enseigne": sign_id("esp", rows[email])},
            **extra,
        )

    tracking.send(
        sender=object,
        event=event("bounced", made[0].email, reject_reason="bounced"),
        esp_name="Postmark",
    )
    tracking.send(sender=object, event=event("complained", made[1].email), esp_name="Postmark")
    tracking.send(sender=object, event=event("unsubscribed", made[2].email), esp_name="Postmark")
    tracking.send(sender=object, event=event("opened", made[2].email), esp_name="Postmark")
    assert _suppressed(made[0].email, "hard_bounce") and _suppressed(made[1].email, "complaint")
    assert Contact.objects.get(pk=made[2].pk).email_consent == ConsentStatus.WITHDRAWN
    assert sorted(Bounce.objects.values_list("kind", flat=True)) == ["complaint", "hard"]
    # A forged row id in the metadata names no row.
    tracking.send(
        sender=object,
        event=AnymailTrackingEvent(
            event_type="deferred",
            recipient="x@example.org",
            event_id="d1",
            metadata={"enseigne": f"{rows[made[0].email]}.x"},
        ),
        esp_name="Postmark",
    )
    assert Bounce.objects.get(reference="d1").recipient is None


def test_the_esp_webhook_answers_only_for_the_configured_esp_with_a_secret(world, client, settings):
    campaign, made, sent = _sent(world)
    row = _row(campaign, made[0].email)
    payload = json.dumps(
        {
            "RecordType": "Bounce",
            "Type": "HardBounce",
            "ID": 42,
            "Email": made[0].email,
            "BouncedAt": "2026-11-23T10:00:00Z",
            "Description": "The address does not exist.",
            "Metadata": {"enseigne": sign_id("esp", row.pk)},
        }
    )
    url = "/hooks/esp/postmark/"
    assert (
        client.post(url, payload, content_type="application/json").status_code == 404
    )  # not the ESP in use
    settings.EMAIL_URL = "esp:anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {}
    assert (
        client.post(url, payload, content_type="application/json").status_code == 404
    )  # no secret: no webhook
    settings.ANYMAIL = {"WEBHOOK_SECRET": "hook:s3cret"}
    assert (
        client.post("/hooks/esp/mailgun/", payload, content_type="application/json").status_code
        == 404
    )
    assert (
        client.post(url, payload, content_type="application/json").status_code == 400
    )  # no credentials
    auth = "Basic " + base64.b64encode(b"hook:s3cret").decode()
    assert (
        client.post(
            url, payload, content_type="application/json", HTTP_AUTHORIZATION=auth
        ).status_code
        == 200
    )
    row.refresh_from_db()
    assert row.feedback == "hard" and _suppressed(made[0].email, "hard_bounce")
