"""The demo's three journeys (issue 22), with the year the real engine would have left.

HQ publishes a welcome, a birthday and a win-back journey (10 % control group each, with
brand templates HQ adds as it would); several stores run them, the welcome one mandatory
for the Sud-Est region. Their year of history is then written as the triggers and the
engine would have written it, read from the demo's own year: the contacts' consents, their
birthdays, their orders.

Why not drive ``triggers.run_triggers`` and ``engine.advance_all`` with a simulated clock:
the demo's year is already in the database when this stage runs, and those passes read the
database as it is *now* — the inactivity trigger's last order, the goal's purchase since
entry and a condition's "bought within 3 days" would all see orders made after the
simulated day (a customer who came back in June would never have lapsed in March).
So this module walks each entrant through the published flow the way ``engine._Batch``
does (the same outcomes at the same steps, the control group drawn by ``engine.draw``, the
waits timed by ``timing.wake_at``), reading the demo's records as they stood at each
moment, and writes the rows in bulk. What is still waiting at the seed's moment is left
waiting with its wake-up time, and the runs' trigger progress is set to the seed's moment,
so the live worker carries on from there (``journeys.tasks.journeys_tick``).

Messages queued before the last day were handed off at the time (the ledger says sent,
with opens and clicks as for the demo's other campaigns, ``results._simulate``); those of
the last day are left pending: the demo's worker hands them off when it starts, and the
Outbox shows them.
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db.models import Min
from django.utils import timezone

from enseigne.analytics import rollups
from enseigne.brand import services as brand
from enseigne.campaigns.gates import Reason
from enseigne.campaigns.models import Campaign, Recipient
from enseigne.campaigns.selectors import policy_for, sms_window
from enseigne.commerce.models import Order
from enseigne.contacts.models import VALID_CONSENT, ConsentEvent, Contact
from enseigne.delivery import events
from enseigne.demo.results import LEDGER_FIELDS, PROFILES, Profile, _links, _simulate
from enseigne.journeys import engine, report, sends
from enseigne.journeys import flow as flows
from enseigne.journeys import services as journeys
from enseigne.journeys.models import (
    Enrollment,
    EnrollmentStep,
    JourneyRun,
    JourneySend,
    JourneyTemplate,
    JourneyVersion,
)
from enseigne.journeys.timing import local_moment, wake_at
from enseigne.lib.bulk import bulk_insert
from enseigne.network.models import OrgNode, User
from enseigne.network.selectors import unit_time_zone
from enseigne.tracking.models import Conversion

W = Enrollment.Status
Out = EnrollmentStep.Outcome
DAYS = 365
HOLDOUT_PERCENT = 10
# The first trigger pass of a store's day reads its dates and lapses (the worker ticks each minute).
DAY_PASS = dt.time(0, 1)
# Queued less than this before the seed: not handed off yet (the demo's worker sends them).
HANDOFF_PENDING = dt.timedelta(days=1)

# The stores that run each journey (the welcome one is also mandatory for a region).
WELCOME_REGION = "sud-est"
RUNS = {
    "welcome": ("lille", "nantes"),
    "birthday": ("lyon", "lille", "bordeaux", "nantes"),
    "winback": ("lyon", "rouen", "marseille", "nantes"),
}

FOOTER = (
    '<mj-section><mj-column><mj-text font-size="12px" color="#555555" line-height="1.5">'
    "{{ unit.name }} · {{ unit.address }} · {{ unit.phone }}<br/>{{ brand.legal_footer }}<br/>"
    '<a href="{{ links.unsubscribe }}">Se désabonner</a></mj-text></mj-column></mj-section>'
)


def _email(headline: str, message: str, button: str) -> str:
    return (
        "<mjml><mj-head><mj-attributes>"
        '<mj-all font-family="Helvetica, Arial, sans-serif" /></mj-attributes></mj-head>'
        '<mj-body background-color="#f6f1e7"><mj-section background-color="#ffffff"><mj-column>'
        '<mj-image src="{{ brand.logo_url }}" alt="{{ brand.name }}" width="200px" />'
        '<mj-text font-size="24px" color="#262634"><ens-zone name="headline" kind="text" '
        f'max="70" label="Titre" required="true">{headline}</ens-zone></mj-text>'
        '<mj-text font-size="16px">Bonjour {{ contact.first_name | default: "à vous" }},</mj-text>'
        '<mj-text font-size="15px" line-height="1.5"><ens-zone name="message" kind="rich" '
        f'max="500" label="Mot du magasin">{message}</ens-zone></mj-text>'
        f'<mj-button background-color="#c99434" href="{{{{ unit.website }}}}">{button}</mj-button>'
        f"</mj-column></mj-section>{FOOTER}</mj-body></mjml>"
    )


BIRTHDAY = _email(
    "Joyeux anniversaire !",
    "Toute l'équipe vous souhaite une belle journée. Passez nous voir ce mois-ci : "
    "une attention vous attend en magasin.",
    "Venir nous voir",
)
WINBACK = _email(
    "Vous nous manquez",
    "Cela fait un moment ! Nos nouvelles collections de luminaires et de textiles "
    "sont arrivées : venez les découvrir.",
    "Voir les nouveautés",
)
SMS_WELCOME = (
    '{{ unit.name }} : <ens-zone name="message" kind="text" max="110" label="Message" '
    'required="true">Bienvenue ! -10 % sur votre premier achat en magasin ce mois-ci.</ens-zone>'
)

BOUGHT_LATELY = {
    "match": "all",
    "rules": [{"field": "bought", "op": "any_in_last_days", "value": 3}],
}
SMS_OK = {"match": "all", "rules": [{"field": "consent_sms", "op": "is_valid"}]}


def _flows(templates: Mapping[str, str]) -> dict[str, dict]:
    """The three published flows (``templates``: brand template public ids by role). The
    step names are HQ's, in French: the stores read them on the journey's pages and in the
    name of each step's ledger campaign ("Bienvenue · accueil")."""
    return {
        "welcome": {
            "trigger": {"kind": "consent", "channel": "email"},
            "start": "accueil",
            "steps": {
                "accueil": {
                    "kind": "send_email",
                    "template": templates["welcome"],
                    "next": "attente",
                },
                "attente": {"kind": "wait", "days": 3, "next": "achat"},
                "achat": {
                    "kind": "condition",
                    "rules": BOUGHT_LATELY,
                    "yes": "fin",
                    "no": "joignable-sms",
                },
                "joignable-sms": {
                    "kind": "condition",
                    "rules": SMS_OK,
                    "yes": "offre-sms",
                    "no": "fin",
                },
                "offre-sms": {"kind": "send_sms", "template": templates["sms_welcome"]},
                "fin": {"kind": "exit"},
            },
        },
        "birthday": {
            "trigger": {"kind": "date", "field": "birthday", "offset_days": 0},
            "start": "carte",
            "steps": {"carte": {"kind": "send_email", "template": templates["birthday"]}},
        },
        "winback": {
            "trigger": {"kind": "inactivity", "days": 90},
            "goal": {"kind": "purchase"},
            "start": "relance",
            "steps": {
                "relance": {
                    "kind": "send_email",
                    "template": templates["winback"],
                    "next": "attente",
                },
                "attente": {"kind": "wait", "days": 14},
            },
        },
    }


JOURNEYS = {
    # key: (name, description, re-entry)
    "welcome": (
        "Bienvenue",
        "Un e-mail de bienvenue au consentement, puis une offre SMS à qui n'a pas acheté",
        JourneyTemplate.Reentry.NEVER,
    ),
    "birthday": (
        "Anniversaire",
        "Un e-mail le jour de l'anniversaire, chaque année",
        JourneyTemplate.Reentry.EVERY,
    ),
    "winback": (
        "Reconquête",
        "Après 90 jours sans achat, un e-mail ; objectif : un achat sous 14 jours",
        JourneyTemplate.Reentry.EVERY,
    ),
}


# --- what the demo's records were at a given moment ---------------------------------------


class History:
    """The demo's consents and orders, read once, answered as of any moment."""

    def __init__(self, contact_ids: list[int]):
        # (record, channel) → its consent events in time order: (occurred, status, event id)
        self.consents: dict[tuple[int, str], list[tuple[dt.datetime, str, int]]] = defaultdict(list)
        for contact_id, channel, status, at, pk in (
            ConsentEvent.objects.filter(contact_id__in=contact_ids)
            .order_by("occurred_at", "id")
            .values_list("contact_id", "channel", "status", "occurred_at", "pk")
        ):
            self.consents[contact_id, channel].append((at, status, pk))
        self.orders: dict[int, list[tuple[dt.datetime, bool, int]]] = defaultdict(list)
        for contact_id, at, total, unit_id in (
            Order.objects.filter(contact_id__in=contact_ids)
            .order_by("occurred_at")
            .values_list("contact_id", "occurred_at", "total", "unit_id")
        ):
            self.orders[contact_id].append((at, total > 0, unit_id))
        self.times = {c: [o[0] for o in orders] for c, orders in self.orders.items()}

    def consent_at(self, contact_id: int, channel: str, moment: dt.datetime) -> bool:
        """Whether the record's latest consent event for the channel by ``moment`` is valid."""
        last = None
        for at, status, _pk in self.consents.get((contact_id, channel), []):
            if at > moment:
                break
            last = status
        return last in VALID_CONSENT

    def ordered(self, contact_id: int, since: dt.datetime, until: dt.datetime, *, sale: bool):
        """An order (a sale: a positive total) of the record in [since, until]."""
        times = self.times.get(contact_id, [])
        orders = self.orders.get(contact_id, [])
        for i in range(bisect.bisect_left(times, since), bisect.bisect_right(times, until)):
            if orders[i][1] or not sale:
                return True
        return False

    def matches(self, rules: Mapping, contact_id: int, moment: dt.datetime) -> bool:
        """A condition's segment rules, as ``SegmentCompiler`` reads them at ``moment`` (the
        fields the demo's flows use)."""
        answers = []
        for rule in rules.get("rules", []):
            name, op = rule.get("field"), rule.get("op")
            if name == "bought" and op in ("any_in_last_days", "none_in_last_days"):
                since = moment - dt.timedelta(days=int(rule["value"]))
                did = self.ordered(contact_id, since, moment, sale=True)
                answers.append(did if op == "any_in_last_days" else not did)
            elif name in ("consent_email", "consent_sms") and op in ("is_valid", "is_not_valid"):
                valid = self.consent_at(contact_id, name.removeprefix("consent_"), moment)
                answers.append(valid if op == "is_valid" else not valid)
            else:
                raise ValueError(f"The demo's journeys do not read {name} {op}.")
        return all(answers) if rules.get("match", "all") == "all" else any(answers)


# --- the engine's walk, on the demo's year ------------------------------------------------


@dataclass
class Entrant:
    run: JourneyRun
    contact_id: int
    occurrence: str
    entered_at: dt.datetime
    held_out: bool
    step: str
    status: str = W.WAITING
    wake_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    history: list[tuple[str, str, str, dt.datetime]] = field(default_factory=list)
    queued: list[tuple[str, dt.datetime]] = field(default_factory=list)

    def note(self, outcome: str, at: dt.datetime, detail: str = "") -> None:
        self.history.append((self.step, outcome, detail, at))
        self.updated_at = at

    def end(self, status: str, outcome: str, at: dt.datetime) -> None:
        self.note(outcome, at)
        self.status, self.wake_at = status, None


def _claimed(row: Entrant, flow: flows.Flow, now: dt.datetime, zone: ZoneInfo, past: History):
    """What ``engine._Batch.run`` does to a row it claims at ``now``."""
    if flow.goal and past.ordered(row.contact_id, row.entered_at, now, sale=False):
        row.end(W.GOAL, Out.GOAL, now)
        return
    step = flow.steps[row.step]
    if step.kind == "wait":
        row.note(Out.WAITED, now)
        if step.next is None:
            row.end(W.DONE, Out.DONE, now)
            return
        row.step = step.next
    for _round in range(flows.MAX_STEPS + 1):
        step = flow.steps[row.step]
        if step.kind in flows.SEND_KINDS:
            if row.held_out:
                row.note(Out.HELD_OUT, now)
            else:
                row.note(Out.SENT, now)
                row.queued.append((step.id, now))
            target = step.next
        elif step.wait is not None:
            row.wake_at = wake_at(step.wait, now, zone)
            row.updated_at = now
            return
        elif step.kind == "condition":
            yes = past.matches(step.rules or {}, row.contact_id, now)
            row.note(Out.YES if yes else Out.NO, now)
            target = step.yes if yes else step.no
        elif step.kind == "exit":
            row.end(W.EXITED, Out.EXITED, now)
            return
        else:  # a random split draws on the enrollment's id, unknown before it is written
            raise ValueError("The demo's journeys have no random split.")
        if target is None:
            row.end(W.DONE, Out.DONE, now)
            return
        row.step = target
    raise AssertionError("a journey row did not come to rest")  # pragma: no cover


def _walk(row: Entrant, flow: flows.Flow, now: dt.datetime, zone: ZoneInfo, past: History):
    """The row from its entry to its end, or to the wait it is in at ``now``."""
    row.wake_at = row.entered_at
    while row.status == W.WAITING and row.wake_at is not None and row.wake_at <= now:
        _claimed(row, flow, row.wake_at, zone, past)


def _entrant(
    run: JourneyRun, start: str, contact_id: int, occurrence: str, at: dt.datetime
) -> Entrant:
    """A row as ``engine.enroll_each`` enters it (the control group drawn the same way)."""
    template = run.template
    if template.reentry == JourneyTemplate.Reentry.NEVER:
        occurrence = ""
    held = engine.draw(contact_id, f"holdout:{run.pk}:{occurrence}") < template.holdout_percent
    return Entrant(run, contact_id, occurrence, at, held, start)


# --- the triggers, on the demo's year -----------------------------------------------------


def _days(first: dt.date, now: dt.datetime, zone: ZoneInfo) -> list[dt.date]:
    """The store's days whose first trigger pass has come by ``now``."""
    days, day = [], first
    while local_moment(day, DAY_PASS, zone) <= now:
        days.append(day)
        day += dt.timedelta(days=1)
    return days


def _entries(run, flow, records, past, days, zone, start, now) -> list[Entrant]:
    """The run's entrants from ``start`` (its first day's midnight) to ``now``, as its
    trigger's passes would have entered them (``records``: the store's, id → (birthday,
    added on); a record enters only once it was in the base)."""
    trigger = flow.trigger
    kind = trigger["kind"]
    out: list[Entrant] = []
    if kind == "consent":
        channel = trigger["channel"]
        for contact_id in records:
            for at, status, event_id in past.consents.get((contact_id, channel), []):
                if status in VALID_CONSENT and start <= at <= now:
                    # Read by the next minute's pass, if the consent is still valid then.
                    moment = at.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
                    if moment <= now and past.consent_at(contact_id, channel, moment):
                        out.append(_entrant(run, flow.start, contact_id, str(event_id), moment))
                        break  # re-entry "never": the first welcome only
    elif kind == "date":
        by_day: dict[tuple[int, int], list[int]] = defaultdict(list)
        for contact_id, (birthday, _added) in records.items():
            if birthday is not None:
                by_day[birthday.month, birthday.day].append(contact_id)
        for day in days:
            keys = [(day.month, day.day)]
            if keys[0] == (2, 28) and not calendar.isleap(day.year):
                keys.append((2, 29))
            moment = local_moment(day, DAY_PASS, zone)
            for key in keys:
                for contact_id in by_day.get(key, []):
                    if records[contact_id][1] <= moment:
                        out.append(_entrant(run, flow.start, contact_id, str(day.year), moment))
    elif kind == "inactivity":
        lapse = dt.timedelta(days=int(trigger["days"]))
        first, last = days[0], days[-1]
        for contact_id in records:
            mine = [o[0] for o in past.orders.get(contact_id, []) if o[2] == run.unit_id]
            for i, at in enumerate(mine):
                lapsed = at.astimezone(zone).date()
                day = lapsed + lapse
                moment = local_moment(day, DAY_PASS, zone)
                later = mine[i + 1] if i + 1 < len(mine) else None
                if (
                    first <= day <= last
                    and (later is None or later >= moment)
                    and records[contact_id][1] <= moment
                ):
                    out.append(_entrant(run, flow.start, contact_id, lapsed.isoformat(), moment))
    return out


# --- the seed -----------------------------------------------------------------------------


def _brand_templates(root: OrgNode, hq: User) -> dict[str, str]:
    """The brand templates of the journeys' messages: HQ adds its own, as it would."""
    from enseigne.brand.models import Template

    make = brand.template_create
    made = {
        "welcome": Template.objects.get(name="Bienvenue", shared_path=root.path),
        "birthday": make(
            actor=hq,
            shared_with=root,
            channel="email",
            name="Joyeux anniversaire",
            description="Envoyé le jour de l'anniversaire du client",
            source=BIRTHDAY,
            subject="{{ contact.first_name | default: 'Bonjour' }}, joyeux anniversaire !",
        ),
        "winback": make(
            actor=hq,
            shared_with=root,
            channel="email",
            name="Vous nous manquez",
            description="Pour les clients qui ne sont pas revenus depuis longtemps",
            source=WINBACK,
            subject="Vous nous manquez chez {{ unit.name }}",
        ),
        "sms_welcome": make(
            actor=hq,
            shared_with=root,
            channel="sms",
            name="SMS offre de bienvenue",
            source=SMS_WELCOME,
            sms_stop="STOP au 36111",
            max_segments=1,
        ),
    }
    return {key: str(template.public_id) for key, template in made.items()}


def _runs(root, units, users, domain, designs) -> list[JourneyRun]:
    """HQ's journeys, published; the stores' runs of them, from a year ago."""
    hq = users[f"siege@{domain}"]
    today = timezone.localdate()
    made = []
    for key, raw in designs.items():
        name, description, reentry = JOURNEYS[key]
        template = journeys.journey_template_create(
            actor=hq,
            owner=root,
            name=name,
            description=description,
            reentry=reentry,
            holdout_percent=HOLDOUT_PERCENT,
        )
        journeys.journey_publish(actor=hq, template=template, flow=raw)
        template.refresh_from_db()
        if key == "welcome" and WELCOME_REGION:
            region = OrgNode.objects.get(code=WELCOME_REGION, path__startswith=root.path)
            journeys.journey_make_mandatory(actor=hq, template=template, node=region)
        for code in RUNS[key]:
            unit = units.get(code)
            if unit is None:
                continue
            actor = users.get(f"{code}@{domain}", hq)
            journeys.journey_activate(actor=actor, template=template, unit=unit, starts_on=today)
        made.append(template)
    runs = list(
        JourneyRun.objects.filter(template__in=made)
        .select_related("template", "version", "unit__profile")
        .order_by("template_id", "unit_path")
    )
    return runs


def seed_journeys(
    root: OrgNode, units: dict[str, OrgNode], users: dict[str, User], domain: str, *, seed: int = 22
) -> dict:
    """The three journeys, their stores' runs and the year they would have left."""
    rng = random.Random(seed)
    now = timezone.now()
    hq = users[f"siege@{domain}"]
    designs = _flows(_brand_templates(root, hq))
    runs = _runs(root, units, users, domain, designs)
    by_unit: dict[str, dict[int, tuple[dt.date | None, dt.datetime]]] = defaultdict(dict)
    unit_paths = {run.unit_path for run in runs}
    for pk, path, birthday, added in Contact.objects.filter(unit_path__in=unit_paths).values_list(
        "pk", "unit_path", "birthday", "created_at"
    ):
        by_unit[path][pk] = (birthday, added)
    past = History([pk for records in by_unit.values() for pk in records])
    entrants: list[Entrant] = []
    progress: dict[int, dt.date] = {}
    for run in runs:
        zone = ZoneInfo(unit_time_zone(run.unit))
        first = now.astimezone(zone).date() - dt.timedelta(days=DAYS)
        run.starts_on = first
        days = _days(first, now, zone)
        flow = flows.parse(run.version.flow)
        found = _entries(
            run,
            flow,
            by_unit[run.unit_path],
            past,
            days,
            zone,
            local_moment(first, dt.time(0, 0), zone),
            now,
        )
        for row in found:
            _walk(row, flow, now, zone, past)
        entrants.extend(found)
        progress[run.pk] = days[-1] if days else first - dt.timedelta(days=1)
    for run in runs:
        # The live triggers go on from here: the consents read up to the seed's moment, the
        # days up to today's first pass. The run's row keeps its real creation time: the
        # consent trigger never reads consents recorded before it (the seed records every
        # consent of the demo's two years just before, each dated as it occurred).
        JourneyRun.objects.filter(pk=run.pk).update(
            starts_on=run.starts_on, events_read_at=now, days_read_on=progress[run.pk]
        )
    # HQ published the versions before the stores started them, a year ago (the pages show
    # both dates side by side).
    JourneyVersion.objects.filter(pk__in={run.version_id for run in runs}).update(
        published_at=now - dt.timedelta(days=DAYS + 1)
    )
    bulk_insert(
        Enrollment,
        (
            "run",
            "version",
            "contact",
            "unit_path",
            "occurrence",
            "step",
            "status",
            "held_out",
            "wake_at",
            "entered_at",
            "updated_at",
        ),
        [
            (
                row.run.pk,
                row.run.version_id,
                row.contact_id,
                row.run.unit_path,
                row.occurrence,
                row.step,
                row.status,
                row.held_out,
                row.wake_at,
                row.entered_at,
                row.updated_at or row.entered_at,
            )
            for row in entrants
        ],
    )
    # Their ids, by the key each is entered once under (one read, where returning them
    # would build a model instance per row on SQLite).
    ids = {
        (run_id, contact_id, occurrence): pk
        for pk, run_id, contact_id, occurrence in Enrollment.objects.filter(
            run__in=runs
        ).values_list("pk", "run_id", "contact_id", "occurrence")
    }
    rows = [ids[row.run.pk, row.contact_id, row.occurrence] for row in entrants]
    bulk_insert(
        EnrollmentStep,
        ("enrollment", "unit_path", "step", "outcome", "detail", "at"),
        [
            (made, row.run.unit_path, step, outcome, detail, at)
            for made, row in zip(rows, entrants, strict=True)
            for step, outcome, detail, at in row.history
        ],
    )
    sent = _ledger(rng, runs, rows, entrants, past, now)
    # The nightly pass the live worker runs: the report then sums closed windows.
    report.close_windows()
    return {
        "journeys": len(designs),
        "journey_runs": len(runs),
        "enrollments": len(rows),
        "journey_messages": sent,
    }


def _ledger(rng, runs, rows, entrants, past: History, now: dt.datetime) -> int:
    """Each send step's ledger campaign and its rows, handed off as the demo's other
    campaigns were (sent, opened, clicked), those of the last day pending."""
    campaigns: dict[tuple[int, str], Campaign] = {}
    for run in runs:
        flow = flows.parse(run.version.flow)
        for step in flow.steps.values():
            if step.kind in flows.SEND_KINDS:
                campaign = sends.step_campaign(run, run.version_id, step)
                assert isinstance(campaign, Campaign), campaign
                campaigns[run.pk, step.id] = campaign
    window = sms_window(policy_for(runs[0].unit)) if runs else None
    zones = {run.pk: unit_time_zone(run.unit) for run in runs}
    ledger = []
    for made, row in zip(rows, entrants, strict=True):
        for step_id, at in row.queued:
            campaign = campaigns[row.run.pk, step_id]
            status, reason, sent_at = Recipient.Status.PENDING, "", None
            if at < now - HANDOFF_PENDING:
                handoff = at + dt.timedelta(minutes=rng.randint(1, 4))
                if campaign.channel == "sms" and window is not None:
                    handoff = window.next_allowed(handoff, zones[row.run.pk])
                if past.consent_at(row.contact_id, campaign.channel, handoff):
                    status, sent_at = Recipient.Status.SENT, handoff
                else:
                    status, reason = Recipient.Status.SKIPPED, Reason.NO_CONSENT
            ledger.append(
                (
                    campaign.pk,
                    row.contact_id,
                    row.run.unit_id,
                    row.run.unit_path,
                    campaign.channel,
                    status,
                    reason,
                    "",
                    "",
                    0 if status == Recipient.Status.PENDING else 1,
                    0,
                    1 if campaign.channel == "sms" and sent_at else 0,
                    sent_at,
                    "",
                    made,  # the enrollment, as ``sends.queue`` keys the row
                )
            )
    bulk_insert(Recipient, (*LEDGER_FIELDS, "occurrence"), ledger)
    start = min(
        (local_moment(run.starts_on, dt.time(0, 0), ZoneInfo(zones[run.pk])) for run in runs),
        default=now,
    )
    for campaign in campaigns.values():
        Campaign.objects.filter(pk=campaign.pk).update(
            recipient_total=Recipient.objects.filter(campaign=campaign).count(),
            created_at=start,
            decided_at=start,
            launched_at=start,
            frozen_at=start,
        )
    _results(rng, campaigns, now)
    return len(ledger)


def _results(rng, campaigns: dict[tuple[int, str], Campaign], now: dt.datetime) -> None:
    """Opens, clicks and sales of the messages sent, as for the demo's other campaigns."""
    rows: list = []
    sales: list[Conversion] = []
    totals: dict = defaultdict(int)
    units = {
        unit.pk: unit
        for unit in OrgNode.objects.filter(
            pk__in=JourneySend.objects.filter(
                campaign__in=[c.pk for c in campaigns.values()]
            ).values("run__unit_id")
        )
    }
    for campaign in campaigns.values():
        sent = list(
            Recipient.objects.filter(campaign=campaign, status=Recipient.Status.SENT)
            .order_by("id")
            .values_list("id", "unit_id", "contact_id", "sent_at")
        )
        if not sent:
            continue
        unit = units[sent[0][1]]
        links = _links(campaign, unit)
        profile = PROFILES.get(unit.code, Profile())
        for recipient_id, _unit, contact_id, sent_at in sent:
            _simulate(
                rng, rows, sales, totals, campaign, unit, profile, links,
                recipient_id, contact_id, sent_at, now,
            )  # fmt: skip
    events.write(rows)
    Conversion.objects.bulk_create(sales, batch_size=5000)
    first = Recipient.objects.filter(
        campaign__in=[c.pk for c in campaigns.values()], status=Recipient.Status.SENT
    ).aggregate(first=Min("sent_at"))["first"]
    if first is not None:
        rollups.touch(first)  # the worker's next pass counts them in the charts
