"""The demo's welcome, birthday and win-back journeys (issue 22): a year of history as the
triggers and the engine would have left it, runs the live worker carries on, messages in
the ledger, the journey figures and the Outbox."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Count, Exists, F, OuterRef
from django.test import override_settings
from django.utils import timezone

from enseigne.campaigns.models import Campaign, Recipient
from enseigne.commerce.models import Order
from enseigne.contacts.models import VALID_CONSENT, ConsentEvent, Contact
from enseigne.contacts.services import consent_record
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.delivery.management.commands.smtp_sink import keep
from enseigne.delivery.models import Event
from enseigne.delivery.pipeline import run_campaign
from enseigne.delivery.selectors import outbox_for_user
from enseigne.demo import seed
from enseigne.demo.journeys import HANDOFF_PENDING, HOLDOUT_PERCENT
from enseigne.journeys import engine, triggers
from enseigne.journeys.models import (
    Enrollment,
    EnrollmentStep,
    EntryPurchases,
    JourneyRun,
    JourneySend,
    JourneyTemplate,
)
from enseigne.journeys.selectors import step_figures
from enseigne.network.models import User
from enseigne.network.selectors import unit_time_zone

pytestmark = pytest.mark.django_db
Out = EnrollmentStep.Outcome
W = Enrollment.Status
SIZE = 400


def _runs(name: str):
    return JourneyRun.objects.filter(template__name=name)


@override_settings(SMS_URL="outbox:")
def test_the_demo_journeys_year_then_the_live_worker():
    """One seed (it is the cost): the year as the engine would have written it, then the
    live triggers, engine and runners carrying on from the seed's moment."""
    before = timezone.now()
    summary = seed.seed(contacts_total=SIZE)
    _a_year_as_the_engine_would_have_written_it(summary, before)
    _live_worker_carries_on_into_the_outbox()


def _a_year_as_the_engine_would_have_written_it(summary: dict, before: dt.datetime) -> None:
    assert summary["journeys"] == 3
    assert summary["enrollments"] == Enrollment.objects.count()

    # HQ's three journeys, each with a control group, run by several stores; the welcome
    # one mandatory for the Sud-Est region.
    templates = {t.name: t for t in JourneyTemplate.objects.all()}
    assert set(templates) == {"Bienvenue", "Anniversaire", "Reconquête"}
    assert {t.holdout_percent for t in templates.values()} == {HOLDOUT_PERCENT}
    assert {t.owner.is_root() for t in templates.values()} == {True}
    mandatory = set(_runs("Bienvenue").filter(mandatory=True).values_list("unit__code", flat=True))
    assert mandatory == {"lyon", "marseille", "grenoble"}
    for name in templates:
        assert _runs(name).count() >= 4

    # Every journey has entrants, treated and held out; each (run, record, occurrence) once.
    for name in templates:
        rows = Enrollment.objects.filter(run__template__name=name)
        assert rows.filter(held_out=False).exists(), name
        assert rows.filter(held_out=True).exists(), name
        held = rows.filter(held_out=True).count() / rows.count()
        assert 0.03 < held < 0.2, (name, held)
    assert not (
        Enrollment.objects.values("run", "contact", "occurrence")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .exists()
    )
    # Re-entry "never": one welcome a record.
    assert not (
        Enrollment.objects.filter(run__template__name="Bienvenue")
        .values("run", "contact")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .exists()
    )
    # Nobody enters before being in the base.
    assert not Enrollment.objects.filter(contact__created_at__gt=F("entered_at")).exists()
    # Entrants are the run's store's own records, entered within the year, never later than now.
    for run in JourneyRun.objects.all():
        rows = Enrollment.objects.filter(run=run)
        assert not rows.exclude(unit_path=run.unit_path).exists()
        assert not rows.exclude(contact__unit_path=run.unit_path).exists()
        assert not rows.filter(entered_at__gt=before + dt.timedelta(minutes=30)).exists()
        assert run.status == JourneyRun.Status.ACTIVE
        assert run.starts_on <= timezone.localdate() - dt.timedelta(days=364)
        # HQ published the version the store follows before the store started it.
        assert run.version.published_at.date() <= run.starts_on
    # The nightly pass ran: entries whose 30-day window is over are summed for the report.
    assert EntryPurchases.objects.exists()

    # Messages in the ledger for the treated only, one per "sent" step; none for the held out.
    ledger = Recipient.objects.filter(campaign__kind=Campaign.Kind.JOURNEY)
    by_enrollment = Counter(ledger.values_list("occurrence", flat=True))
    sent_steps = Counter(
        EnrollmentStep.objects.filter(outcome=Out.SENT).values_list("enrollment_id", flat=True)
    )
    assert by_enrollment == sent_steps
    held_ids = set(Enrollment.objects.filter(held_out=True).values_list("pk", flat=True))
    assert held_ids and not held_ids & set(by_enrollment)
    assert not EnrollmentStep.objects.filter(outcome=Out.SENT, enrollment__held_out=True).exists()
    assert EnrollmentStep.objects.filter(outcome=Out.HELD_OUT).count() > 0
    assert not EnrollmentStep.objects.filter(
        outcome=Out.HELD_OUT, enrollment__held_out=False
    ).exists()
    # Each ledger row is its step's campaign's, its record's, in its run's store.
    for send in JourneySend.objects.select_related("run"):
        rows = ledger.filter(campaign=send.campaign_id)
        enrollments = Enrollment.objects.filter(pk__in=rows.values("occurrence"))
        assert not enrollments.exclude(run=send.run).exists()
        assert not rows.exclude(unit_path=send.run.unit_path).exists()
        assert send.campaign.status == Campaign.Status.SENDING
        assert send.campaign.recipient_total == rows.count()
    # Handed off as the demo's other campaigns: sent (with their events) or stopped by a
    # gate; the last day's are pending, for the demo's worker.
    assert ledger.filter(status=Recipient.Status.SENT).count() > 0
    assert not ledger.filter(status=Recipient.Status.SENT, sent_at__isnull=True).exists()
    cutoff = before - HANDOFF_PENDING - dt.timedelta(minutes=5)
    assert not ledger.filter(
        status=Recipient.Status.PENDING, campaign__journey_send__isnull=True
    ).exists()
    for recipient in ledger.filter(status=Recipient.Status.PENDING):
        entered = Enrollment.objects.get(pk=recipient.occurrence)
        assert entered.updated_at >= cutoff or entered.entered_at >= cutoff
    skipped = ledger.filter(status=Recipient.Status.SKIPPED)
    assert set(skipped.values_list("reason", flat=True)) <= {"no_consent"}
    sent_events = Event.objects.filter(
        kind=Event.Kind.SENT, campaign_id__in=ledger.values("campaign_id")
    ).count()
    assert sent_events == ledger.filter(status=Recipient.Status.SENT).count()
    # Sent only to records whose consent for the channel was given by then.
    given = Exists(
        ConsentEvent.objects.filter(
            contact=OuterRef("contact"),
            channel=OuterRef("channel"),
            status__in=VALID_CONSENT,
            occurred_at__lte=OuterRef("sent_at"),
        )
    )
    assert not ledger.filter(status=Recipient.Status.SENT).exclude(given).exists()
    welcome_sent = ledger.filter(campaign__name__endswith="· accueil")
    assert welcome_sent.filter(status=Recipient.Status.SENT).count() > 0

    # Birthdays on their day (the store's), the year as occurrence, every year.
    for row in Enrollment.objects.filter(run__template__name="Anniversaire").select_related(
        "contact", "run__unit__profile"
    ):
        zone = ZoneInfo(unit_time_zone(row.run.unit))
        day = row.entered_at.astimezone(zone).date()
        assert (day.month, day.day) == (row.contact.birthday.month, row.contact.birthday.day)
        assert row.occurrence == str(day.year)
        assert row.status == W.DONE

    # Win-backs 90 days after the record's last order in the store; a purchase within the
    # 14 days reaches the goal, none leaves at the end of the wait.
    winbacks = Enrollment.objects.filter(run__template__name="Reconquête").select_related(
        "run__unit__profile"
    )
    assert winbacks.exists()
    orders: dict[int, list[tuple[dt.datetime, int]]] = {}
    for contact_id, at, unit_id in (
        Order.objects.filter(contact__in=winbacks.values("contact"))
        .order_by("occurred_at")
        .values_list("contact_id", "occurred_at", "unit_id")
    ):
        orders.setdefault(contact_id, []).append((at, unit_id))
    for row in winbacks:
        zone = ZoneInfo(unit_time_zone(row.run.unit))
        mine = orders.get(row.contact_id, [])
        last = max(at for at, unit in mine if unit == row.run.unit_id and at < row.entered_at)
        lapsed = last.astimezone(zone).date()
        assert row.entered_at.astimezone(zone).date() - lapsed == dt.timedelta(days=90)
        assert row.occurrence == lapsed.isoformat()
        bought = any(row.entered_at <= at <= row.updated_at for at, _unit in mine)
        if row.status == W.GOAL:
            assert bought
        elif row.status == W.DONE:
            assert not bought
            assert row.updated_at - row.entered_at >= dt.timedelta(days=13, hours=22)
        else:
            assert row.status == W.WAITING and row.wake_at > before
    assert winbacks.filter(status=W.GOAL).exists()

    # The welcome: an e-mail at the consent, then three days later a condition on a purchase.
    welcomes = Enrollment.objects.filter(run__template__name="Bienvenue")
    for row in welcomes.filter(status__in=(W.DONE, W.EXITED)).order_by("pk")[:25]:
        steps = list(
            EnrollmentStep.objects.filter(enrollment=row)
            .order_by("id")
            .values_list("step", "outcome", "at")
        )
        assert steps[0][:2] == ("accueil", Out.HELD_OUT if row.held_out else Out.SENT)
        assert steps[0][2] == row.entered_at
        assert steps[1][:2] == ("attente", Out.WAITED)
        assert (
            dt.timedelta(days=3, hours=-1)
            <= steps[1][2] - row.entered_at
            <= dt.timedelta(days=3, hours=1)
        )
        bought = Order.objects.filter(
            contact=row.contact_id,
            total__gt=0,
            occurred_at__gte=steps[1][2] - dt.timedelta(days=3),
            occurred_at__lte=steps[1][2],
        ).exists()
        assert steps[2][:2] == ("achat", Out.YES if bought else Out.NO)
    # Those waiting now wait their three days (the live engine wakes them).
    for row in Enrollment.objects.filter(status=W.WAITING):
        assert row.wake_at > before - dt.timedelta(minutes=5)

    # The journey figures read the same rows.
    figures = step_figures(_runs("Bienvenue"))
    assert figures["accueil"].sent == welcome_sent.count()
    assert figures["accueil"].held_out == welcomes.filter(held_out=True).count()
    assert figures["accueil"].entered == welcomes.count()


def _live_worker_carries_on_into_the_outbox():
    entered = Enrollment.objects.count()
    # The first live pass welcomes nobody again and reads no day twice.
    now = timezone.now()
    assert triggers.run_triggers(now) == 0
    assert Enrollment.objects.count() == entered
    # A Lille customer gives her consent in store: the welcome e-mail is queued at once.
    lille_run = _runs("Bienvenue").get(unit__code="lille")
    welcomed = Enrollment.objects.filter(run=lille_run).values("contact")
    newcomer = next(
        contact
        for contact in Contact.objects.filter(unit__code="lille", email__isnull=False)
        .exclude(email_consent__in=VALID_CONSENT)
        .exclude(pk__in=welcomed)
        .order_by("pk")
        if engine.draw(contact.pk, f"holdout:{lille_run.pk}:") >= HOLDOUT_PERCENT
    )
    consent_record(
        actor=None, contact=newcomer, channel="email", status="granted", source="in_store"
    )
    now = timezone.now()
    assert triggers.run_triggers(now) == 1
    engine.advance_all(now=now)
    queued = Recipient.objects.get(
        campaign__journey_send__run=lille_run, campaign__journey_send__step="accueil",
        contact=newcomer,
    )  # fmt: skip
    assert queued.status == Recipient.Status.PENDING
    # The worker hands the journeys' pending messages off; the sink keeps them for the Outbox.
    locmem.outbox.clear()
    for campaign_id in (
        Recipient.objects.filter(
            campaign__kind=Campaign.Kind.JOURNEY, status=Recipient.Status.PENDING
        )
        .values_list("campaign_id", flat=True)
        .distinct()
    ):
        run_campaign(campaign_id)
    for message in locmem.outbox:
        if hasattr(message, "data"):
            keep(message.data, message.mail_from, [message.to])
    queued.refresh_from_db()
    assert queued.status == Recipient.Status.SENT
    lille = User.objects.get(email="lille@maison-lumiere.test")
    lyon = User.objects.get(email="lyon@maison-lumiere.test")
    assert outbox_for_user(lille).filter(recipient__contains=newcomer.email).exists()
    assert not outbox_for_user(lyon).filter(recipient__contains=newcomer.email).exists()
    assert JourneyRun.objects.exclude(problem="").count() == 0
    # Days later the engine moves those who waited (no message twice).
    later = now + dt.timedelta(days=15)
    engine.advance_all(now=later)
    assert not Enrollment.objects.filter(status=W.WAITING, wake_at__lte=later).exists()
    assert not (
        Recipient.objects.filter(campaign__kind=Campaign.Kind.JOURNEY)
        .values("campaign", "contact", "occurrence")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .exists()
    )
