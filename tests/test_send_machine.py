"""A state machine over launch, partial runs, pause, resume, crashes and unsubscribes.

Whatever the history, a campaign is never ``finished`` while a ledger row is pending,
and no row is handed off twice (the fake transport would see it).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from enseigne.campaigns import services
from enseigne.campaigns.models import Campaign, Recipient
from enseigne.delivery.channels.base import Outcome, Result
from enseigne.delivery.channels.locmem.transport import LocmemTransport
from enseigne.delivery.pipeline import Runner
from enseigne.tracking.services import unsubscribe
from tests.campaign_helpers import contacts, launched, local_campaign
from tests.factories import build_world


class Clock:
    def __init__(self):
        self.now = timezone.now()

    def __call__(self):
        return self.now


class SendMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.world = build_world()
        contacts(self.world.unit_a, 12)
        self.campaign = local_campaign(self.world)
        self.clock = Clock()
        self.handed: list[int] = []
        self.launched = False

    def teardown(self):
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    def _transport(self, flaky: bool):
        state = {"n": 0}

        def answer(message):
            state["n"] += 1
            self.handed.append(message.recipient_id)
            if flaky and state["n"] % 3 == 0:
                return Result(Outcome.RETRY, 451)
            return Result(Outcome.SENT, 250)

        return LocmemTransport(answer)

    def _runner(self, flaky=False):
        return Runner(
            self.campaign.pk,
            transport=self._transport(flaky),
            clock=self.clock,
            batch_size=4,
            chunk_size=2,
            lease_seconds=60,
        )

    @precondition(lambda self: not self.launched)
    @rule()
    def launch(self):
        launched(self.world, self.campaign, when=self.clock.now)
        self.launched = True

    @precondition(lambda self: self.launched)
    @rule(batches=st.integers(1, 3), flaky=st.booleans())
    def run_some(self, batches, flaky):
        self._runner(flaky).run(max_batches=batches)

    @precondition(lambda self: self.launched)
    @rule()
    def crash_mid_chunk(self):
        """A worker claims, commits its attempt marks, and dies before handing off."""
        runner = self._runner()
        rows = runner.claim()
        if rows:
            Recipient.objects.filter(pk__in=[r["id"] for r in rows[:2]]).update(
                attempted_at=self.clock.now
            )

    @rule(minutes=st.integers(1, 10))
    def time_passes(self, minutes):
        self.clock.now += dt.timedelta(minutes=minutes)

    @precondition(lambda self: self.launched)
    @rule()
    def pause(self):
        campaign = Campaign.objects.get(pk=self.campaign.pk)
        if campaign.status == Campaign.Status.SENDING:
            services.campaign_pause(actor=self.world.hq_admin, campaign=campaign)

    @precondition(lambda self: self.launched)
    @rule()
    def resume(self):
        campaign = Campaign.objects.get(pk=self.campaign.pk)
        if campaign.status == Campaign.Status.PAUSED:
            services.campaign_resume(actor=self.world.hq_admin, campaign=campaign)

    @precondition(lambda self: self.launched)
    @rule(index=st.integers(0, 11))
    def someone_unsubscribes(self, index):
        rows = list(
            Recipient.objects.filter(campaign=self.campaign)
            .order_by("id")
            .values_list("id", flat=True)
        )
        unsubscribe(recipient_id=rows[index])

    @invariant()
    def never_finished_with_pending_rows(self):
        status = (
            Campaign.objects.filter(pk=self.campaign.pk).values_list("status", flat=True).first()
        )
        if status == Campaign.Status.FINISHED:
            assert not Recipient.objects.filter(campaign=self.campaign, status="pending").exists()

    @invariant()
    def no_row_handed_off_twice_unless_logged_ambiguous(self):
        seen, twice = set(), set()
        for pk in self.handed:
            (twice if pk in seen else seen).add(pk)
        ambiguous = set(
            Recipient.objects.filter(campaign=self.campaign, ambiguous_count__gt=0).values_list(
                "id", flat=True
            )
        )
        retried = set(
            Recipient.objects.filter(campaign=self.campaign, attempts__gt=1).values_list(
                "id", flat=True
            )
        )
        assert twice <= ambiguous | retried


@pytest.mark.slow  # runs the state machine over many histories
@pytest.mark.django_db
def test_no_history_finishes_a_campaign_with_pending_rows():
    run_state_machine_as_test(
        SendMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
