"""A condition on what the person did since entering the journey (issue 22: "condition split
(a segment rule or an event since entry)"): a purchase in the store (never a return, never
before entering, never in another store) or a person's click on the journey's own message."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from enseigne.campaigns.models import Recipient
from enseigne.commerce.models import Order
from enseigne.journeys import engine
from enseigne.journeys import flow as flows
from enseigne.journeys.drawing import draw
from enseigne.journeys.models import Enrollment, EnrollmentStep, JourneySend
from enseigne.tracking import services as tracking
from tests.campaign_helpers import contacts, email_template
from tests.test_journey_engine import NOW, journey

pytestmark = pytest.mark.django_db
W = Enrollment.Status


def since_flow(hello: str, event: str) -> dict:
    return {
        "trigger": {"kind": "consent", "channel": "email"},
        "start": "hello",
        "steps": {
            "hello": {"kind": "send_email", "template": hello, "next": "pause"},
            "pause": {"kind": "wait", "days": 2, "next": "check"},
            "check": {"kind": "condition", "since_entry": event, "yes": "out", "no": "end"},
            "out": {"kind": "exit"},
            "end": {"kind": "exit"},
        },
    }


def order(
    world, contact, *, unit=None, days: float = 1, total: str = "30.00", ref: str = ""
) -> None:
    unit = unit or world.unit_a
    Order.objects.create(
        unit=unit,
        unit_path=unit.path,
        external_id=ref or f"T-{contact.pk}-{days}-{total}-{unit.pk}",
        contact=contact,
        occurred_at=NOW + dt.timedelta(days=days),
        total=Decimal(total),
        source="api",
    )


def answers() -> dict[int, str]:
    rows = EnrollmentStep.objects.filter(step="check").values_list(
        "enrollment__contact_id", "outcome"
    )
    return dict(rows)


def test_a_purchase_since_entering_answers_yes_and_nothing_else_does(world):
    hello = email_template(world, "Bienvenue")
    run = journey(world, since_flow(str(hello.public_id), "purchase"))
    buyer, before, returned, elsewhere, idle = contacts(world.unit_a, 5)
    engine.enroll(run, [c.pk for c in (buyer, before, returned, elsewhere, idle)], now=NOW)
    engine.advance_due(now=NOW)
    order(world, buyer, days=1)
    order(world, before, days=-3)  # before entering: not since
    order(world, returned, days=1, total="-30.00")  # a return is not a purchase
    order(world, elsewhere, days=1, unit=world.unit_a2)  # another store's sale
    engine.advance_due(now=NOW + dt.timedelta(days=2, minutes=1))
    said = answers()
    assert said[buyer.pk] == "yes"
    assert {said[c.pk] for c in (before, returned, elsewhere, idle)} == {"no"}
    assert set(Enrollment.objects.values_list("status", flat=True)) == {W.EXITED}


def test_a_persons_click_on_the_journeys_message_answers_yes_a_machines_does_not(world):
    hello = email_template(world, "Bienvenue")
    run = journey(world, since_flow(str(hello.public_id), "click"))
    person, scanner, idle = contacts(world.unit_a, 3)
    engine.enroll(run, [c.pk for c in (person, scanner, idle)], now=NOW)
    engine.advance_due(now=NOW)
    campaign = JourneySend.objects.get(run=run, step="hello").campaign
    messages = {m.contact_id: m for m in Recipient.objects.filter(campaign=campaign)}
    for contact, machine in ((person, False), (scanner, True)):
        message = messages[contact.pk]
        link = tracking.LinkTarget(
            0, message.campaign_id, message.unit_id, message.unit_path, "https://example.com/"
        )
        tracking.click(message.pk, link, machine=machine)
    engine.advance_due(now=NOW + dt.timedelta(days=2, minutes=1))
    said = answers()
    assert said == {person.pk: "yes", scanner.pk: "no", idle.pk: "no"}


@pytest.mark.parametrize(
    "step",
    [
        {"kind": "condition", "since_entry": "visit", "yes": "end", "no": "end"},
        {"kind": "condition", "since_entry": "", "yes": "end", "no": "end"},
        {"kind": "condition", "since_entry": ["purchase"], "yes": "end", "no": "end"},
        {
            "kind": "condition",
            "since_entry": "purchase",
            "rules": {"match": "all", "rules": [{"field": "is_customer", "op": "is_true"}]},
            "yes": "end",
            "no": "end",
        },
        {"kind": "condition", "since_entry": "purchase", "yes": "end"},
    ],
)
def test_a_bad_since_entry_condition_is_refused_naming_its_step(step):
    raw = {
        "trigger": {"kind": "consent", "channel": "email"},
        "start": "check",
        "steps": {"check": step, "end": {"kind": "exit"}},
    }
    with pytest.raises(ValidationError) as exc:
        flows.parse(raw)
    assert all(m.startswith("Step “check”") for m in exc.value.messages)


def test_the_drawn_flow_says_what_the_condition_looks_at(world):
    hello = email_template(world, "Bienvenue")
    parsed = flows.parse(since_flow(str(hello.public_id), "click"))
    labels = []

    def walk(boxes):
        for box in boxes:
            labels.append(box.label)
            for _label, inner in box.branches:
                walk(inner)

    walk(draw(parsed))
    assert any("clicked one of the journey's messages" in label for label in labels)
