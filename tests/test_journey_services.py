"""Journeys' writes (issue 22): HQ publishes checked versions, moves people or not, makes a
journey mandatory; stores activate, pause and stop their runs within what they may."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from enseigne.brand.models import Template
from enseigne.journeys import services
from enseigne.journeys.models import Enrollment, JourneyRun
from enseigne.network.models import AuditEvent, CapabilityRule
from tests.campaign_helpers import contacts, email_template, sms_template

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()


def flow(hello: str, *, kind: str = "send_email", extra: dict | None = None) -> dict:
    steps = {
        "hello": {"kind": kind, "template": hello, "next": "pause"},
        "pause": {"kind": "wait", "days": 3, "next": "end"},
        "end": {"kind": "exit"},
    }
    steps.update(extra or {})
    return {"trigger": {"kind": "consent", "channel": "email"}, "start": "hello", "steps": steps}


@pytest.fixture
def design(world):
    template = services.journey_template_create(
        actor=world.hq_admin, owner=world.root, name="Bienvenue", holdout_percent=10
    )
    hello = email_template(world, "Bienvenue")
    return template, hello


def test_publish_refuses_a_bad_flow_naming_the_step(world, design):
    template, hello = design
    bad = flow(
        str(hello.public_id), extra={"pause": {"kind": "wait", "days": 3, "next": "nowhere"}}
    )
    with pytest.raises(ValidationError) as exc:
        services.journey_publish(actor=world.hq_admin, template=template, flow=bad)
    assert exc.value.messages == ["Step “pause”: it leads to “nowhere”, which is not a step."]
    template.refresh_from_db()
    assert template.live_version is None


def test_publish_checks_each_send_steps_template(world, design):
    template, hello = design
    sms = sms_template(world, "Flash")
    archived = email_template(world, "Old")
    Template.objects.filter(pk=archived.pk).update(archived=True)
    local = email_template(world, "Lyon only")
    Template.objects.filter(pk=local.pk).update(shared_path=world.unit_a.path)
    raw = flow(
        str(sms.public_id),
        extra={
            "pause": {"kind": "wait", "days": 3, "next": "a"},
            "a": {"kind": "send_email", "template": str(archived.public_id), "next": "b"},
            "b": {"kind": "send_email", "template": str(local.public_id), "next": "c"},
            "c": {
                "kind": "send_email",
                "template": "5f0e7e4c-0000-4000-8000-000000000000",
                "next": "end",
            },
        },
    )
    with pytest.raises(ValidationError) as exc:
        services.journey_publish(actor=world.hq_admin, template=template, flow=raw)
    assert exc.value.messages == [
        "Step “hello”: its template “Flash” is for SMS.",
        "Step “a”: its template “Old” is archived or not published.",
        "Step “b”: its template “Lyon only” is not shared with every store of the journey.",
        "Step “c”: its template does not exist.",
    ]


def test_only_hq_designs_and_publishes(world, design):
    template, hello = design
    for user in (world.region_manager, world.manager_a, world.staff_a):
        with pytest.raises(PermissionDenied):
            services.journey_publish(actor=user, template=template, flow=flow(str(hello.public_id)))
        with pytest.raises(PermissionDenied):
            services.journey_template_create(actor=user, owner=world.root, name="X")
    assert template.versions.count() == 0


def test_a_store_designs_its_own_only_when_allowed(world):
    hello = email_template(world, "Bienvenue")
    with pytest.raises(PermissionDenied):
        services.journey_template_create(actor=world.manager_a, owner=world.unit_a, name="Mien")
    CapabilityRule.objects.create(
        node=world.unit_a, capability="create_free_campaigns", effect=CapabilityRule.Effect.ALLOW
    )
    world.manager_a = type(world.manager_a).objects.get(pk=world.manager_a.pk)
    own = services.journey_template_create(actor=world.manager_a, owner=world.unit_a, name="Mien")
    version = services.journey_publish(
        actor=world.manager_a, template=own, flow=flow(str(hello.public_id))
    )
    assert (own.owner, version.number) == (world.unit_a, 1)
    run = services.journey_activate(
        actor=world.manager_a, template=own, unit=world.unit_a, starts_on=TODAY
    )
    assert run.version == version
    with pytest.raises(ValidationError):  # not offered to another store
        services.journey_activate(
            actor=world.hq_admin, template=own, unit=world.unit_b, starts_on=TODAY
        )


def test_a_new_version_moves_runs_and_people_only_when_chosen(world, design):
    template, hello = design
    v1 = services.journey_publish(
        actor=world.hq_admin, template=template, flow=flow(str(hello.public_id))
    )
    run = services.journey_activate(
        actor=world.manager_a, template=template, unit=world.unit_a, starts_on=TODAY
    )
    people = contacts(world.unit_a, 2)
    now = timezone.now()
    kept, moved = (
        Enrollment.objects.create(
            run=run,
            version=v1,
            contact=c,
            unit_path=run.unit_path,
            step=step,
            wake_at=now,
            entered_at=now,
            updated_at=now,
        )
        for c, step in zip(people, ("end", "pause"), strict=True)
    )
    # v2 has no step "end": who waits there finishes version 1.
    # Not moving people: the runs follow version 2, everyone in progress finishes version 1.
    v2 = services.journey_publish(
        actor=world.hq_admin, template=template, flow=flow(str(hello.public_id))
    )
    run.refresh_from_db()
    assert run.version == v2
    assert {e.pk: e.version_id for e in Enrollment.objects.all()} == {
        kept.pk: v1.pk,
        moved.pk: v1.pk,
    }
    # Moving people to a version without the step "end": who waits there stays.
    v3_flow = flow(str(hello.public_id), extra={"pause": {"kind": "wait", "days": 1}})
    del v3_flow["steps"]["end"]
    v3 = services.journey_publish(
        actor=world.hq_admin, template=template, flow=v3_flow, move_people=True
    )
    template.refresh_from_db()
    run.refresh_from_db()
    assert (template.live_version, run.version, v3.number) == (v3, v3, 3)
    assert {e.pk: e.version_id for e in Enrollment.objects.all()} == {
        kept.pk: v1.pk,
        moved.pk: v3.pk,
    }


def test_mandatory_for_a_region_creates_runs_a_store_cannot_stop(world, design):
    template, hello = design
    services.journey_publish(
        actor=world.hq_admin, template=template, flow=flow(str(hello.public_id))
    )
    with pytest.raises(PermissionDenied):
        services.journey_make_mandatory(
            actor=world.region_manager, template=template, node=world.region_a
        )
    assert (
        services.journey_make_mandatory(
            actor=world.hq_admin, template=template, node=world.region_a
        )
        == 2
    )
    runs = JourneyRun.objects.filter(template=template)
    assert {(r.unit, r.mandatory, r.status) for r in runs} == {
        (world.unit_a, True, "active"),
        (world.unit_a2, True, "active"),
    }
    run = runs.get(unit=world.unit_a)
    for act in (services.journey_run_stop, services.journey_run_pause):
        with pytest.raises(PermissionDenied):
            act(actor=world.manager_a, run=run)
    run.refresh_from_db()
    assert run.status == "active"
    services.journey_run_stop(actor=world.hq_admin, run=run)
    run.refresh_from_db()
    assert run.status == "stopped"
    assert AuditEvent.objects.filter(action="journey.mandatory").count() == 1


def test_a_store_pauses_resumes_and_stops_its_own_run(world, design):
    template, hello = design
    services.journey_publish(
        actor=world.hq_admin, template=template, flow=flow(str(hello.public_id))
    )
    run = services.journey_activate(
        actor=world.manager_a, template=template, unit=world.unit_a, starts_on=TODAY
    )
    with pytest.raises(PermissionDenied):
        services.journey_activate(
            actor=world.manager_a, template=template, unit=world.unit_b, starts_on=TODAY
        )
    with pytest.raises(PermissionDenied):
        services.journey_run_pause(actor=world.staff_a, run=run)
    services.journey_run_pause(actor=world.manager_a, run=run)
    with pytest.raises(ValidationError):  # twice: nothing to pause
        services.journey_run_pause(actor=world.manager_a, run=run)
    services.journey_run_resume(actor=world.manager_a, run=run)
    person = contacts(world.unit_a, 1)[0]
    now = timezone.now()
    waiting = Enrollment.objects.create(
        run=run,
        version=run.version,
        contact=person,
        unit_path=run.unit_path,
        step="pause",
        wake_at=now + dt.timedelta(days=1),
        entered_at=now,
        updated_at=now,
    )
    assert services.journey_run_stop(actor=world.manager_a, run=run) == 1
    waiting.refresh_from_db()
    assert (waiting.status, waiting.wake_at) == ("stopped", None)


def test_network_pause_is_resumed_only_by_hq(world, design):
    template, hello = design
    services.journey_publish(
        actor=world.hq_admin, template=template, flow=flow(str(hello.public_id))
    )
    run_a = services.journey_activate(
        actor=world.manager_a, template=template, unit=world.unit_a, starts_on=TODAY
    )
    run_b = services.journey_activate(
        actor=world.manager_b, template=template, unit=world.unit_b, starts_on=TODAY
    )
    services.journey_run_pause(actor=world.manager_b, run=run_b)
    assert services.journeys_pause_network(actor=world.hq_admin) == 1
    run_a.refresh_from_db()
    with pytest.raises(PermissionDenied):
        services.journey_run_resume(actor=world.manager_a, run=run_a)
    assert services.journeys_resume_network(actor=world.hq_admin) == 1
    run_a.refresh_from_db()
    run_b.refresh_from_db()
    # The store's own pause stays.
    assert (run_a.status, run_b.status) == ("active", "paused")


def _segment_flow(hello, trigger: dict) -> dict:
    raw = flow(str(hello.public_id))
    raw["trigger"] = trigger
    return raw


def test_publish_checks_a_segment_triggers_rules_and_saved_segment(world, design):
    """A segment trigger is checked at publishing like a condition: its rules must read for
    the author, its saved segment must be shared with the journey's owner (the store's own
    segment is not HQ's to follow), and the refusal names the trigger, not a step."""
    from enseigne.contacts.services import segment_save
    from tests.campaign_helpers import EVERYONE

    template, hello = design
    bad_rules = {"match": "all", "rules": [{"field": "shoe_size", "op": "equals", "value": 4}]}
    store_segment = segment_save(actor=None, owner=world.unit_a, name="Lyon", rules=EVERYONE)
    for trigger in (
        {"kind": "segment", "rules": bad_rules},
        {"kind": "segment", "segment": str(store_segment.public_id)},
        {"kind": "segment", "segment": "5f0e7e4c-0000-4000-8000-000000000000"},
    ):
        with pytest.raises(ValidationError) as exc:
            services.journey_publish(
                actor=world.hq_admin, template=template, flow=_segment_flow(hello, trigger)
            )
        assert exc.value.messages and not exc.value.messages[0].startswith("Step"), trigger
    template.refresh_from_db()
    assert template.live_version is None
    shared = segment_save(actor=None, owner=world.root, name="Réseau", rules=EVERYONE)
    version = services.journey_publish(
        actor=world.hq_admin,
        template=template,
        flow=_segment_flow(hello, {"kind": "segment", "segment": str(shared.public_id)}),
    )
    assert version.number == 1
