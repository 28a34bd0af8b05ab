"""One reading of SMTP replies and delivery-status codes, for the hand-off and for reports.

The replies are written as the servers that send them write them (Gmail, Outlook and
Exchange Online, Yahoo, Postfix, Exim, Orange, Free, SFR, GMX, Proofpoint, Mimecast…).
Only a mailbox that does not exist suppresses the address.
"""

from __future__ import annotations

import pytest
from anymail.signals import AnymailTrackingEvent, tracking

from enseigne.campaigns.models import Recipient
from enseigne.contacts.models import Suppression
from enseigne.delivery import bounces, codes
from enseigne.delivery.channels.base import Outcome
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.delivery.channels.locmem.transport import LocmemTransport
from enseigne.delivery.channels.smtp.transport import classify as smtp_classify
from enseigne.delivery.models import Bounce
from enseigne.delivery.pipeline import Runner, run_campaign
from enseigne.lib.hashing import identifier_hash
from enseigne.lib.signing import sign_id
from tests.campaign_helpers import contacts, launched, local_campaign

D, T, P, U = "delivered", "temporary", "permanent", "unknown"

# (basic code, the server's words, status, suppress, enhanced code read)
REPLIES = [
    # Accepted.
    (250, "2.0.0 OK  1700000000 a1-20020a05600c(gsmtp)", D, False, "2.0.0"),
    (250, "Ok: queued as 4Xk9Zt3vQYz1", D, False, ""),
    (251, "User not local; will forward", D, False, ""),
    # Mailbox does not exist: the enhanced code says so.
    (
        550,
        "5.1.1 The email account that you tried to reach does not exist. Please try\n"
        "5.1.1 double-checking the recipient's email address for typos or\n"
        "5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser a1si(gsmtp)",
        P,
        True,
        "5.1.1",
    ),
    (
        550,
        "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient nobody@contoso.com not found by SMTP "
        "address lookup",
        P,
        True,
        "5.1.10",
    ),
    (
        550,
        "5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in virtual "
        "mailbox table",
        P,
        True,
        "5.1.1",
    ),
    (
        550,
        "5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in local "
        "recipient table",
        P,
        True,
        "5.1.1",
    ),
    (
        550,
        "5.1.1 Adresse d au moins un destinataire invalide. Invalid recipient. OFR_416 [416]",
        P,
        True,
        "5.1.1",
    ),
    (550, "5.1.1 <x@sfr.fr>: Recipient address rejected: sfr.fr", P, True, "5.1.1"),
    (550, "5.1.2 Host unknown: nonexistent-domain.example", P, True, "5.1.2"),
    (
        553,
        "5.1.3 The recipient address <a b@example.org> is not a valid RFC-5321 address",
        P,
        True,
        "5.1.3",
    ),
    (550, "5.1.6 Recipient mailbox has moved, no forwarding address", P, True, "5.1.6"),
    (556, "5.1.10 Recipient address has null MX", P, True, "5.1.10"),
    (550, "#5.1.1 Recipient not found", P, True, "5.1.1"),
    # Providers that use codes their own way (issue 18): Outlook.com, Exchange Online's
    # directory-based edge blocking, a domain that does not exist, Yahoo and AOL.
    (
        550,
        "5.5.0 Requested action not taken: mailbox unavailable (S2017062302). [AM0PR0]",
        P,
        True,
        "5.5.0",
    ),
    (
        550,
        "5.5.0 Requested action not taken: mailbox unavailable. [DB5EUR03FT012.eop-EUR03.prod]",
        P,
        True,
        "5.5.0",
    ),
    (
        550,
        "5.4.1 Recipient address rejected: Access denied. AS(201806281) "
        "[VI1EUR02FT045.eop-EUR02.prod.protection.outlook.com]",
        P,
        True,
        "5.4.1",
    ),
    (
        550,
        "5.4.4 Host or domain name not found. Name service error for name=lapost.net "
        "type=A: Host not found",
        P,
        True,
        "5.4.4",
    ),
    (550, "5.4.4 <x@orange-fr.example>: Recipient address rejected: NXDOMAIN", P, True, "5.4.4"),
    (550, "5.4.4 Domain name not found", P, True, "5.4.4"),
    (
        554,
        "delivery error: dd This user doesn't have a yahoo.com account (x@yahoo.com) [0] - "
        "mta1234.mail.ne1.yahoo.com",
        P,
        True,
        "",
    ),
    (
        554,
        "delivery error: dd This user doesn\u2019t have a aol.com account (x@aol.com) [0]",
        P,
        True,
        "",
    ),
    (552, "1 Requested mail action aborted, mailbox not found", P, True, ""),
    (554, "5.0.0 delivery error: dd This user doesn't have a ymail.com account", P, True, "5.0.0"),
    (
        554,
        "delivery error: dd Sorry your message to x@yahoo.com cannot be delivered. This mailbox "
        "is disabled (554.30)",
        P,
        False,
        "",
    ),
    (
        554,
        "5.7.9 Message not accepted for policy reasons. doesn't have a yahoo.com account",
        P,
        False,
        "5.7.9",
    ),
    (554, "This user doesn't have a yahoo.com account - blocked for spam", P, False, ""),
    # The mailbox exists, or the refusal is about something else: never suppressed.
    (
        550,
        "5.7.1 Service unavailable; Client host [192.0.2.1] blocked using Spamhaus. "
        "To request removal from this list see https://www.spamhaus.org/query/ip/192.0.2.1",
        P,
        False,
        "5.7.1",
    ),
    (550, "5.7.1 Requested action not taken: mailbox unavailable", P, False, "5.7.1"),
    (
        550,
        "5.7.1 Our system has detected that this message is likely unsolicited mail. "
        "To reduce the amount of spam sent to Gmail, this message has been blocked.",
        P,
        False,
        "5.7.1",
    ),
    (
        550,
        "5.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC "
        "policy. user unknown",
        P,
        False,
        "5.7.26",
    ),
    (554, "5.7.1 <x@example.org>: Relay access denied", P, False, "5.7.1"),
    (
        550,
        "5.7.0 Local Policy Violation - reputation https://www.proofpoint.com/us/"
        "blocked-email-senders-list",
        P,
        False,
        "5.7.0",
    ),
    (
        550,
        "Rejected by header based Blocked Senders - https://community.mimecast.com/docs/"
        "DOC-1369#550 [Xy1Z2a3B4c.uk31]",
        P,
        False,
        "",
    ),
    (552, "5.2.2 The email account that you tried to reach is over quota.", P, False, "5.2.2"),
    (550, "5.2.1 The email account that you tried to reach is disabled.", P, False, "5.2.1"),
    (552, "5.3.4 Message size exceeds fixed maximum message size", P, False, "5.3.4"),
    (550, "5.4.4 Unrouteable address", P, False, "5.4.4"),
    # The same provider codes with other words suppress nothing.
    (550, "5.5.0 Invalid EHLO/HELO domain", P, False, "5.5.0"),
    (
        550,
        "5.5.0 Requested action not taken: mailbox unavailable - blocked by policy",
        P,
        False,
        "5.5.0",
    ),
    (550, "5.4.1 Relay access denied", P, False, "5.4.1"),
    (
        550,
        "5.4.1 Recipient address rejected: Access denied. Spam source blocked",
        P,
        False,
        "5.4.1",
    ),
    (
        550,
        "5.4.4 Host or domain name not found. Name service error for name=example.org "
        "type=MX: Host not found, try again",
        P,
        False,
        "5.4.4",
    ),
    (550, "5.4.4 No route to host", P, False, "5.4.4"),
    (550, "5.4.6 Routing loop detected", P, False, "5.4.6"),
    (
        553,
        "5.1.8 <bounce@news.example.com>: Sender address rejected: Domain not found",
        P,
        False,
        "5.1.8",
    ),
    (554, "5.7.1 Service refuse. Veuillez essayer plus tard. OFR_506 [506]", P, False, "5.7.1"),
    # Greylisting, rate limits, a full mailbox for now: temporary, never suppressed.
    (
        450,
        "4.2.0 <x@example.org>: Recipient address rejected: Greylisted, see http://postgrey",
        T,
        False,
        "4.2.0",
    ),
    (451, "4.7.1 Please try again later", T, False, "4.7.1"),
    (
        421,
        "mwinf5c10 ME Trop de connexions, veuillez verifier votre configuration. Too many "
        "connections, slow down. OFR005_104 [104]",
        T,
        False,
        "",
    ),
    (
        421,
        "4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume "
        "or user complaints",
        T,
        False,
        "4.7.0",
    ),
    (452, "4.2.2 The email account that you tried to reach is over quota.", T, False, "4.2.2"),
    (450, "4.1.1 <x@example.org>: Recipient address rejected: User unknown", T, False, "4.1.1"),
    # No enhanced code: the words decide, only for 550, 551 and 553.
    (
        550,
        "<x@example.org>: Recipient address rejected: User unknown in virtual mailbox table",
        P,
        True,
        "",
    ),
    (
        550,
        "Requested action not taken: mailbox unavailable (-1234567890:2910:-2147467259)",
        P,
        False,
        "",
    ),
    (550, "No such user here", P, True, ""),
    (551, "User not local; please try <forward@example.org>", P, False, ""),
    (
        553,
        "sorry, that domain isn't in my list of allowed rcpthosts; no valid cert for gatewaying",
        P,
        False,
        "",
    ),
    (550, "Unrouteable address", P, False, ""),
    (550, "x@free.fr: utilisateur inconnu", P, True, ""),
    (550, "Cette adresse email n'existe pas", P, True, ""),
    (550, "Boîte aux lettres inexistante", P, True, ""),
    (550, "Requested action not taken: Destinataire inconnu", P, True, ""),
    (550, "Mailbox unavailable: user does not exist", P, True, ""),
    (550, "Empfänger unbekannt / Benutzer unbekannt", P, True, ""),
    (550, "Die Mailbox existiert nicht", P, True, ""),
    (550, "Requested action not taken: mailbox unavailable - blocked for spam", P, False, ""),
    (550, "User unknown - sender blocked by policy", P, False, ""),
    (550, "Sender address does not exist", P, False, ""),
    (550, "Adresse expéditeur inexistante, message refusé", P, False, ""),
    (554, "No such user", P, False, ""),
    (552, "Requested mail action aborted: user unknown", P, False, ""),
    # A code that says nothing precise lets the words decide.
    (550, "5.0.0 <x@example.org>... User unknown", P, True, "5.0.0"),
    (550, "5.0.0 Message rejected", P, False, "5.0.0"),
    (550, "5.1.0 Address rejected: no such mailbox", P, True, "5.1.0"),
    (550, "5.1.0 Address rejected", P, False, "5.1.0"),
    # Numbers in the words that are no status code.
    (550, "Host 10.5.1.1 said: access denied", P, False, ""),
    (550, "Postfix 2.11.3 says: unknown user", P, True, ""),
    (550, "5.7.1 see 10.5.1.1 user unknown", P, False, "5.7.1"),
]


@pytest.mark.parametrize(("code", "text", "status", "suppress", "enhanced"), REPLIES)
def test_replies_from_many_servers(code, text, status, suppress, enhanced):
    verdict = codes.classify(code=code, text=text)
    assert (verdict.status, verdict.suppress, verdict.enhanced) == (status, suppress, enhanced)
    # The hand-off reads a reply exactly so.
    result = smtp_classify(code, text)
    outcome = {D: Outcome.SENT, T: Outcome.RETRY, P: Outcome.FAILED}[status]
    assert (result.outcome, result.code, result.hard_bounce) == (outcome, code, suppress)


@pytest.mark.parametrize(
    ("code", "enhanced", "text", "status", "suppress"),
    [
        # The enhanced code wins over the words, whichever way they point.
        (550, "5.7.1", "User unknown", P, False),
        (550, "5.2.2", "mailbox does not exist", P, False),
        (550, "5.1.1", "Requested action not taken: mailbox unavailable", P, True),
        (550, "5.1.1", "blocked by policy", P, True),
        # A report's Status field alone (no basic code): its class decides.
        (None, "5.1.1", "", P, True),
        (None, "5.7.1", "550 5.1.1 user unknown", P, False),
        (None, "4.4.1", "connect to mx.example.org: Connection timed out", T, False),
        (None, "2.0.0", "250 ok", D, False),
        (None, "5.0.0", "550 No such user", P, True),
        (None, "5.01.001", "", P, True),
        # A basic code and an enhanced code of another class: the basic code decides, the
        # enhanced one is not a status code at all.
        (450, "5.1.1", "User unknown", T, False),
        (550, "4.1.1", "User unknown", P, True),
        (550, "4.1.1", "try later", P, False),
        # Nothing known.
        (None, "", "", U, False),
        (None, "", "mailbox full", U, False),
        (None, "9.1.1", "", U, False),
        (0, "", "5.1.1 user unknown", U, False),
        (-1, "", "", U, False),
        (999, "", "user unknown", U, False),
        (354, "", "End data with <CR><LF>.<CR><LF>", U, False),
    ],
)
def test_enhanced_codes_against_words_and_missing_codes(code, enhanced, text, status, suppress):
    verdict = codes.classify(code=code, enhanced=enhanced, text=text)
    assert (verdict.status, verdict.suppress) == (status, suppress)


@pytest.mark.parametrize(
    ("text", "status", "suppress", "enhanced"),
    [
        ("550 5.1.1 <x@example.org>: Recipient address rejected: User unknown", P, True, "5.1.1"),
        ("550 5.7.1 Message rejected as spam", P, False, "5.7.1"),
        ("550-5.1.1 The email account that you tried to reach does not exist.", P, True, "5.1.1"),
        ("421 4.7.0 Try again later, closing connection.", T, False, "4.7.0"),
        ("550 No such user here", P, True, ""),
        ("The address does not exist.", U, False, ""),
        ("", U, False, ""),
    ],
)
def test_codes_are_read_from_the_words_when_not_given(text, status, suppress, enhanced):
    verdict = codes.classify(text=text)
    assert (verdict.status, verdict.suppress, verdict.enhanced) == (status, suppress, enhanced)


def test_garbage_nul_bytes_and_very_long_replies():
    assert codes.classify(code=550, text="\x00" * 10_000).suppress is False
    assert codes.classify(code=550, text="User\x00 unknown").suppress is True
    assert codes.classify(code=550, text="\x00\x005.1.1\x00 user unknown").enhanced == "5.1.1"
    long = "x" * 1_000_000 + " user unknown"
    verdict = codes.classify(code=550, text=long)
    assert (verdict.status, verdict.suppress) == (P, False), "words past the limit are not read"
    assert codes.classify(code=550, text="user unknown " + "y" * 1_000_000).suppress is True
    assert codes.classify(code=550, text="5.1.1 " + "é" * 100_000).suppress is True
    assert codes.classify(code=550, text="\udcff\ufffd 5.1.1 \ufffd").enhanced == "5.1.1"
    assert codes.classify(code=550, text="550 " * 5000).status == P
    assert codes.enhanced_code("5.1.1.1 and 1.5.1.1 and 5.1") == ""
    assert codes.reply_code("5.1.1 user unknown") is None
    assert codes.reply_code("  552-5.2.2 full") == 552


@pytest.mark.parametrize(
    ("status", "diagnostic", "delayed", "kind"),
    [
        ("5.1.1", "550 5.1.1 user unknown", False, "hard"),
        ("5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound", False, "hard"),
        ("5.7.1", "550 5.7.1 Message rejected as spam", False, "soft"),
        (
            "5.2.1",
            "550 5.2.1 The email account that you tried to reach is disabled.",
            False,
            "soft",
        ),
        ("5.1.8", "553 5.1.8 Sender address rejected: Domain not found", False, "soft"),
        ("5.1.1", "", True, "soft"),
        ("4.2.0", "450 4.2.0 Greylisted", False, "soft"),
        ("550", "Remote host said: user unknown", False, "hard"),
        ("550", "Remote host said: mailbox unavailable", False, "soft"),
        ("554", "no such user", False, "soft"),
        ("5.5.0", "smtp; 550 5.5.0 Requested action not taken: mailbox unavailable", False, "hard"),
        (
            "5.4.4",
            "X-Postfix; Host or domain name not found. Name service error for "
            "name=gmial.example type=A: Host not found",
            False,
            "hard",
        ),
        (
            "5.4.4",
            "X-Postfix; Host or domain name not found. Name service error for "
            "name=gmail.com type=MX: Host not found, try again",
            False,
            "soft",
        ),
        (
            "5.0.0",
            "smtp; 554 delivery error: dd This user doesn't have a yahoo.fr account",
            False,
            "hard",
        ),
        ("", "550 5.1.1 user unknown", False, "hard"),
        ("", "", False, "unknown"),
        ("bounced", "", False, "unknown"),
    ],
)
def test_reports_read_the_same_way(status, diagnostic, delayed, kind):
    assert bounces.classify(status, diagnostic, delayed=delayed) == kind
    assert kind in Bounce.Kind.values


# -- through the pipeline and the report doors ---------------------------------------------


@pytest.fixture
def _outbox():
    locmem.outbox.clear()
    yield
    locmem.outbox.clear()


def _suppressed(email: str) -> bool:
    return Suppression.objects.filter(
        unit_path="", channel="email", value_hash=identifier_hash("email", email)
    ).exists()


def test_a_policy_rejection_at_hand_off_suppresses_nothing_a_missing_mailbox_does(world):
    made = contacts(world.unit_a, 4)
    campaign = local_campaign(world)
    launched(world, campaign)
    replies = {
        made[0].email: (550, "5.7.1 Message rejected by policy: mailbox unavailable"),
        made[1].email: (550, "5.1.1 The email account that you tried to reach does not exist."),
        made[2].email: (550, "Requested action not taken: mailbox unavailable"),
    }

    def answer(message):
        code, text = replies.get(message.to, (250, "2.0.0 OK"))
        return smtp_classify(code, text)

    Runner(campaign.pk, transport=LocmemTransport(answer)).run()
    rows = {
        email: (status, reason)
        for email, status, reason in Recipient.objects.filter(campaign=campaign).values_list(
            "contact__email", "status", "reason"
        )
    }
    assert rows == {
        made[0].email: ("failed", "refused"),
        made[1].email: ("failed", "hard_bounce"),
        made[2].email: ("failed", "refused"),
        made[3].email: ("sent", ""),
    }
    assert list(Suppression.objects.values_list("value_hash", "reason", "unit_path")) == [
        (identifier_hash("email", made[1].email), "hard_bounce", "")
    ]


def test_an_esp_bounce_is_read_from_the_reply_it_quotes(world, _outbox):
    made = contacts(world.unit_a, 4)
    campaign = local_campaign(world)
    launched(world, campaign)
    run_campaign(campaign.pk)
    rows = dict(Recipient.objects.filter(campaign=campaign).values_list("contact__email", "pk"))

    def bounced(email, response, **extra):
        tracking.send(
            sender=object,
            event=AnymailTrackingEvent(
                event_type="bounced",
                recipient=email,
                event_id=f"b-{email}",
                metadata={"enseigne": sign_id("esp", rows[email])},
                mta_response=response,
                **extra,
            ),
            esp_name="Mailgun",
        )

    bounced(made[0].email, "550 5.7.1 Message rejected as spam", reject_reason="bounced")
    bounced(made[1].email, "550 5.1.1 user unknown", reject_reason="bounced")
    bounced(made[2].email, "550 5.1.1 user unknown", reject_reason="blocked")
    bounced(made[3].email, None, reject_reason="bounced")
    kinds = dict(Bounce.objects.values_list("recipient__contact__email", "kind"))
    assert kinds == {
        made[0].email: "soft",
        made[1].email: "hard",
        made[2].email: "hard",
        made[3].email: "hard",  # nothing quoted: the ESP's word stands
    }
    assert [_suppressed(m.email) for m in made] == [False, True, True, True]
