"""HQ sets the model's thresholds and schedule and runs it from the settings page (issue 20):
validation, who may, one run at a time, the thresholds a run really uses, the schedule, the
audit trail and what the page says."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from enseigne.contacts.models import Contact
from enseigne.contacts.records import record_of
from enseigne.identity import batch, services
from enseigne.identity.batch import execute_run, match_settings, network_records
from enseigne.identity.linking import link_new_records, policy_for
from enseigne.identity.models import (
    IdentityPolicy,
    LinkMethod,
    MatchCandidate,
    ModelRun,
    RecordLink,
)
from enseigne.identity.probabilistic import match
from enseigne.identity.tests.test_probabilistic import network as generated_people
from enseigne.network import services as network
from enseigne.network.capabilities import Capability
from enseigne.network.models import AuditEvent
from tests.factories import PASSWORD, ContactFactory

pytestmark = pytest.mark.django_db

SETTINGS_URL = "/hq/people/settings/"
MATCHING_URL = "/hq/people/settings/matching/"
RUN_URL = "/hq/people/settings/run/"
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


@pytest.fixture
def people(world):
    """About 360 records of 300 people in Lyon and Lille, one in five with a second record
    (a typo, no birthday; often no shared e-mail or phone), linked as the writers do."""
    units = {"lyon": world.unit_a, "lille": world.unit_b}
    rows = generated_people(300, seed=7)
    made = Contact.objects.bulk_create(
        [
            Contact(
                unit=units[r["unit_id"]],
                unit_path=units[r["unit_id"]].path,
                first_name=r["first_name"],
                last_name=r["last_name"],
                birthday=r["birthday"],
                email=r["email"],
                phone=r["phone"] or (None if r["email"] else f"+3378{i:07d}"),
                attributes={"postcode": r["postcode"], "city": r["city"]},
            )
            for i, r in enumerate(rows)
        ]
    )
    link_new_records([record_of(c) for c in made])
    return made


def login(client, user):
    assert client.login(username=user.email, password=PASSWORD)


def policy_of(world) -> IdentityPolicy:
    return policy_for(world.root.path)


def set_policy(world, **values) -> IdentityPolicy:
    policy, _ = IdentityPolicy.objects.update_or_create(network=world.root.network, defaults=values)
    return policy


def matching(**values):
    data = {
        "match_threshold": "0.5",
        "review_threshold": "0.05",
        "model_schedule": "off",
        "model_weekday": "6",
    }
    data.update(values)
    return data


# --------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    ("match_threshold", "review_threshold", "field", "words"),
    [
        ("0.3", "0.5", "review_threshold", "must be below the merge threshold"),
        ("0.5", "0.5", "review_threshold", "must be below the merge threshold"),
        ("0.2", "0.9", "review_threshold", "must be below the merge threshold"),
        ("-0.1", "0.05", "match_threshold", "above 0 and at most 1"),
        ("0", "0.05", "match_threshold", "above 0 and at most 1"),
        ("1.5", "0.05", "match_threshold", "above 0 and at most 1"),
        ("50", "5", "match_threshold", "above 0 and at most 1"),
        ("0.5", "-0.01", "review_threshold", "above 0 and below 1"),
        ("0.5", "0", "review_threshold", "above 0 and below 1"),
        ("1", "1", "review_threshold", "above 0 and below 1"),
        ("abc", "0.05", "match_threshold", "write a number between 0 and 1"),
        ("0.5", "un peu", "review_threshold", "write a number between 0 and 1"),
        ("", "0.05", "match_threshold", "write a number between 0 and 1"),
        ("0.5", "", "review_threshold", "write a number between 0 and 1"),
        ("   ", "0.05", "match_threshold", "write a number between 0 and 1"),
        ("nan", "0.05", "match_threshold", "write a number between 0 and 1"),
        ("inf", "0.05", "match_threshold", "write a number between 0 and 1"),
        ("0.5", "1e-400", "review_threshold", "above 0 and below 1"),
        ("50%", "0.05", "match_threshold", "write a number between 0 and 1"),
    ],
)
def test_wrong_thresholds_are_refused_naming_the_field(
    client, world, match_threshold, review_threshold, field, words
):
    login(client, world.hq_admin)
    response = client.post(
        MATCHING_URL,
        matching(match_threshold=match_threshold, review_threshold=review_threshold),
    )
    assert response.status_code == 200
    form = response.context["matching"]
    assert list(form.errors) == [field]
    assert words in form.errors[field][0]
    assert words in response.content.decode()
    policy = policy_of(world)
    assert (policy.match_threshold, policy.review_threshold) == (0.5, 0.05)
    assert not IdentityPolicy.objects.exists()  # nothing saved, not even a default row
    assert not AuditEvent.objects.filter(action="identity.matching_settings").exists()
    # The service says the same to any caller (the command line, the API to come).
    with pytest.raises(ValidationError) as caught:
        services.matching_settings_update(
            actor=world.hq_admin,
            match_threshold=match_threshold,
            review_threshold=review_threshold,
            model_schedule="off",
        )
    assert list(caught.value.message_dict) == [field]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"model_schedule": "hourly"}, "model_schedule"),
        ({"model_schedule": ""}, "model_schedule"),
        ({"model_schedule": "weekly", "model_weekday": "7"}, "model_weekday"),
        ({"model_schedule": "weekly", "model_weekday": "-1"}, "model_weekday"),
        ({"model_schedule": "weekly", "model_weekday": "dimanche"}, "model_weekday"),
    ],
)
def test_a_wrong_schedule_is_refused(client, world, values, field):
    login(client, world.hq_admin)
    response = client.post(MATCHING_URL, matching(**values))
    assert response.status_code == 200
    assert field in response.context["matching"].errors
    assert not IdentityPolicy.objects.exists()


@pytest.mark.parametrize(
    ("match_threshold", "review_threshold", "expected"),
    [
        ("0.7", "0.1", (0.7, 0.1)),
        ("0,7", "0,1", (0.7, 0.1)),  # as a French marketer writes it
        (" 1 ", "0.99", (1.0, 0.99)),
        ("0.06", "0.05", (0.06, 0.05)),
    ],
)
def test_right_thresholds_are_saved_and_audited(
    client, world, match_threshold, review_threshold, expected
):
    login(client, world.hq_admin)
    response = client.post(
        MATCHING_URL,
        matching(
            match_threshold=match_threshold,
            review_threshold=review_threshold,
            model_schedule="weekly",
            model_weekday="2",
        ),
    )
    assert response.status_code == 302
    policy = IdentityPolicy.objects.get()
    assert (policy.match_threshold, policy.review_threshold) == expected
    assert (policy.model_schedule, policy.model_weekday) == ("weekly", 2)
    event = AuditEvent.objects.get(action="identity.matching_settings")
    assert event.actor == world.hq_admin and event.node_path == world.root.path
    assert event.changes == {
        "before": {
            "match_threshold": 0.5,
            "review_threshold": 0.05,
            "model_schedule": "off",
            "model_weekday": 6,
        },
        "after": {
            "match_threshold": expected[0],
            "review_threshold": expected[1],
            "model_schedule": "weekly",
            "model_weekday": 2,
        },
    }
    page = client.get(SETTINGS_URL).content.decode()
    history = page[page.index('id="matching-history"') :]
    assert f"{world.hq_admin.email} changed the matching settings:" in history
    assert f"Merge automatically from 0.5 → {expected[0]}" in history
    assert "Run the matching Only when HQ asks (the button below) → Once a week" in history
    assert "Day of the weekly run Sunday → Wednesday" in history
    client.cookies["django_language"] = "fr"
    french = client.get(SETTINGS_URL).content.decode()
    assert "a modifié les réglages du rapprochement" in french
    assert "Jour du rapprochement hebdomadaire Dimanche → Mercredi" in french
    del client.cookies["django_language"]
    # The same values again change nothing and write no second entry.
    client.post(
        MATCHING_URL,
        matching(
            match_threshold=match_threshold,
            review_threshold=review_threshold,
            model_schedule="weekly",
            model_weekday="2",
        ),
    )
    assert AuditEvent.objects.filter(action="identity.matching_settings").count() == 1


def test_the_database_refuses_thresholds_the_service_would(world):
    from django.db import IntegrityError, transaction

    for match_threshold, review_threshold in ((0.5, 0.5), (1.2, 0.1), (0.5, 0.0)):
        with pytest.raises(IntegrityError), transaction.atomic():
            IdentityPolicy.objects.create(
                network=world.root.network,
                match_threshold=match_threshold,
                review_threshold=review_threshold,
            )


def test_the_page_explains_the_thresholds_in_english_and_french(client, world):
    login(client, world.hq_admin)
    english = client.get(SETTINGS_URL).content.decode()
    assert "Higher: fewer automatic merges, more pairs in the review queue" in english
    assert "Run the matching now" in english
    assert "The matching has never run for this network." in english
    client.cookies["django_language"] = "fr"
    french = client.get(SETTINGS_URL).content.decode()
    assert "Lancer le rapprochement maintenant" in french
    assert "moins de fusions automatiques" in french
    assert "Run the matching now" not in french


# --------------------------------------------------------------------------------------
# Who may


@pytest.fixture
def hq_without_identity(world):
    """An HQ role that reads analytics but does not manage the customer base."""
    role = network.role_create(
        actor=world.hq_admin,
        key="hq_analyst",
        name="HQ analyst",
        level="hq",
        capabilities=[Capability.VIEW_NETWORK_ANALYTICS.value],
    )
    user = network.user_create(actor=None, email="analyst@example.com", password=PASSWORD)
    network.membership_grant(actor=world.hq_admin, user=user, node=world.root, role=role)
    return user


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("region_manager", 404),
        ("manager_a", 404),
        ("staff_a", 404),
        ("manager_b", 404),
        ("hq_without_identity", 403),
    ],
)
def test_only_hq_with_the_capability_reaches_settings_and_runs(
    client, world, hq_without_identity, persona, status
):
    user = hq_without_identity if persona == "hq_without_identity" else world.persona(persona)
    login(client, user)
    before = AuditEvent.objects.count()
    assert client.get(SETTINGS_URL).status_code == status
    assert client.post(SETTINGS_URL, {"mode": "separate_controllers"}).status_code == status
    assert client.post(MATCHING_URL, matching(match_threshold="0.9")).status_code == status
    assert client.post(RUN_URL).status_code == status
    assert not ModelRun.objects.exists()
    assert not IdentityPolicy.objects.exists()
    assert AuditEvent.objects.count() == before
    with pytest.raises(PermissionDenied):
        services.model_run_request(actor=user)
    # Naming the network and the system's trigger gives a person nothing more.
    with pytest.raises(PermissionDenied):
        services.model_run_request(actor=user, trigger="schedule", network=world.root.network)
    assert not ModelRun.objects.exists()


def test_the_run_needs_a_post_with_its_csrf_token(world):
    client = Client(enforce_csrf_checks=True)
    login(client, world.hq_admin)
    assert client.get(RUN_URL).status_code == 405
    assert client.post(RUN_URL).status_code == 403
    assert client.post(MATCHING_URL, matching(match_threshold="0.9")).status_code == 403
    assert not ModelRun.objects.exists() and not IdentityPolicy.objects.exists()
    page = client.get(SETTINGS_URL).content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    assert client.post(RUN_URL, {"csrfmiddlewaretoken": token}).status_code == 302
    assert ModelRun.objects.count() == 1


# --------------------------------------------------------------------------------------
# One run at a time


def test_a_second_run_is_refused_while_one_is_queued_or_running(client, world):
    login(client, world.hq_admin)
    # The test's transaction never commits: the first run stays queued, as in a busy worker.
    client.post(RUN_URL)
    run = ModelRun.objects.get()
    assert (run.status, run.trigger, run.requested_by) == ("queued", "hand", world.hq_admin)
    page = client.get(SETTINGS_URL).content.decode()
    assert ' disabled id="run-now"' in page and "A run is under way" in page
    response = client.post(RUN_URL, follow=True)
    assert "already under way" in response.content.decode()
    assert ModelRun.objects.count() == 1
    ModelRun.objects.filter(pk=run.pk).update(status="running", started_at=run.queued_at)
    with pytest.raises(ValidationError, match="already under way"):
        services.model_run_request(actor=world.hq_marketer)
    # Neither the schedule nor the command gets in.
    assert services.scheduled_runs_start() == []
    assert ModelRun.objects.count() == 1
    assert (
        AuditEvent.objects.filter(action="identity.model_run_requested").count() == 1
    )  # refusals change nothing


def test_a_finished_or_failed_run_lets_the_next_one_start(world):
    first = services.model_run_request(actor=world.hq_admin)
    for status in ("finished", "failed"):
        ModelRun.objects.filter(pk=first.pk).update(status=status)
        second = services.model_run_request(actor=world.hq_admin)
        ModelRun.objects.filter(pk=second.pk).update(status="finished")
    assert ModelRun.objects.count() == 3


def test_a_lost_run_stops_blocking_after_hours_and_says_why(client, world, time_machine):
    time_machine.move_to(dt.datetime(2026, 12, 2, 10, 0, tzinfo=PARIS), tick=False)
    lost = services.model_run_request(actor=world.hq_admin)
    ModelRun.objects.filter(pk=lost.pk).update(status="running", started_at=lost.queued_at)
    login(client, world.hq_admin)
    time_machine.move_to(dt.datetime(2026, 12, 2, 15, 0, tzinfo=PARIS), tick=False)
    with pytest.raises(ValidationError):
        services.model_run_request(actor=world.hq_admin)
    assert ' disabled id="run-now"' in client.get(SETTINGS_URL).content.decode()
    time_machine.move_to(dt.datetime(2026, 12, 2, 16, 30, tzinfo=PARIS), tick=False)
    # Lost: the button is back (the page reads, it never writes), and the request expires it.
    assert ' disabled id="run-now"' not in client.get(SETTINGS_URL).content.decode()
    services.model_run_request(actor=world.hq_admin)
    lost.refresh_from_db()
    assert (lost.status, lost.failure) == ("failed", "lost")
    assert AuditEvent.objects.filter(action="identity.model_run_failed").count() == 1
    ModelRun.objects.exclude(pk=lost.pk).delete()
    page = client.get(SETTINGS_URL).content.decode()
    assert "The run stopped without finishing" in page


def test_a_run_is_executed_once_even_if_its_task_comes_twice(world, people):
    run = services.model_run_request(actor=world.hq_admin)
    assert execute_run(run.pk).status == "finished"
    assert execute_run(run.pk) is None
    assert AuditEvent.objects.filter(action="identity.model_run").count() == 1


# --------------------------------------------------------------------------------------
# The run: from the button to the figures, with the policy's thresholds


def test_the_button_runs_the_model_in_the_worker_and_the_page_shows_its_figures(
    client, world, people, django_capture_on_commit_callbacks
):
    set_policy(world, match_threshold=0.6, review_threshold=0.1)
    login(client, world.hq_marketer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(RUN_URL, follow=True)
    assert "The matching is queued" in response.content.decode()
    run = ModelRun.objects.get()
    assert run.status == "finished", run.failure_kind
    assert (run.match_threshold, run.review_threshold) == (0.6, 0.1)
    assert run.records == len(people) and run.started_at <= run.finished_at
    assert run.merged == RecordLink.objects.filter(method=LinkMethod.MODEL).count() > 0
    open_model = MatchCandidate.objects.filter(reason=MatchCandidate.Reason.MODEL)
    assert run.to_review == open_model.count()
    assert run.refused == MatchCandidate.objects.filter(status="refused").count()
    assert all(link.score >= 0.6 for link in RecordLink.objects.filter(method=LinkMethod.MODEL))
    assert all(c.score is None or 0.1 <= c.score < 0.6 for c in open_model)
    page = client.get(SETTINGS_URL).content.decode()
    figures = page[page.index('id="run-figures"') :]
    assert f"<th>Records read</th><td>{run.records}</td>" in figures
    assert f"<th>Records merged into another person</th><td>{run.merged}</td>" in figures
    assert f"<th>Pairs sent to the review queue</th><td>{run.to_review}</td>" in figures
    assert "Finished" in page and world.hq_marketer.email in page
    # Audited: asked by whom, and what it did with which thresholds.
    asked = AuditEvent.objects.get(action="identity.model_run_requested")
    done = AuditEvent.objects.get(action="identity.model_run")
    assert asked.actor == world.hq_marketer and asked.changes["trigger"] == "hand"
    assert done.actor == world.hq_marketer
    assert done.changes["merged"] == run.merged and done.changes["queued"] == run.to_review
    assert (done.changes["match_threshold"], done.changes["review_threshold"]) == (0.6, 0.1)
    history = page[page.index('id="matching-history"') :]
    assert f"{world.hq_marketer.email} asked for a matching run." in history
    assert (
        f"Matching run finished — records read: {run.records}, merged: {run.merged}, "
        f"pairs to review: {run.to_review}, refused: {run.refused}, alerts: {run.alerts}."
    ) in history
    client.cookies["django_language"] = "fr"
    french = client.get(SETTINGS_URL).content.decode()
    assert f"fiches lues : {run.records}" in french


def test_a_failed_run_says_so_in_plain_words(client, world, people, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("could not parse 'Dupont Marie' as a date")

    monkeypatch.setattr(batch, "match", broken)
    before = dict(RecordLink.objects.values_list("contact_id", "person_id"))
    run = services.model_run_request(actor=world.hq_admin)
    ended = execute_run(run.pk)
    assert (ended.status, ended.failure, ended.failure_kind) == (
        "failed",
        "unexpected",
        "RuntimeError",
    )
    assert dict(RecordLink.objects.values_list("contact_id", "person_id")) == before
    failed = AuditEvent.objects.get(action="identity.model_run_failed")
    assert failed.changes == {"run": run.pk, "trigger": "hand", "error": "RuntimeError"}
    login(client, world.hq_admin)
    page = client.get(SETTINGS_URL).content.decode()
    failure = page[page.index('id="run-failure"') :]
    assert "The matching stopped on an unexpected error; nothing was changed." in failure
    for technical in ("Traceback", "RuntimeError", "Dupont"):
        assert technical not in page
    assert "Matching run failed." in page
    # The next run is allowed.
    services.model_run_request(actor=world.hq_admin)


def test_an_interrupted_run_is_marked_failed_and_the_interruption_goes_on(
    world, people, monkeypatch
):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "match", interrupted)
    run = services.model_run_request(actor=None, trigger="command", network=world.root.network)
    with pytest.raises(KeyboardInterrupt):
        execute_run(run.pk)
    run.refresh_from_db()
    assert (run.status, run.failure_kind) == ("failed", "KeyboardInterrupt")
    services.model_run_request(actor=world.hq_admin)  # nothing left blocking


@pytest.mark.parametrize(
    ("exc", "failure"),
    [
        (MemoryError(), "memory"),
        (type("OutOfMemoryException", (Exception,), {})("x"), "memory"),
        (__import__("django.db").db.OperationalError("x"), "database"),
        (ValueError("x"), "unexpected"),
    ],
)
def test_failures_are_told_by_kind(exc, failure):
    assert batch.failure_of(exc) == failure


@pytest.fixture
def look_alikes(world, people):
    """Two records the model hesitates on: same first name and postcode, one surname the
    start of the other, one birthday missing, two different e-mails."""
    sophie = ContactFactory(
        unit=world.unit_a,
        first_name="Sophie",
        last_name="Petit",
        birthday=dt.date(1975, 1, 1),
        email="sophie.p@free.fr",
        phone=None,
        attributes={"postcode": "69003", "city": "Lyon"},
    )
    other = ContactFactory(
        unit=world.unit_b,
        first_name="Sophie",
        last_name="Petitjean",
        birthday=None,
        email="spj@sfr.fr",
        phone=None,
        attributes={"postcode": "69003", "city": "Lyon"},
    )
    return sorted((sophie.pk, other.pk))


def _score(root, left: int, right: int) -> float:
    """The model's probability for the pair, whatever the thresholds (they only decide)."""
    pairs = match(network_records(root), settings=match_settings(IdentityPolicy())).pairs
    ids = {str(left), str(right)}
    row = pairs[pairs["left_id"].isin(ids) & pairs["right_id"].isin(ids)]
    assert len(row) == 1, "the model does not score the look-alikes"
    return float(row["match_probability"].iloc[0])


def _run(world) -> ModelRun:
    run = services.model_run_request(actor=world.hq_admin)
    ended = execute_run(run.pk)
    assert ended.status == "finished", ended.failure_kind
    return ended


def test_the_run_uses_the_policys_thresholds(world, look_alikes):
    left, right = look_alikes
    score = _score(world.root, left, right)
    assert 0.1 < score < 0.9, score

    def person(contact_id):
        return RecordLink.objects.get(contact_id=contact_id).person_id

    def candidate():
        return MatchCandidate.objects.filter(left_id=left, right_id=right).first()

    assert person(left) != person(right)
    # The pair scores below the review band: two people, nobody asked.
    set_policy(world, match_threshold=0.95, review_threshold=(score + 0.95) / 2)
    run = _run(world)
    assert (run.match_threshold, run.review_threshold) == (0.95, (score + 0.95) / 2)
    assert person(left) != person(right) and candidate() is None
    # Inside the review band: the pair waits in the review queue, with its score.
    set_policy(world, match_threshold=(score + 1) / 2, review_threshold=score / 2)
    _run(world)
    assert person(left) != person(right)
    assert candidate().status == "open" and abs(candidate().score - score) < 1e-6
    assert candidate().reason == MatchCandidate.Reason.MODEL
    # Above the merge threshold: one person, moved by the model with the pair's score.
    set_policy(world, match_threshold=score / 2, review_threshold=score / 4)
    run = _run(world)
    assert run.match_threshold == score / 2
    assert person(left) == person(right)
    moved = RecordLink.objects.filter(contact_id__in=look_alikes, method=LinkMethod.MODEL)
    assert [abs(link.score - score) < 1e-6 for link in moved] == [True]


def test_the_command_runs_with_the_policy_and_is_refused_while_a_run_is_under_way(
    world, people, capsys
):
    from django.core.management import CommandError, call_command

    set_policy(world, match_threshold=0.9, review_threshold=0.2)
    call_command("match_people")
    out = capsys.readouterr().out
    run = ModelRun.objects.get()
    assert (run.trigger, run.status, run.requested_by) == ("command", "finished", None)
    assert (run.match_threshold, run.review_threshold) == (0.9, 0.2)
    assert f"{run.records} records, {run.merged} moved" in out and "merge from 0.9" in out
    services.model_run_request(actor=world.hq_admin)
    with pytest.raises(CommandError, match="a run is under way"):
        call_command("match_people", "--network", world.root.code)
    assert ModelRun.objects.count() == 2


# --------------------------------------------------------------------------------------
# The schedule


def _network(code: str, schedule: str, weekday: int = 6, time_zone: str = "Europe/Paris"):
    root = network.network_create(
        actor=None,
        name=code,
        code=code,
        legal_name=code,
        sending_domain=f"{code}.example.com",
        time_zone=time_zone,
    )
    IdentityPolicy.objects.create(
        network=root.network, model_schedule=schedule, model_weekday=weekday
    )
    return root.network


@pytest.fixture
def networks(world):
    """Networks on every kind of schedule (the world's own network: no policy, so off)."""
    return {
        "off": _network("off", "off"),
        "nightly": _network("nightly", "nightly"),
        "wednesday": _network("wednesday", "weekly", weekday=2),
        "sunday": _network("sunday", "weekly"),
        "montreal": _network("montreal", "nightly", time_zone="America/Montreal"),
        "ran": _network("ran", "nightly"),
        "running": _network("running", "nightly"),
    }


def _due(now) -> set[str]:
    return {policy.network.node.code for policy in services.policies_due(now)}


def test_the_schedule_picks_the_networks_it_should(networks, time_machine):
    wednesday_4am = dt.datetime(2026, 12, 2, 4, 7, tzinfo=PARIS)
    assert wednesday_4am.weekday() == 2
    # "ran" already ran tonight (by hand at 4:01); "running" has one under way since 3:50.
    ModelRun.objects.create(
        network=networks["ran"],
        trigger="hand",
        status="finished",
        queued_at=wednesday_4am - dt.timedelta(minutes=6),
        finished_at=wednesday_4am - dt.timedelta(minutes=2),
    )
    ModelRun.objects.create(
        network=networks["running"],
        trigger="hand",
        status="running",
        queued_at=wednesday_4am - dt.timedelta(minutes=17),
        started_at=wednesday_4am - dt.timedelta(minutes=17),
    )
    assert _due(wednesday_4am) == {"nightly", "wednesday"}
    assert _due(wednesday_4am.replace(hour=6, minute=59)) == {"nightly", "wednesday"}
    # Outside the quiet window nothing starts, even a missed run.
    assert _due(wednesday_4am.replace(hour=3, minute=59)) == set()
    assert _due(wednesday_4am.replace(hour=7, minute=0)) == set()
    assert _due(wednesday_4am.replace(hour=14)) == set()
    # Montreal's 4 a.m. is Paris' 10 a.m.
    assert _due(wednesday_4am.replace(hour=10)) == {"montreal"}
    # Sunday: the weekly-by-default network, not Wednesday's.
    sunday = wednesday_4am + dt.timedelta(days=4)
    assert sunday.weekday() == 6
    # "running" still looks under way to a read; the hourly check first expires a run lost
    # for hours (ModelRun.EXPIRES_AFTER), so its network gets its Sunday run.
    assert _due(sunday) == {"nightly", "sunday", "ran"}
    time_machine.move_to(sunday, tick=False)
    started = services.scheduled_runs_start()
    assert {run.network.node.code for run in started} == {"nightly", "sunday", "ran", "running"}
    assert ModelRun.objects.get(network=networks["running"], status="failed").failure == "lost"


def test_the_hourly_check_queues_each_due_run_once(
    networks, django_capture_on_commit_callbacks, time_machine
):
    wednesday_4am = dt.datetime(2026, 12, 2, 4, 7, tzinfo=PARIS)
    time_machine.move_to(wednesday_4am, tick=False)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        started = services.scheduled_runs_start()
    assert {run.network.node.code for run in started} == {
        "nightly",
        "wednesday",
        "ran",
        "running",
    }
    assert len(callbacks) == 4  # one task each, after commit
    assert all(run.trigger == "schedule" and run.requested_by is None for run in started)
    asked = AuditEvent.objects.filter(action="identity.model_run_requested")
    assert sorted(e.changes["trigger"] for e in asked) == ["schedule"] * 4
    # The next hour's check finds them queued (or run): nothing new.
    time_machine.move_to(wednesday_4am.replace(hour=5), tick=False)
    assert services.scheduled_runs_start() == []
    assert ModelRun.objects.count() == 4


def test_the_hourly_task_is_wired_to_the_schedule(networks, time_machine):
    from enseigne.identity.tasks import identity_scheduled_runs

    time_machine.move_to(dt.datetime(2026, 12, 6, 4, 7, tzinfo=PARIS), tick=False)
    identity_scheduled_runs.call_local()
    assert {r.network.node.code for r in ModelRun.objects.all()} == {
        "nightly",
        "sunday",
        "ran",
        "running",
    }
