"""The send pipeline: claim a batch with a lease, render, hand off, mark. The DB is the truth.

A worker claims up to ``SEND_BATCH_SIZE`` pending rows of one campaign (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises claims), so any
number of workers share a campaign without overlap. Rows are then handed off in chunks:

1. ``attempted_at`` is committed for the chunk (a crash from here on leaves the rows
   recognisably *ambiguous*, never silently re-sent);
2. in one transaction, the chunk's contacts are locked (``FOR SHARE``), consent,
   suppression, pressure and the SMS window are checked again, the messages go to the
   transport while the locks are held, and each row is marked from its outcome.

Because the contacts stay locked during the hand-off, an unsubscribe (which updates the
contact) commits either before the check (the message is not sent) or after the
message left: never "committed, then sent anyway". An expired lease makes a row
claimable again; if it was attempted it is ambiguous and the policy decides.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from enseigne.brand.models import LocalVersion, TemplateVersion
from enseigne.brand.previews import brand_context, unit_context
from enseigne.brand.rendering import Compiled, Personaliser, text_template, zone_context
from enseigne.brand.zones import Zone
from enseigne.campaigns.models import Campaign, Recipient, Relay
from enseigne.campaigns.selectors import policy_for, pressure_rules, sms_window
from enseigne.campaigns.services import campaign_finish_if_done
from enseigne.contacts.models import VALID_CONSENT, Channel, Contact, Suppression
from enseigne.contacts.services import suppress_brand_wide
from enseigne.delivery.channels import email_transport, sms_transport
from enseigne.delivery.channels.base import EmailOut, Outcome, Result, SmsOut
from enseigne.delivery.events import record_sent
from enseigne.delivery.links import LinkRewriter
from enseigne.delivery.messages import Envelope, bounce_address, build_email, message_id
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.lib.signing import sign_id
from enseigne.network.models import OrgNode
from enseigne.network.selectors import root_of

logger = logging.getLogger(__name__)
R = Recipient.Status
# Stop working on a claimed batch when less than this is left on the lease.
LEASE_MARGIN = dt.timedelta(seconds=20)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"[:64]


def _unsubscribe_prefix() -> str:
    return f"{settings.BASE_URL.rstrip('/')}/u/"


def unsubscribe_url(recipient_id: int) -> str:
    return f"{_unsubscribe_prefix()}{sign_id('unsubscribe', recipient_id)}/"


@dataclass
class Stats:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retried: int = 0
    deferred: int = 0
    ambiguous: int = 0
    batches: int = 0

    def add(self, other: Stats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class UnitContent:
    """Everything one unit's messages share, prepared once per run."""

    unit: OrgNode
    version: TemplateVersion
    unit_data: dict
    brand_data: dict
    time_zone: str
    domain: str
    personaliser: Personaliser | None = None
    text_zones: dict = field(default_factory=dict)
    envelope: Envelope | None = None
    subject: object | None = None  # the version's subject, parsed once (None: the campaign's name)
    sms_sender: str = ""
    sms_body: object | None = None
    links: LinkRewriter | None = None


class Runner:
    def __init__(
        self,
        campaign_id: int,
        *,
        worker: str | None = None,
        transport=None,
        clock=timezone.now,
        batch_size: int | None = None,
        chunk_size: int | None = None,
        lease_seconds: int | None = None,
    ):
        self.campaign_id = campaign_id
        self.worker = worker or worker_name()
        self.clock = clock
        self.batch_size = batch_size or settings.SEND_BATCH_SIZE
        self.chunk_size = chunk_size or settings.SEND_CHUNK_SIZE
        self.lease = dt.timedelta(seconds=lease_seconds or settings.SEND_LEASE_SECONDS)
        self._transport = transport
        self._held_since = time.monotonic()
        self.contents: dict[int, UnitContent] = {}
        with transaction.atomic(), db_scope(ALL):
            self.campaign = Campaign.objects.select_related(
                "template__current", "owner", "local_version__version"
            ).get(pk=campaign_id)
            self.policy = policy_for(self.campaign.owner)
            self.window = sms_window(self.policy)
            self.rules = pressure_rules(self.campaign.owner, self.campaign.channel)
        self.is_email = self.campaign.channel == Channel.EMAIL

    @property
    def transport(self):
        if self._transport is None:
            self._transport = email_transport() if self.is_email else sms_transport()
        return self._transport

    # -- the loop ---------------------------------------------------------------------------

    def run(self, *, max_batches: int | None = None, exclusive: bool = False) -> Stats:
        """Claim and hand off until nothing is due. ``exclusive``: as the campaign's one runner."""
        total = Stats()
        if exclusive and not self._hold_runner():
            logger.info("campaign %s already has a runner", self.campaign_id)
            return total
        try:
            while max_batches is None or total.batches < max_batches:
                rows = self.claim()
                if not rows:
                    break
                total.add(self.process(rows))
                total.batches += 1
                if exclusive:
                    self._hold_runner()
        finally:
            if exclusive:
                with transaction.atomic(), db_scope(ALL):
                    Campaign.objects.filter(pk=self.campaign_id, runner_owner=self.worker).update(
                        runner_owner="", runner_until=None
                    )
        with transaction.atomic(), db_scope(ALL):
            campaign_finish_if_done(self.campaign_id)
        return total

    def _hold_runner(self) -> bool:
        now = self.clock()
        with transaction.atomic(), db_scope(ALL):
            return bool(
                Campaign.objects.filter(pk=self.campaign_id)
                .filter(
                    Q(runner_owner=self.worker)
                    | Q(runner_until__isnull=True)
                    | Q(runner_until__lt=now)
                )
                .update(runner_owner=self.worker, runner_until=now + self.lease)
            )

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _status(self) -> str:
        return (
            Campaign.objects.filter(pk=self.campaign_id).values_list("status", flat=True).first()
            or ""
        )

    def claim(self) -> list[dict]:
        """Lease up to a batch of due rows (id, contact, unit, in id order); an attempted row
        whose lease ran out is ambiguous."""
        now = self.clock()
        with transaction.atomic(), db_scope(ALL):
            if self._status() != Campaign.Status.SENDING:
                return []
            rows = list(
                Recipient.objects.select_for_update(skip_locked=True)
                .filter(campaign_id=self.campaign_id, status=R.PENDING)
                .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
                .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
                .order_by("id")
                .values("id", "contact_id", "unit_id", "attempted_at")[: self.batch_size]
            )
            if not rows:
                return []
            unknown = [r["id"] for r in rows if r["attempted_at"] is not None]
            if unknown:
                self._ambiguous(unknown, now, "the worker stopped while handing it off")
            rows = [
                r for r in rows if r["attempted_at"] is None or settings.AMBIGUOUS_POLICY == "retry"
            ]
            Recipient.objects.filter(pk__any=[r["id"] for r in rows]).update(
                lease_owner=self.worker, lease_until=now + self.lease
            )
        return rows

    def _ambiguous(self, ids: list[int], now, why: str) -> None:
        """Log rows that may have left; at-most-once ends them, retry sends them again."""
        logger.warning(
            "campaign %s: %d recipient(s) ambiguous (%s), policy %s",
            self.campaign_id,
            len(ids),
            why,
            settings.AMBIGUOUS_POLICY,
        )
        rows = Recipient.objects.filter(pk__any=ids)
        if settings.AMBIGUOUS_POLICY == "retry":
            rows.update(
                ambiguous_count=F("ambiguous_count") + 1,
                attempted_at=None,
                lease_owner="",
                lease_until=None,
            )
        else:
            rows.update(
                status=R.AMBIGUOUS,
                reason="connection_lost",
                detail=why[:300],
                ambiguous_count=F("ambiguous_count") + 1,
                attempted_at=None,
                lease_owner="",
                lease_until=None,
            )

    def process(self, rows: list[dict]) -> Stats:
        stats = Stats(claimed=len(rows))
        started = self.clock()
        for start in range(0, len(rows), self.chunk_size):
            chunk = rows[start : start + self.chunk_size]
            if (
                self.clock() - started > self.lease - min(LEASE_MARGIN, self.lease / 4)
                or self._status() != Campaign.Status.SENDING
            ):
                self._release([r["id"] for r in rows[start:]])
                break
            stats.add(self._hand_off(chunk))
        return stats

    def _release(self, ids: list[int]) -> None:
        with transaction.atomic(), db_scope(ALL):
            Recipient.objects.filter(
                pk__any=ids, lease_owner=self.worker, attempted_at__isnull=True
            ).update(lease_owner="", lease_until=None)

    # -- one chunk ---------------------------------------------------------------------------

    def _hand_off(self, chunk: list[dict]) -> Stats:
        stats = Stats()
        now = self.clock()
        ids = [r["id"] for r in chunk]
        with transaction.atomic(), db_scope(ALL):
            # The chunk's lease starts afresh with its hand-off, so a slow batch does not let
            # another worker reclaim rows that are being sent right now.
            # By id and lease only: a leased row is always pending (a check constraint), and a
            # status condition here let PostgreSQL scan every pending row of the campaign.
            marked = Recipient.objects.filter(
                pk__any=ids, lease_owner=self.worker, lease_until__gt=now
            ).update(attempted_at=now, lease_until=now + self.lease)
        if marked != len(ids):
            # Someone reclaimed part of it: leave all of it to the ledger's next claim.
            with transaction.atomic(), db_scope(ALL):
                Recipient.objects.filter(
                    pk__any=ids, lease_owner=self.worker, attempted_at=now
                ).update(attempted_at=None, lease_owner="", lease_until=None)
            return stats
        with transaction.atomic(), db_scope(ALL):
            contacts = self._lock_contacts([r["contact_id"] for r in chunk if r["contact_id"]])
            verdicts = self._gates(chunk, contacts, now)
            ready, skipped, deferred = [], {}, {}
            for row in chunk:
                verdict = verdicts[row["id"]]
                if verdict is None:
                    ready.append(row)
                elif isinstance(verdict, dt.datetime):
                    deferred.setdefault(verdict, []).append(row["id"])
                else:
                    skipped.setdefault(verdict, []).append(row["id"])
            for reason, pks in skipped.items():
                Recipient.objects.filter(pk__any=pks).update(
                    status=R.SKIPPED,
                    reason=reason,
                    attempted_at=None,
                    lease_owner="",
                    lease_until=None,
                )
                stats.skipped += len(pks)
            for until, pks in deferred.items():
                Recipient.objects.filter(pk__any=pks).update(
                    not_before=until, attempted_at=None, lease_owner="", lease_until=None
                )
                stats.deferred += len(pks)
            outgoing: list = []
            broken: dict[int, str] = {}
            results = (
                self.transport.send(self._render(ready, contacts, outgoing, broken))
                if ready
                else []
            )
            self._mark(outgoing, results, self.clock(), stats)
            for pk, why in broken.items():
                Recipient.objects.filter(pk=pk).update(
                    status=R.FAILED,
                    reason="render_error",
                    detail=why[:300],
                    attempted_at=None,
                    lease_owner="",
                    lease_until=None,
                )
            stats.failed += len(broken)
        if connection.vendor == "sqlite":
            self._yield_write_lock()
        return stats

    def _yield_write_lock(self) -> None:
        """SQLite has one write lock, held through each hand-off, and its busy handler retries
        only every ~100 ms: a worker taking the lock again at once starves an unsubscribe (or
        any other write) until the campaign ends. So after ``SEND_SQLITE_HOLD_MS`` of
        hand-offs it pauses longer than one retry: other writers wait at most about that long."""
        if not settings.SEND_SQLITE_YIELD_MS:
            return
        if (time.monotonic() - self._held_since) * 1000 >= settings.SEND_SQLITE_HOLD_MS:
            time.sleep(settings.SEND_SQLITE_YIELD_MS / 1000)
            self._held_since = time.monotonic()

    def _render(
        self, rows: list[dict], contacts: dict[int, dict], outgoing: list, broken: dict[int, str]
    ):
        """Yield each row's message as it is rendered, so the transport sends the first ones
        while the next are built; ``outgoing`` collects them in order for marking. A row whose
        message cannot be built (a template error on this contact's data) ends failed, with
        the error, instead of stopping the campaign."""
        for row in rows:
            try:
                message = self._message(row, contacts[row["contact_id"]])
            except Exception as exc:  # noqa: BLE001 - one contact's data must not stop the others
                logger.exception(
                    "campaign %s: recipient %s could not be rendered", self.campaign_id, row["id"]
                )
                broken[row["id"]] = f"{type(exc).__name__}: {exc}"
                continue
            outgoing.append(message)
            yield message

    def _lock_contacts(self, contact_ids: list[int]) -> dict[int, dict]:
        """The chunk's contacts, locked against changes until the hand-off commits."""
        columns = [
            "id",
            "unit_id",
            "unit_path",
            "email",
            "phone",
            "email_hash",
            "phone_hash",
            "first_name",
            "last_name",
            "language",
            "attributes",
            "email_consent",
            "sms_consent",
            "open_tracking",
        ]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT {', '.join(columns)} FROM {Contact._meta.db_table} WHERE id = ANY(%s) FOR SHARE",  # noqa: S608
                    [contact_ids],
                )
                found = {}
                for values in cursor.fetchall():
                    row = dict(zip(columns, values, strict=True))
                    if isinstance(row["attributes"], str):
                        row["attributes"] = json.loads(row["attributes"])
                    found[row["id"]] = row
                return found
        return {c["id"]: c for c in Contact.objects.filter(pk__any=contact_ids).values(*columns)}

    def _gates(self, chunk: list[dict], contacts: dict[int, dict], now) -> dict[int, object]:
        """None = send; a reason string = skip; a datetime = wait until then (SMS window)."""
        campaign = self.campaign
        address = "email" if self.is_email else "phone"
        consent = f"{campaign.channel}_consent"
        verdicts: dict[int, object] = {}
        hashes = {}
        for row in chunk:
            contact = contacts.get(row["contact_id"])
            if contact is None:
                verdicts[row["id"]] = "contact_erased"
            elif not contact[address]:
                verdicts[row["id"]] = "no_address"
            elif not campaign.is_transactional and contact[consent] not in VALID_CONSENT:
                verdicts[row["id"]] = "no_consent"
            else:
                hashes[row["id"]] = contact[
                    f"{address}_hash"
                ]  # kept by the database, as the preview reads it
        if hashes:
            suppressed = set(
                Suppression.objects.filter(
                    channel=campaign.channel, value_hash__in=set(hashes.values())
                )
                .filter(
                    Q(unit_path="") | Q(unit_path__in={c["unit_path"] for c in contacts.values()})
                )
                .values_list("value_hash", "unit_path")
            )
            for row in chunk:
                if row["id"] in hashes:
                    contact = contacts[row["contact_id"]]
                    value = hashes[row["id"]]
                    if (value, "") in suppressed or (value, contact["unit_path"]) in suppressed:
                        verdicts[row["id"]] = "suppressed"
        remaining = [r for r in chunk if r["id"] not in verdicts]
        if remaining and self.rules and not campaign.is_transactional:
            over = self._over_pressure([r["contact_id"] for r in remaining], now)
            for row in remaining:
                if row["contact_id"] in over:
                    verdicts[row["id"]] = "pressure"
        if not self.is_email and not campaign.is_transactional:
            for row in chunk:
                if row["id"] not in verdicts:
                    tz = self._content(row["unit_id"]).time_zone
                    if not self.window.allows(now, tz):
                        verdicts[row["id"]] = self.window.next_allowed(now, tz)
        for row in chunk:
            verdicts.setdefault(row["id"], None)
        return verdicts

    def _over_pressure(self, contact_ids: list[int], now) -> set[int]:
        over: set[int] = set()
        for rule in self.rules:
            counts = (
                Recipient.objects.filter(
                    contact_id__in=contact_ids,
                    channel=self.campaign.channel,
                    status=R.SENT,
                    sent_at__gt=now - dt.timedelta(days=rule.window_days),
                )
                .exclude(campaign_id=self.campaign_id)
                .values("contact_id")
                .annotate(n=Count("id"))
            )
            over |= {c["contact_id"] for c in counts if c["n"] >= rule.max_messages}
        return over

    # -- content ----------------------------------------------------------------------------

    def _content(self, unit_id: int) -> UnitContent:
        content = self.contents.get(unit_id)
        if content is None:
            content = self.contents[unit_id] = self._prepare(unit_id)
        return content

    def _prepare(self, unit_id: int) -> UnitContent:
        campaign = self.campaign
        unit = OrgNode.objects.select_related("profile").get(pk=unit_id)
        local: LocalVersion | None = campaign.local_version
        if campaign.is_national:
            relay = (
                Relay.objects.filter(campaign=campaign, unit_id=unit_id)
                .select_related("local_version__version")
                .first()
            )
            local = relay.local_version if relay and relay.status == Relay.Status.RELAYED else None
        # A local version follows HQ's current version; without one, HQ's defaults are sent.
        version = local.version if local is not None else campaign.template.current
        values = local.values if local is not None else {}
        root = root_of(unit)
        network = getattr(root, "network", None)
        domain = network.sending_domain if network else "localhost"
        profile = getattr(unit, "profile", None)
        content = UnitContent(
            unit=unit,
            version=version,
            unit_data=unit_context(unit),
            brand_data=brand_context(unit),
            time_zone=(profile.time_zone if profile else "") or "Europe/Paris",
            domain=domain,
        )
        zones = tuple(Zone.from_dict(z) for z in version.zones)
        # The SMS body prints the zones' text, and so may an e-mail's subject (a free message's is its title).
        content.text_zones = zone_context(zones, values, for_text=True)
        if self.is_email:
            compiled = Compiled(html=version.compiled_html, text=version.compiled_text, zones=zones)
            content.personaliser = Personaliser(compiled, values)
            content.subject = text_template(version.subject) if version.subject else None
            content.envelope = Envelope.build(
                unit_name=unit.name,
                brand_name=root.name,
                from_address=f"{unit.code}@{domain}",
                reply_to=(profile.email if profile else "") or "",
                list_id=f"{unit.code}.{domain}",
                return_path=f"bounces@{domain}",
            )
            # The unsubscribe link stays as it is: it is not a click, and must work on its own.
            content.links = LinkRewriter(
                campaign_id=campaign.pk,
                unit_id=unit.pk,
                unit_path=unit.path,
                base_url=settings.BASE_URL,
                keep_prefix=_unsubscribe_prefix(),
            )
        else:
            content.sms_body = text_template(version.compiled_text)
            content.sms_sender = content.brand_data["sms_sender"]
        return content

    def _message(self, row: dict, contact: dict):
        content = self._content(row["unit_id"])
        person = {
            "first_name": contact["first_name"],
            "last_name": contact["last_name"],
            "email": contact["email"] or "",
            "phone": contact["phone"] or "",
            "language": contact["language"],
            "attributes": contact["attributes"] or {},
        }
        mid = message_id(self.campaign_id, row["id"], content.domain)
        unsubscribe = unsubscribe_url(row["id"])
        links = {"unsubscribe": unsubscribe, "preferences": unsubscribe, "view_online": ""}
        data = {
            "contact": person,
            "unit": content.unit_data,
            "brand": content.brand_data,
            "links": links,
        }
        if self.is_email:
            html, text = content.personaliser.render(**data)
            if settings.TRACK_CLICKS:
                html, text = (
                    content.links.html(html, row["id"]),
                    content.links.text(text, row["id"]),
                )
            if settings.TRACK_OPENS:
                # The pixel names the ledger row only for a person who accepted per-person opens.
                html = content.links.pixel(html, row["id"] if contact.get("open_tracking") else 0)
            # One line whatever a zone held (encode_word would keep a line break, encoded).
            subject = (
                " ".join(content.subject.render(**data, zones=content.text_zones).split())
                if content.subject
                else self.campaign.name
            )
            raw = build_email(
                envelope=content.envelope,
                to=contact["email"],
                subject=subject,
                html=html,
                text=text,
                message_id=mid,
                unsubscribe_url=links["unsubscribe"],
            )
            return EmailOut(
                recipient_id=row["id"],
                mail_from=bounce_address(row["id"], content.domain),
                to=contact["email"],
                data=raw,
                message_id=mid,
            )
        body = content.sms_body.render(**data, zones=content.text_zones).strip()
        text = f"{content.sms_sender}: {body} {content.version.sms_stop}".strip()
        return SmsOut(
            recipient_id=row["id"],
            sender=content.sms_sender,
            to=contact["phone"],
            text=text,
            message_id=mid,
        )

    # -- outcomes ---------------------------------------------------------------------------

    def _mark(self, outgoing: list, results: list[Result], now, stats: Stats) -> None:
        by_outcome: dict[Outcome, list[tuple[object, Result]]] = {}
        for message, result in zip(outgoing, results, strict=True):
            by_outcome.setdefault(result.outcome, []).append((message, result))
        mine = Recipient.objects.filter(lease_owner=self.worker)
        sent = [m.recipient_id for m, _ in by_outcome.get(Outcome.SENT, [])]
        if sent:
            mine.filter(pk__any=sent).update(
                status=R.SENT,
                sent_at=now,
                attempted_at=None,
                lease_owner="",
                lease_until=None,
                attempts=F("attempts") + 1,
            )
            record_sent(sent, now)
            stats.sent += len(sent)
        for message, result in by_outcome.get(Outcome.RETRY, []):
            row = mine.filter(pk=message.recipient_id)
            attempts = (row.values_list("attempts", flat=True).first() or 0) + 1
            if attempts >= settings.SEND_MAX_ATTEMPTS:
                row.update(
                    status=R.FAILED,
                    reason="gave_up",
                    detail=result.detail,
                    attempts=attempts,
                    attempted_at=None,
                    lease_owner="",
                    lease_until=None,
                )
                stats.failed += 1
            else:
                backoff = settings.SEND_RETRY_SECONDS * 2 ** (attempts - 1)
                row.update(
                    attempts=attempts,
                    detail=result.detail,
                    attempted_at=None,
                    lease_owner="",
                    lease_until=None,
                    not_before=now + dt.timedelta(seconds=backoff),
                )
                stats.retried += 1
        for message, result in by_outcome.get(Outcome.FAILED, []):
            mine.filter(pk=message.recipient_id).update(
                status=R.FAILED,
                reason="hard_bounce" if result.hard_bounce else "refused",
                detail=f"{result.code or ''} {result.detail}".strip()[:300],
                attempted_at=None,
                lease_owner="",
                lease_until=None,
                attempts=F("attempts") + 1,
            )
            stats.failed += 1
            if result.hard_bounce:
                self._suppress_bounce(message)
        ambiguous = [m.recipient_id for m, _ in by_outcome.get(Outcome.AMBIGUOUS, [])]
        if ambiguous:
            self._ambiguous(ambiguous, now, "connection lost after the end of the message")
            if settings.AMBIGUOUS_POLICY == "retry":
                Recipient.objects.filter(pk__any=ambiguous).update(
                    not_before=now + dt.timedelta(seconds=settings.SEND_RETRY_SECONDS)
                )
            stats.ambiguous += len(ambiguous)

    def _suppress_bounce(self, message) -> None:
        suppress_brand_wide(
            channel=self.campaign.channel, address=message.to, reason=Suppression.Reason.HARD_BOUNCE
        )


def run_campaign(campaign_id: int, *, exclusive: bool = False, **options) -> Stats:
    runner = Runner(campaign_id, **options)
    try:
        return runner.run(exclusive=exclusive)
    finally:
        runner.close()


def campaigns_sending() -> list[int]:
    with transaction.atomic(), db_scope(ALL):
        return list(
            Campaign.objects.filter(status=Campaign.Status.SENDING).values_list("pk", flat=True)
        )
