"""Scoped reads of journeys: HQ's designs, the journeys a store may run, runs and figures.

Another unit's run, or a journey a user may not design, answers 404 like a missing one."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet
from django.http import Http404

from enseigne.campaigns.models import Campaign, Recipient
from enseigne.delivery.models import Event
from enseigne.lib.ids import parse_uuid
from enseigne.network.access import access_for, path_filter
from enseigne.network.models import OrgNode, User

from .models import Enrollment, EnrollmentStep, JourneyRun, JourneyTemplate
from .services import may_design_for_network, may_design_for_store


def get_hq_root_for_user(user: User) -> OrgNode:
    """The network whose journeys ``user`` designs: 404 for anyone but HQ's designers."""
    if not may_design_for_network(user):
        raise Http404("No such page.")
    return OrgNode.objects.get(path=access_for(user).grants[0].path[: OrgNode.steplen])


def hq_templates(root: OrgNode) -> QuerySet[JourneyTemplate]:
    return (
        JourneyTemplate.objects.filter(owner=root)
        .select_related("live_version")
        .annotate(
            runs_total=Count("runs", filter=~Q(runs__status=JourneyRun.Status.STOPPED)),
        )
        .order_by("name")
    )


def get_designable_template_for_user(user: User, public_id) -> JourneyTemplate:
    """A journey ``user`` designs: HQ's for HQ, a store's own for that store."""
    key = parse_uuid(public_id)
    template = (
        JourneyTemplate.objects.select_related("owner", "live_version")
        .filter(public_id=key)
        .first()
        if key
        else None
    )
    if template is not None:
        if template.owner.is_root():
            allowed = may_design_for_network(user) and access_for(user).sees(template.owner_path)
        else:
            allowed = may_design_for_store(user, template.owner)
        if allowed:
            return template
    raise Http404("No such journey.")


def templates_offered(user: User) -> QuerySet[JourneyTemplate]:
    """Published journeys the user's stores may run: their network's and their own."""
    access = access_for(user)
    roots = {grant.path[: OrgNode.steplen] for grant in access.grants}
    return (
        JourneyTemplate.objects.filter(live_version__isnull=False)
        .filter(Q(owner__path__in=roots) | path_filter(access.paths, "owner_path"))
        .select_related("owner", "live_version")
        .order_by("name")
    )


def templates_designed_by_stores(user: User) -> list[JourneyTemplate]:
    """The stores' own journeys the user may design (published or not)."""
    access = access_for(user)
    found = (
        JourneyTemplate.objects.filter(owner__kind=OrgNode.Kind.UNIT)
        .filter(path_filter(access.paths, "owner_path"))
        .select_related("owner", "live_version")
        .order_by("name")
    )
    return [t for t in found if may_design_for_store(user, t.owner)]


def get_offered_template_for_user(user: User, public_id) -> JourneyTemplate:
    key = parse_uuid(public_id)
    template = templates_offered(user).filter(public_id=key).first() if key else None
    if template is None:
        raise Http404("No such journey.")
    return template


def runs_for_user(user: User) -> QuerySet[JourneyRun]:
    return (
        JourneyRun.objects.filter(path_filter(access_for(user).paths))
        .select_related("template", "version", "unit")
        .order_by("unit__path", "template__name")
    )


def get_run_for_user(user: User, public_id) -> JourneyRun:
    key = parse_uuid(public_id)
    run = runs_for_user(user).filter(public_id=key).first() if key else None
    if run is None:
        raise Http404("No such journey run.")
    return run


def get_reported_template_for_user(
    user: User, public_id
) -> tuple[JourneyTemplate, QuerySet[JourneyRun]]:
    """A journey's report and the runs of it the user sees: HQ and a region manager see
    their stores' runs, a store its own. 404 when the user sees no run of it and does not
    design it (another store's journey, or one no store of the user runs)."""
    key = parse_uuid(public_id)
    runs = (
        runs_for_user(user)
        .filter(template__public_id=key)
        .select_related("template__owner", "template__live_version")
        if key
        else JourneyRun.objects.none()
    )
    if runs:  # evaluated once here: the report reads the same rows again from its cache
        return runs[0].template, runs
    # Nobody runs it yet: its designer still sees its (empty) report.
    return get_designable_template_for_user(user, public_id), runs


@dataclass
class CalendarJourney:
    """A journey on the calendar: ongoing from its first store's start, no end; one run
    (a store's), or several (a region's or HQ's view: the journey once, its store count)."""

    template: JourneyTemplate
    runs: list[JourneyRun]

    @property
    def starts_on(self):
        return min(run.starts_on for run in self.runs)

    @property
    def paused(self) -> bool:
        return all(run.status == JourneyRun.Status.PAUSED for run in self.runs)


def calendar_journeys(user: User, before) -> list[CalendarJourney]:
    """The journeys running or paused in the user's stores that started before the date
    ``before``, one entry per journey (a stopped run is over: it leaves the calendar)."""
    grouped: dict[int, CalendarJourney] = {}
    found = (
        runs_for_user(user)
        .exclude(status=JourneyRun.Status.STOPPED)
        .filter(starts_on__lt=before)
        .order_by("template__name", "unit__name")
    )
    for run in found:
        entry = grouped.setdefault(run.template_id, CalendarJourney(run.template, []))
        entry.runs.append(run)
    return list(grouped.values())


@dataclass
class StepFigures:
    entered: int = 0
    waiting: int = 0
    # Messages the step put in the ledger (the engine's "queued" lines) and, from the
    # ledger, what became of them: handed off (``sent``), still to hand off, refused at
    # hand-off by a gate or failed, lost in a dropped connection, or left unsent because the
    # run was stopped (its step campaign cancelled).
    queued: int = 0
    sent: int = 0
    to_send: int = 0
    refused: int = 0
    unknown: int = 0
    cancelled: int = 0
    # People with a human click (machines' clicks are never counted) on the step's messages.
    clicked: int = 0
    held_out: int = 0
    goal: int = 0
    exited: int = 0
    stopped: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def not_sent(self) -> int:
        return self.refused + self.cancelled


def step_figures(runs: QuerySet[JourneyRun]) -> dict[str, StepFigures]:
    """Per step id, over these runs (every version): how many entered it (passed through it
    or wait there), wait there, had its message queued and what became of it in the ledger
    (sent, to send, not sent), clicked it, were held out of it (control group), reached the
    goal or left the journey there (at an exit or at its last step), or stopped there.
    Five grouped queries, whatever the number of runs, people and messages."""
    out = EnrollmentStep.Outcome
    figures: dict[str, StepFigures] = defaultdict(StepFigures)
    enrollments = Enrollment.objects.filter(run__in=runs)
    history = EnrollmentStep.objects.filter(enrollment__in=enrollments).order_by()
    for row in history.values("step", "outcome").annotate(n=Count("id")):
        figures[row["step"]].outcomes[row["outcome"]] = row["n"]
    # Everyone with a line at the step passed there; people waiting at a wait have none yet.
    for row in history.values("step").annotate(people=Count("enrollment_id", distinct=True)):
        figures[row["step"]].entered = row["people"]
    for figure in figures.values():
        counts = figure.outcomes
        figure.queued = counts.get(out.SENT, 0)
        figure.held_out = counts.get(out.HELD_OUT, 0)
        figure.goal = counts.get(out.GOAL, 0)
        figure.exited = counts.get(out.EXITED, 0) + counts.get(out.DONE, 0)
        figure.stopped = counts.get(out.STOPPED, 0)
    waiting = (
        enrollments.filter(status=Enrollment.Status.WAITING)
        .order_by()
        .values("step")
        .annotate(n=Count("id"))
    )
    for row in waiting:
        figure = figures[row["step"]]
        figure.waiting = row["n"]
        figure.entered += row["n"]
    _ledger_figures(runs, figures)
    return dict(figures)


def _ledger_figures(runs: QuerySet[JourneyRun], figures: dict[str, StepFigures]) -> None:
    """The send steps' messages as the ledger knows them, and their human clicks (two
    grouped queries: the ledger by step campaign and status, the click log by campaign)."""
    ledger = (
        Recipient.objects.filter(campaign__journey_send__run__in=runs)
        .order_by()
        .values("campaign_id", "campaign__journey_send__step", "campaign__status", "status")
        .annotate(n=Count("id"))
    )
    step_of: dict[int, str] = {}
    state = Recipient.Status
    for row in ledger:
        step_of[row["campaign_id"]] = step = row["campaign__journey_send__step"]
        figure, n = figures[step], row["n"]
        if row["status"] == state.SENT:
            figure.sent += n
        elif row["status"] == state.AMBIGUOUS:
            figure.unknown += n
        elif row["status"] != state.PENDING:
            figure.refused += n
        elif row["campaign__status"] == Campaign.Status.CANCELLED:
            figure.cancelled += n
        else:
            figure.to_send += n
    if not step_of:
        return
    # The log's (campaign, kind, recipient) index answers this without reading its rows.
    clicks = (
        Event.objects.filter(campaign_id__in=list(step_of), kind=Event.Kind.CLICKED, machine=False)
        .order_by()
        .values("campaign_id")
        .annotate(people=Count("recipient_id", distinct=True))
    )
    for row in clicks:
        figures[step_of[row["campaign_id"]]].clicked += row["people"]
