"""Launch answers at once: the campaign is *preparing* while the worker freezes its audience,
then it sends. Failures end in a clear state with the reason; a crash leaves it preparing and
the next pass of the scheduler prepares it again; a pause or a cancel meanwhile wins."""

from __future__ import annotations

import datetime as dt
import re
import threading
from unittest import mock

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from enseigne.brand.services import guardrails_update
from enseigne.campaigns import audience, preparation, services
from enseigne.campaigns.models import Campaign, PauseReason, Recipient
from enseigne.delivery import services as sending
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.delivery.pipeline import run_campaign
from enseigne.delivery.slots import take_slot
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.models import AuditEvent
from enseigne.network.tokens import token_create
from tests.campaign_helpers import contacts, email_template, local_campaign

S = Campaign.Status
FREEZE = "enseigne.campaigns.audience.freeze"
COUNT = "enseigne.campaigns.audience.preview"
PREPARE = "enseigne.delivery.services.prepare"


def _never(*args, **kwargs):
    raise AssertionError("the request did the worker's part")


@pytest.fixture(autouse=True)
def _empty_outbox():
    locmem.outbox.clear()
    yield
    locmem.outbox.clear()


def _approved(world, *, unit=None, n=3):
    """A store campaign, submitted and approved by head office, with ``n`` contacts."""
    unit = unit or world.unit_a
    if n:
        contacts(unit, n)
    campaign = local_campaign(world, unit=unit, template=email_template(world))
    services.campaign_submit(actor=world.hq_admin, campaign=campaign)
    campaign.refresh_from_db()
    return campaign


def _bearer(user) -> dict:
    _, key = token_create(user=user)
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def _rows(campaign) -> list[str]:
    return sorted(Recipient.objects.filter(campaign=campaign).values_list("status", flat=True))


# -- the request answers at once ----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("way", ["page", "api"])
def test_launch_answers_preparing_and_the_worker_freezes_then_sends(
    world, client, way, django_capture_on_commit_callbacks
):
    campaign = _approved(world, n=4)
    client.force_login(world.manager_a)
    with (
        mock.patch(FREEZE, side_effect=_never),
        mock.patch(COUNT, side_effect=_never),
        django_capture_on_commit_callbacks() as queued,
    ):
        if way == "page":
            response = client.post(f"/campaigns/{campaign.public_id}/launch/", {"confirm": "yes"})
            assert response.status_code == 302
        else:
            response = client.post(
                f"/api/v1/campaigns/{campaign.public_id}/launch", **_bearer(world.manager_a)
            )
            assert response.status_code == 200
            assert response.json()["status"] == "preparing"
            assert response.json()["progress"]["total"] == 0
    campaign.refresh_from_db()
    assert (campaign.status, campaign.frozen_at, _rows(campaign)) == (S.PREPARING, None, [])
    assert campaign.launched_at is not None
    # Queued, not run: the preparation task, once the launch committed.
    assert len(queued) == 1
    # Nothing leaves before the freeze: a runner finds no campaign to send (and does not
    # finish it for want of pending rows).
    run_campaign(campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == S.PREPARING and locmem.outbox == []
    with django_capture_on_commit_callbacks(execute=True):
        queued[0]()  # the worker: prepare, then the runner it wakes (the queue is immediate)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.recipient_total) == (S.FINISHED, 4)
    assert campaign.frozen_at >= campaign.launched_at
    assert len(locmem.outbox) == 4
    actions = list(
        AuditEvent.objects.filter(target_id=str(campaign.public_id))
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions[-2:] == ["campaign.launch", "campaign.prepared"]


@pytest.mark.django_db
def test_two_launches_of_one_campaign_make_one_preparation(world, client):
    campaign = _approved(world)
    client.force_login(world.manager_a)
    with mock.patch(PREPARE) as prepare:
        client.post(f"/campaigns/{campaign.public_id}/launch/", {"confirm": "yes"})
        again = client.post(
            f"/campaigns/{campaign.public_id}/launch/", {"confirm": "yes"}, follow=True
        )
    assert "This campaign is preparing; it cannot be moved to preparing." in (
        again.content.decode()
    )
    assert prepare.call_count == 1


@pytest.mark.django_db
def test_a_due_scheduled_campaign_is_prepared_by_the_worker(
    world, django_capture_on_commit_callbacks
):
    campaign = _approved(world, n=2)
    moment = timezone.now()
    services.campaign_schedule(
        actor=world.manager_a, campaign=campaign, send_at=moment - dt.timedelta(minutes=1)
    )
    with mock.patch(FREEZE, side_effect=_never), django_capture_on_commit_callbacks() as queued:
        sending.sending_tick(moment)
    campaign.refresh_from_db()
    assert campaign.status == S.PREPARING and campaign.launched_at == moment
    assert len(queued) == 1  # its preparation (no runner: nothing is sending)
    with django_capture_on_commit_callbacks(execute=True):
        queued[0]()
    campaign.refresh_from_db()
    assert campaign.status == S.FINISHED and len(locmem.outbox) == 2


# -- the page follows: preparing, then the progress, then the final state -----------------------


@pytest.mark.django_db
def test_the_progress_shows_preparing_then_sending_then_the_end(world, client):
    campaign = _approved(world, n=2)
    client.force_login(world.manager_a)
    with mock.patch(PREPARE):
        client.post(f"/campaigns/{campaign.public_id}/launch/", {"confirm": "yes"})
    page = client.get(f"/campaigns/{campaign.public_id}/").content.decode()
    assert 'id="preparing"' in page and "Preparing the audience…" in page
    assert re.search(r'id="status">Preparing<', page)
    assert "progress-summary" not in page
    assert "Pause" in page and "Cancel the campaign" in page
    french = client.get(
        f"/campaigns/{campaign.public_id}/", HTTP_ACCEPT_LANGUAGE="fr"
    ).content.decode()
    assert "Préparation de l’audience…" in french or "Préparation de l'audience…" in french
    url = f"/campaigns/{campaign.public_id}/progress/"
    assert f'hx-get="{url}?shown=preparing"' in page
    polled = client.get(f"{url}?shown=preparing", HTTP_HX_REQUEST="true")
    assert "HX-Refresh" not in polled and "Preparing the audience…" in polled.content.decode()

    assert preparation.campaign_prepare(campaign.pk) == S.SENDING
    polled = client.get(f"{url}?shown=preparing", HTTP_HX_REQUEST="true")
    html = polled.content.decode()
    assert "HX-Refresh" not in polled  # same actions: the partial and the header follow
    assert "0 % sent" in html and f'hx-get="{url}?shown=sending"' in html
    assert re.search(r'id="state" hx-swap-oob="true">\s*<span[^>]*id="status">Sending<', html)
    steady = client.get(f"{url}?shown=sending", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-swap-oob" not in steady

    run_campaign(campaign.pk)
    ended = client.get(f"{url}?shown=sending", HTTP_HX_REQUEST="true")
    assert ended["HX-Refresh"] == "true"
    assert "2 sent · 0 pending" in ended.content.decode()


# -- failures end in a clear state, with the reason ---------------------------------------------


@pytest.mark.django_db
def test_the_content_gate_refusing_at_preparation_stops_it_with_the_reasons(world, client):
    guardrails_update(
        actor=world.hq_admin, node=world.root, require_logo=False, require_legal_footer=False
    )
    campaign = _approved(world)
    services.campaign_launch_start(actor=world.manager_a, campaign=campaign)
    # Between the launch and the worker, head office forbids a word of the approved version.
    guardrails_update(
        actor=world.hq_admin,
        node=world.root,
        require_logo=False,
        require_legal_footer=False,
        restricted_patterns=["soldes"],
    )
    assert preparation.campaign_prepare(campaign.pk) == S.PAUSED
    campaign.refresh_from_db()
    assert campaign.pause_reason == PauseReason.CONTENT and campaign.frozen_at is None
    assert _rows(campaign) == []
    client.force_login(world.manager_a)
    poll = client.get(f"/campaigns/{campaign.public_id}/progress/", HTTP_HX_REQUEST="true")
    assert poll["HX-Refresh"] == "true"
    page = client.get(f"/campaigns/{campaign.public_id}/").content.decode()
    assert 'id="content-stop"' in page and "soldes" in page
    # Back to draft: it was never launched (nothing was frozen), so the page shows its audience.
    services.campaign_reopen(actor=world.manager_a, campaign=campaign)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.launched_at) == (S.DRAFT, None)


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "fr"])
def test_an_empty_audience_finishes_at_once_and_says_why(world, client, language):
    campaign = _approved(world, n=0)
    sending.sending_launch(actor=world.manager_a, campaign=campaign)
    assert preparation.campaign_prepare(campaign.pk) == S.FINISHED
    campaign.refresh_from_db()
    assert (campaign.recipient_total, _rows(campaign)) == (0, [])
    assert campaign.finished_at is not None
    client.force_login(world.manager_a)
    page = client.get(
        f"/campaigns/{campaign.public_id}/", HTTP_ACCEPT_LANGUAGE=language
    ).content.decode()
    expected = {"en": "nothing was sent", "fr": "rien n’a été envoyé"}[language]
    assert 'id="empty-audience"' in page and expected in page


@pytest.mark.django_db
def test_an_error_while_freezing_pauses_it_with_the_reason_and_resume_tries_again(world, client):
    campaign = _approved(world, n=2)
    sending.sending_launch(actor=world.manager_a, campaign=campaign)
    with (
        mock.patch(FREEZE, side_effect=RuntimeError("disk full")),
        pytest.raises(RuntimeError),
    ):
        preparation.campaign_prepare(campaign.pk)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason) == (S.PAUSED, PauseReason.PREPARATION)
    assert _rows(campaign) == []
    client.force_login(world.manager_a)
    page = client.get(f"/campaigns/{campaign.public_id}/").content.decode()
    assert "Preparing the audience failed: nothing was sent." in page
    with mock.patch(PREPARE) as prepare:
        sending.sending_resume(actor=world.manager_a, campaign=campaign)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason) == (S.PREPARING, "")
    assert preparation.campaign_prepare(campaign.pk) == S.SENDING
    assert _rows(campaign) == ["pending", "pending"]
    assert prepare.call_count == 1  # the resume queued its preparation


# -- pause and cancel while preparing -----------------------------------------------------------


def _two_connections():
    if connection.vendor != "postgresql":
        pytest.skip("two connections at once: PostgreSQL (CI runs this file on both engines)")


def _in_thread(target) -> threading.Thread:
    def run():
        try:
            with db_scope(ALL):
                target()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("action", "status"),
    [(services.campaign_pause, S.PAUSED), (services.campaign_cancel, S.CANCELLED)],
)
def test_a_pause_or_cancel_during_the_freeze_answers_at_once_and_wins(world, action, status):
    """While the worker counts the audience (its transaction open), the store pauses or
    cancels: the request is not held behind the count, and the freeze is rolled back."""
    _two_connections()
    with db_scope(ALL):
        campaign = _approved(world, n=3)
        services.campaign_launch_start(actor=world.manager_a, campaign=campaign)
    counting, decided = threading.Event(), threading.Event()
    real = audience.freeze
    results = []

    def freeze(*args, **kwargs):
        total = real(*args, **kwargs)
        counting.set()
        assert decided.wait(timeout=20)  # the person acts while the rows are uncommitted
        return total

    with mock.patch(FREEZE, side_effect=freeze):
        worker = _in_thread(lambda: results.append(preparation.campaign_prepare(campaign.pk)))
        assert counting.wait(timeout=20)
        started = timezone.now()
        with db_scope(ALL):
            action(actor=world.manager_a, campaign=Campaign.objects.get(pk=campaign.pk))
        waited = timezone.now() - started
        decided.set()
        worker.join(timeout=60)
    assert waited < dt.timedelta(seconds=5)
    assert results == [status]
    with db_scope(ALL):
        campaign.refresh_from_db()
        assert (campaign.status, campaign.frozen_at, _rows(campaign)) == (status, None, [])
        assert not AuditEvent.objects.filter(action="campaign.prepared").exists()


@pytest.mark.django_db
def test_a_campaign_paused_before_its_freeze_says_so_and_resume_prepares_it(world, client):
    campaign = _approved(world, n=3)
    sending.sending_launch(actor=world.manager_a, campaign=campaign)
    services.campaign_pause(actor=world.manager_a, campaign=campaign)
    client.force_login(world.manager_a)
    page = client.get(f"/campaigns/{campaign.public_id}/").content.decode()
    assert "Paused before its audience was ready: nothing was sent." in page
    services.campaign_resume(actor=world.manager_a, campaign=campaign)
    assert Campaign.objects.get(pk=campaign.pk).status == S.PREPARING
    assert preparation.campaign_prepare(campaign.pk) == S.SENDING
    assert _rows(campaign) == ["pending"] * 3


@pytest.mark.django_db
def test_pause_and_cancel_answer_while_preparing(world, client):
    campaign = _approved(world)
    client.force_login(world.manager_a)
    with mock.patch(PREPARE):
        client.post(f"/campaigns/{campaign.public_id}/launch/", {"confirm": "yes"})
    client.post(f"/campaigns/{campaign.public_id}/pause/")
    assert Campaign.objects.get(pk=campaign.pk).status == S.PAUSED
    assert preparation.campaign_prepare(campaign.pk) == S.PAUSED  # a late task does nothing
    with mock.patch(PREPARE) as prepare:
        client.post(f"/campaigns/{campaign.public_id}/resume/")
    assert Campaign.objects.get(pk=campaign.pk).status == S.PREPARING
    assert prepare.call_count == 1
    client.post(f"/campaigns/{campaign.public_id}/cancel/")
    assert Campaign.objects.get(pk=campaign.pk).status == S.CANCELLED
    assert preparation.campaign_prepare(campaign.pk) == S.CANCELLED
    assert _rows(campaign) == []


# -- a worker that dies while preparing ----------------------------------------------------------


@pytest.mark.django_db
def test_a_campaign_left_preparing_is_prepared_again_when_a_worker_starts(
    world, django_capture_on_commit_callbacks
):
    """A worker killed mid-freeze: its transaction is rolled back, so the campaign is
    preparing with no row; the next worker's start (``look_for_work``: the scheduler's pass)
    prepares it again and it is sent, once."""
    campaign = _approved(world, n=3)
    services.campaign_launch_start(actor=world.manager_a, campaign=campaign)
    with django_capture_on_commit_callbacks(execute=True):
        sending.sending_tick()
    campaign.refresh_from_db()
    assert campaign.status == S.FINISHED and len(locmem.outbox) == 3
    with django_capture_on_commit_callbacks(execute=True):
        sending.sending_tick()  # nothing left to prepare: nothing sent twice
    assert len(locmem.outbox) == 3


@pytest.mark.django_db
def test_a_preparation_under_way_elsewhere_is_not_started_twice(world):
    campaign = _approved(world, n=2)
    services.campaign_launch_start(actor=world.manager_a, campaign=campaign)
    elsewhere = take_slot(campaign.pk, 1)  # the worker that is preparing it holds the slot
    assert elsewhere is not None
    try:
        with mock.patch(FREEZE, side_effect=_never):
            assert sending.sending_prepare(campaign.pk) == ""
    finally:
        elsewhere.release()
    assert sending.sending_prepare(campaign.pk) == S.SENDING


@pytest.mark.django_db(transaction=True)
def test_two_preparations_at_once_freeze_once(world):
    """Two workers prepare the same campaign at the same moment (a task queued twice): one
    ledger, one move to sending, one audit line; the other finds nothing to do."""
    _two_connections()
    with db_scope(ALL):
        campaign = _approved(world, n=20)
        services.campaign_launch_start(actor=world.manager_a, campaign=campaign)
    barrier = threading.Barrier(2)
    results = []
    real = audience.freeze

    def freeze(*args, **kwargs):
        barrier.wait(timeout=10)  # both are counting the audience before either commits
        return real(*args, **kwargs)

    def worker():
        try:
            results.append(preparation.campaign_prepare(campaign.pk))
        finally:
            connections.close_all()

    with mock.patch(FREEZE, side_effect=freeze):
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    with db_scope(ALL):
        assert sorted(results) == [S.SENDING, S.SENDING]
        assert Recipient.objects.filter(campaign=campaign).count() == 20
        assert AuditEvent.objects.filter(action="campaign.prepared").count() == 1


# -- the API's detail: the kept figures, never a count --------------------------------------------


@pytest.mark.django_db
def test_the_api_detail_shows_the_kept_figures_with_their_age(
    world, client, django_capture_on_commit_callbacks
):
    campaign = _approved(world, n=3)
    contacts(world.unit_a, 1, email=False, start=10)
    url = f"/api/v1/campaigns/{campaign.public_id}"
    auth = _bearer(world.manager_a)
    with mock.patch(COUNT, side_effect=_never), django_capture_on_commit_callbacks() as queued:
        first = client.get(url, **auth).json()["audience"]
    assert first == {
        "counted": False,
        "stale": True,
        "computing": True,
        "computed_at": None,
        "age_seconds": None,
        "for_date": None,
        "recipients": None,
        "candidates": None,
        "exclusions": None,
        "pressure_sources": None,
        "cost": None,
        "hq_cost": None,
    }
    assert len(queued) == 1  # the worker was asked
    with django_capture_on_commit_callbacks(execute=True):
        queued[0]()
    with mock.patch(COUNT, side_effect=_never), django_capture_on_commit_callbacks() as again:
        kept = client.get(url, **auth).json()["audience"]
    assert not again  # fresh figures: nothing asked
    assert (kept["counted"], kept["stale"], kept["computing"]) == (True, False, False)
    assert (kept["recipients"], kept["candidates"]) == (3, 4)
    assert kept["exclusions"]["no_consent"] == 1
    assert 0 <= kept["age_seconds"] < 60 and kept["computed_at"] is not None
    # The sending rules change: the kept figures are shown stale while new ones are counted.
    services.sending_policy_update(actor=world.hq_admin, node=world.root, late_start_minutes=90)
    with mock.patch(COUNT, side_effect=_never), django_capture_on_commit_callbacks() as third:
        stale = client.get(url, **auth).json()["audience"]
    assert (stale["counted"], stale["stale"], stale["computing"]) == (True, True, True)
    assert stale["recipients"] == 3 and len(third) == 1


@pytest.mark.django_db
def test_the_api_detail_of_a_launched_campaign_has_no_audience_and_counts_nothing(world, client):
    campaign = _approved(world, n=2)
    services.campaign_launch(actor=world.manager_a, campaign=campaign)
    with mock.patch(COUNT, side_effect=_never), CaptureQueriesContext(connection) as captured:
        body = client.get(
            f"/api/v1/campaigns/{campaign.public_id}", **_bearer(world.manager_a)
        ).json()
    assert body["audience"] is None and body["status"] == "sending"
    assert body["progress"]["pending"] == 2
    assert not [q for q in captured.captured_queries if '"contacts_contact"' in q["sql"]]
