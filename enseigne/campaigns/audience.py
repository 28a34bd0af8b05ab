"""Who a campaign reaches, who it does not and why: the preview and the frozen ledger.

Every candidate contact gets one reason, the first that applies, in this order: no
address, unusable number, no consent for the channel, suppressed, marketing pressure.
Budgets then cut the end of a unit's list when it cannot pay for all of it. The same
SQL classification feeds the preview and the INSERT … SELECT that freezes the audience
at launch, so what the user saw is what is sent (minus what changed in between, which
the hand-off checks again).
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.utils import timezone

from enseigne.brand.models import LocalVersion
from enseigne.brand.previews import sms_preview
from enseigne.brand.sms import measure
from enseigne.campaigns import pricing
from enseigne.campaigns.gates import PREVIEW_REASONS, Reason
from enseigne.campaigns.models import Budget, Campaign, Recipient, Relay, SendingPolicy
from enseigne.campaigns.selectors import budget_for, policy_for, pressure_rules, sms_window
from enseigne.contacts.models import VALID_CONSENT, Channel, Contact, Suppression
from enseigne.contacts.segments import SegmentCompiler
from enseigne.identity import sending as by_person
from enseigne.network.models import Network, OrgNode
from enseigne.network.selectors import root_of, unit_time_zone

# The reasons the preview counts, and their labels (declared once in gates.Reason).
REASONS = {reason.value: reason.label for reason in PREVIEW_REASONS}
# At hand-off the pipeline may also skip or fail a row for these.
HANDOFF_REASONS = {reason.value: reason.label for reason in Reason}
# French mobile numbers; other countries' numbers are assumed able to receive SMS.
FRENCH_MOBILE = ("+336", "+337")
PLANNED = (Campaign.Status.APPROVED, Campaign.Status.SCHEDULED)
# Going to send with no ledger yet: weighed by their planned audience, like planned ones.
UNFROZEN = (*PLANNED, Campaign.Status.PREPARING)
LAUNCHED = (Campaign.Status.SENDING, Campaign.Status.PAUSED)
# Campaigns that may have sent: their ledger rows count against the caps.
HAS_SENT = (*LAUNCHED, Campaign.Status.FINISHED, Campaign.Status.CANCELLED)
# Bits per bit-set word of ledger campaigns (a bigint, sign bit left alone).
WORD_BITS = 63


@dataclass
class Target:
    unit: OrgNode
    local_version: LocalVersion | None
    hq_share_percent: int = 0


@dataclass
class UnitCount:
    """One sending unit in a preview: the version it sends and how many it reaches."""

    unit: OrgNode
    local_version: LocalVersion | None
    recipients: int = 0
    # The unit's own share of the figures, so that a viewer who sees only some units of a
    # national campaign is shown only theirs (campaigns/figures.py).
    candidates: int = 0
    exclusions: dict[str, int] = field(default_factory=dict)
    cost: Decimal = Decimal("0")
    hq_cost: Decimal = Decimal("0")
    # Its contacts another record of the same person receives the campaign through:
    # {sending unit id: contacts} (a national campaign sends one message a person).
    elsewhere: dict[int, int] = field(default_factory=dict)


@dataclass
class Preview:
    when: dt.datetime
    candidates: int = 0
    recipients: int = 0
    exclusions: dict[str, int] = field(default_factory=dict)
    pressure_sources: list[tuple[str, int]] = field(default_factory=list)
    deferred: list[dict] = field(default_factory=list)
    budgets: list[dict] = field(default_factory=list)
    cost: Decimal = Decimal("0")
    hq_cost: Decimal = Decimal("0")
    units: int = 0
    opted_out_units: int = 0
    per_unit: list[UnitCount] = field(default_factory=list)
    # Whether the viewer may read which units the ``other_unit`` contacts receive it from
    # (not a store's viewer in a network of separate controllers: figures.restricted).
    names_elsewhere: bool = True

    @property
    def excluded(self) -> int:
        return sum(self.exclusions.values())

    def exclusion_rows(self) -> list[tuple[str, str, int]]:
        return [(key, str(REASONS[key]), n) for key, n in self.exclusions.items() if n]

    def elsewhere_rows(self) -> list[tuple[OrgNode, int]]:
        """ "Already receives it from <unit>": contacts per sending unit, most first (empty
        for a viewer who may not learn of other units' customers)."""
        if not self.names_elsewhere:
            return []
        totals: dict[int, int] = {}
        for line in self.per_unit:
            for unit_id, n in line.elsewhere.items():
                totals[unit_id] = totals.get(unit_id, 0) + n
        units = {line.unit.pk: line.unit for line in self.per_unit}
        missing = [pk for pk in totals if pk not in units]
        if missing:
            units.update(OrgNode.objects.in_bulk(missing))
        rows = [(units[pk], n) for pk, n in totals.items() if pk in units]
        return sorted(rows, key=lambda row: (-row[1], row[0].name))


def targets(campaign: Campaign) -> list[Target]:
    """The units a campaign sends from, each with the content version it uses."""
    if not campaign.is_national:
        return [Target(campaign.owner, campaign.local_version)]
    policy = policy_for(campaign.owner)
    base = campaign.target_node or campaign.owner
    units = OrgNode.objects.filter(
        path__startswith=base.path, kind=OrgNode.Kind.UNIT
    ).select_related("profile")
    if campaign.target_tag_id:
        units = units.filter(tags=campaign.target_tag_id)
    relays = {
        r.unit_id: r
        for r in Relay.objects.filter(campaign=campaign).select_related("local_version")
    }
    chosen = []
    for unit in units.order_by("path"):
        relay = relays.get(unit.pk)
        if relay and relay.status == Relay.Status.OPTED_OUT:
            continue
        local = relay.local_version if relay and relay.status == Relay.Status.RELAYED else None
        chosen.append(Target(unit, local, policy.national_cofunding_percent))
    return chosen


def opted_out_units(campaign: Campaign) -> int:
    if not campaign.is_national:
        return 0
    return Relay.objects.filter(campaign=campaign, status=Relay.Status.OPTED_OUT).count()


def audience_condition(campaign: Campaign, units: list[OrgNode]) -> Q:
    """ "This contact is in the campaign's audience", before consent and the other checks."""
    condition = Q(unit__in=[u.pk for u in units])
    rules = campaign.segment.rules if campaign.segment_id else campaign.audience_rules
    if rules and rules.get("rules"):
        condition &= SegmentCompiler(campaign.created_by).compile(rules)
    return condition


def candidates(campaign: Campaign, units: list[OrgNode]) -> QuerySet[Contact]:
    return Contact.objects.filter(audience_condition(campaign, units))


def _has_priority(other: Campaign, campaign: Campaign, priority: str) -> bool:
    def scheduled_key(c: Campaign):
        return (c.scheduled_at or c.created_at, c.pk)

    if priority == SendingPolicy.Priority.NATIONAL_FIRST and other.kind != campaign.kind:
        return other.is_national
    if priority == SendingPolicy.Priority.NATIONAL_FIRST:
        return (other.send_at, *scheduled_key(other)) < (
            campaign.send_at or timezone.now(),
            *scheduled_key(campaign),
        )
    return scheduled_key(other) < scheduled_key(campaign)


def competitors(campaign: Campaign, when: dt.datetime, days: int) -> list[Campaign]:
    """Planned or running campaigns on the channel, near ``when``, that come before this one."""
    window = dt.timedelta(days=days)
    policy = policy_for(campaign.owner)
    others = (
        Campaign.objects.filter(
            channel=campaign.channel,
            status__in=(*UNFROZEN, *LAUNCHED),
            send_at__gt=when - window,
            send_at__lt=when + window,
            is_transactional=False,
        )
        .exclude(pk=campaign.pk)
        .select_related("owner", "segment", "target_node", "created_by")
    )
    return [o for o in others if _has_priority(o, campaign, policy.pressure_priority)]


def _competitor_reaches(other: Campaign) -> Q:
    """An SQL test on the contact row: "this contact is in planned campaign ``other``'s audience"."""
    units = [t.unit for t in targets(other)]
    return audience_condition(other, units) & Q(**{f"{other.channel}_consent__in": VALID_CONSENT})


@dataclass
class Classification:
    """The candidate contacts as SQL, one row each: ``id, unit_id, [unit_path,] reason``
    ('' = will receive), ``word_0``, … (bit sets of the ledger's campaigns that count against
    the contact's caps: bit ``b`` of word ``w`` is campaign ``ledger[w * WORD_BITS + b]``;
    NULL for none), then ``reach_0``, … (1 when planned campaign ``planned[i]`` reaches the
    contact's person, through this record or another: ``_person_reaches``). A statement over it starts with ``ctes``."""

    sql: str
    params: list
    planned: list[Campaign]
    ctes: str = ""
    cte_params: list = field(default_factory=list)
    ledger: list[int] = field(default_factory=list)
    # A national campaign's: rows also carry ``via_unit`` (the unit an ``other_unit`` row's
    # person receives the campaign from).
    one_per_person: bool = False

    @property
    def words(self) -> int:
        return -(-len(self.ledger) // WORD_BITS)

    def campaign_ids(self, words) -> set[int]:
        """The ledger campaigns whose bits are set in one row's ``word_i`` values."""
        return {
            self.ledger[w * WORD_BITS + b]
            for w, word in enumerate(words)
            if word
            for b in range(WORD_BITS)
            if word >> b & 1
        }


def _inside(other: Campaign, when: dt.datetime, days: int) -> bool:
    """Does ``other`` send within ``days`` of ``when`` (a cap's window, either side)?"""
    window = dt.timedelta(days=days)
    return when - window < other.send_at < when + window


def _placeholders(values: list) -> str:
    return ", ".join(["%s"] * len(values)) or "NULL"


def _db_time(value: dt.datetime):
    """A datetime as the database stores it, for hand-written SQL (SQLite keeps naive UTC text)."""
    return connection.ops.adapt_datetimefield_value(value)


def gate_cases(
    campaign: Campaign, suppressed_people: list[int] | QuerySet | None = None
) -> list[When]:
    """The row gates (address, number, consent, suppression) as SQL cases on a contact, in
    order: the first that applies is the contact's reason. The one declaration of these
    rules: the preview, the freeze and the hand-off all evaluate it.

    ``suppressed_people``: the records a brand-wide suppression stops through their person
    (``identity.sending.brand_wide_suppressed_records``): a list read beforehand for a whole
    audience, or a sub-query of the statement (a hand-off's, limited to its contacts'
    persons); None: the whole network's, as a sub-query. In a whole audience's statement
    that sub-query planned a parallel scan of the links, and a scan under a sub-query's own
    workers cannot run in parallel itself: the contacts' scan lost its workers and the
    preview took twice as long."""
    channel = campaign.channel
    address = "email" if channel == Channel.EMAIL else "phone"
    whens = [
        When(
            Q(**{f"{address}__isnull": True}) | Q(**{address: ""}),
            then=Value(Reason.NO_ADDRESS.value),
        )
    ]
    if channel == Channel.SMS:
        foreign = ~Q(phone__startswith="+33")
        whens.append(
            When(
                ~(
                    foreign
                    | Q(phone__startswith=FRENCH_MOBILE[0])
                    | Q(phone__startswith=FRENCH_MOBILE[1])
                ),
                then=Value(Reason.INVALID_NUMBER.value),
            )
        )
    if not campaign.is_transactional:
        whens.append(
            When(
                ~Q(**{f"{channel}_consent__in": VALID_CONSENT}), then=Value(Reason.NO_CONSENT.value)
            )
        )
    # One look-up in the channel's suppressed hashes (an IN over a sub-query, which PostgreSQL
    # hashes once); the exact "brand-wide or this unit" test runs only for a hash found there.
    suppressed = Suppression.objects.filter(channel=channel)
    address_hash = f"{address}_hash"
    # A brand-wide suppression applies to the person: another record of theirs, under
    # another address, is stopped too (identity.sending; a small set of contact ids).
    root = campaign.owner_path[: OrgNode.steplen]
    by_their_person = (
        Q(id__in=by_person.brand_wide_suppressed_records(channel, root))
        if suppressed_people is None
        else Q(id__in=suppressed_people)
        if isinstance(suppressed_people, QuerySet) or suppressed_people
        else Q(pk__in=[])
    )
    whens.append(
        When(
            (
                Q(**{f"{address_hash}__in": suppressed.values("value_hash")})
                & Q(
                    Exists(
                        suppressed.filter(
                            Q(unit_path="") | Q(unit_path=OuterRef("unit_path")),
                            value_hash=OuterRef(address_hash),
                        )
                    )
                )
            )
            | by_their_person,
            then=Value(Reason.SUPPRESSED.value),
        )
    )
    return whens


def classified(
    campaign: Campaign,
    contacts: QuerySet[Contact],
    when: dt.datetime,
    *,
    paths: bool = False,
    handoff_ids: list[int] | None = None,
) -> Classification:
    """Classify ``contacts`` for ``campaign`` at ``when``, set-based.

    Each contact row is tested once (address, number, consent, suppression, planned
    competitors), and the pressure ledger is aggregated once per person for all caps, then
    hash-joined. The first version ran one correlated sub-query per contact and cap, and
    hashed every address in the query: a million contacts took minutes. ``unit_path`` is
    selected only with ``paths`` (a million of them cost a tenth of a second to carry).

    Pressure counts per person: messages to any record of the contact's person (identity)
    count against its caps. A national campaign then sends one message a person: of the
    person's records that pass every gate, the one HQ's rule ranks first receives it, the
    others are ``other_unit`` (``_one_per_person``). Only the records of persons with
    several records (``identity.sending.shared_links_sql``, a fifth of a network at most)
    carry a person id; the others are keyed by minus their contact id, which keeps the
    contacts' scan as it was (joining every contact to its link doubled the preview).

    ``handoff_ids``: the hand-off's check of these contacts (``contacts`` holds just them).
    Then only messages really sent count against the caps: competitors not yet sent were
    weighed at the freeze, and counting their pending rows here would let two running
    campaigns hold each other back."""
    channel = campaign.channel
    rules = [] if campaign.is_transactional else pressure_rules(campaign.owner, channel)
    at_handoff = handoff_ids is not None
    nearby = (
        competitors(campaign, when, max(r.window_days for r in rules))
        if rules and not at_handoff
        else []
    )
    planned = [o for o in nearby if o.status in UNFROZEN]
    launched = [o for o in nearby if o.status in LAUNCHED]
    ledger = (
        []
        if at_handoff or not rules
        else _ledger_campaigns(
            campaign, when - dt.timedelta(days=max(r.window_days for r in rules))
        )
    )
    ctes: list[str] = []
    cte_params: list = []
    by_persons = bool(rules) or campaign.is_national
    if by_persons:
        shared, shared_params = by_person.shared_links_sql(
            _placeholders(handoff_ids) if handoff_ids is not None else None
        )
        ctes.append(f"shared AS {_materialized()}({shared})")
        cte_params += [*shared_params, *(handoff_ids or [])]
    if rules:
        loads, loads_params = _loads(campaign, when, rules, planned, launched, ledger, handoff_ids)
        ctes.append(loads)
        cte_params += loads_params
    if rules and planned:
        reaches, reaches_params = _person_reaches(planned)
        ctes.append(reaches)
        cte_params += reaches_params
    # A whole audience's: read beforehand, as a list. A hand-off's: the persons of its
    # contacts only, a sub-query of its one statement.
    suppressed: QuerySet = by_person.brand_wide_suppressed_records(
        channel, campaign.owner_path[: OrgNode.steplen], among=handoff_ids
    )
    suppressed_people = (
        suppressed if at_handoff else list(suppressed.values_list("contact", flat=True))
    )
    build = _Rows(
        campaign,
        when,
        rules,
        planned,
        ledger,
        paths,
        dated=campaign.is_national,
        suppressed_people=suppressed_people,
        person_reaches=bool(rules and planned),
    )
    sql, params = build(contacts)
    result = Classification(
        sql, params, planned, f"WITH {', '.join(ctes)} " if ctes else "", cte_params, ledger
    )
    if campaign.is_national:
        _one_per_person(campaign, result, build, contacts, handoff_ids)
    return result


def _person_reaches(planned: list[Campaign]) -> tuple[str, list]:
    """``reaches(contact_id, reach_0, …)`` (a CTE that reads ``shared``): for each record
    whose person has other records, whether planned campaign ``planned[i]`` reaches the
    person through any of their records, in any unit (1) or not (0). Kept only for persons
    some planned campaign reaches; every other record's reach is its own (``_Rows``).

    A planned campaign is not frozen yet, so it has no ledger to count per person: this
    counts it per person the way its ledger will (a national campaign sends the person one
    message; a local one reaches the store's record, and through it the person)."""
    reach = {
        f"reach_{i}": Case(
            When(_competitor_reaches(o), then=1), default=0, output_field=IntegerField()
        )
        for i, o in enumerate(planned)
    }
    anywhere = Q()
    for other in planned:
        anywhere |= _competitor_reaches(other)
    records = (
        Contact.objects.filter(anywhere, id__in=RawSQL("SELECT contact_id FROM shared", []))  # noqa: S611
        .annotate(**reach)
        .order_by()
        .values("id", *reach)
    )
    sql, params = records.query.sql_with_params()
    maxima = ", ".join(f"MAX(x.reach_{i}) AS reach_{i}" for i in range(len(planned)))
    columns = ", ".join(f"p.reach_{i}" for i in range(len(planned)))
    return (
        f"reaches AS {_materialized()}(SELECT sh.contact_id, {columns} FROM "  # noqa: S608
        f"(SELECT s.person_id, {maxima} FROM ({sql}) x JOIN shared s ON s.contact_id = x.id "
        "GROUP BY s.person_id) p JOIN shared sh ON sh.person_id = p.person_id) ",
        list(params),
    )


def _materialized() -> str:
    """Computed once and hash-joined (PostgreSQL would otherwise inline a CTE used once)."""
    return "MATERIALIZED " if connection.vendor == "postgresql" else ""


@dataclass
class _Rows:
    """The classification's SELECT for a set of contacts: ``id, unit_id, [unit_path,]
    [created_at,] reason, word_…, reach_…``. Pressure is the person's: ``loads`` holds each
    record's person's messages."""

    campaign: Campaign
    when: dt.datetime
    rules: list
    planned: list[Campaign]
    ledger: list[int]
    paths: bool
    # With ``created_at``: the sending record's rule reads it (national campaigns).
    dated: bool = False
    # See ``gate_cases``.
    suppressed_people: list[int] | QuerySet | None = None
    # Whether the ``reaches`` CTE holds the planned campaigns' reach of shared persons
    # (``_person_reaches``): a record's planned messages are its person's.
    person_reaches: bool = False

    def __call__(self, contacts: QuerySet[Contact]) -> tuple[str, list]:
        planned, rules, when = self.planned, self.rules, self.when
        reach = {
            f"reach_{i}": Case(
                When(_competitor_reaches(o), then=1), default=0, output_field=IntegerField()
            )
            for i, o in enumerate(planned)
        }
        inner = (
            contacts.annotate(
                base_reason=Case(
                    *gate_cases(self.campaign, self.suppressed_people),
                    default=Value(""),
                    output_field=CharField(),
                ),
                **reach,
            )
            .order_by()
            .values(
                "id",
                "unit_id",
                *(["unit_path"] if self.paths else []),
                *(["created_at"] if self.dated else []),
                "base_reason",
                *reach,
            )
        )
        sql, params = inner.query.sql_with_params()
        if connection.vendor == "postgresql":
            # A fence: PostgreSQL would pull the sub-query up and evaluate its CASE once for
            # each mention of base_reason and reach_i outside; kept, it runs in the parallel
            # workers.
            sql += " OFFSET 0"
        flags = "".join(f", sub.reach_{i}" for i in range(len(planned)))
        path = ", sub.unit_path" if self.paths else ""
        path += ", sub.created_at" if self.dated else ""
        # Hand-written SQL around the ORM's: only column names and placeholders are formatted.
        if not rules:
            return (
                f"SELECT sub.id, sub.unit_id{path}, "  # noqa: S608
                f"sub.base_reason AS reason{flags} FROM ({sql}) sub",
                list(params),
            )
        words = "".join(f", loads.word_{w}" for w in range(-(-len(self.ledger) // WORD_BITS)))
        # A planned campaign reaches the person when it reaches any of their records.
        person_reach = [
            f"COALESCE(reaches.reach_{i}, sub.reach_{i})"
            if self.person_reaches
            else f"sub.reach_{i}"
            for i in range(len(planned))
        ]
        flags = "".join(f", {term} AS reach_{i}" for i, term in enumerate(person_reach))
        over, over_params = [], []
        for index, rule in enumerate(rules):
            terms = "".join(
                f" + {person_reach[i]}"
                for i, o in enumerate(planned)
                if _inside(o, when, rule.window_days)
            )
            over.append(f"COALESCE(loads.load_{index}, 0){terms} >= %s")
            over_params.append(rule.max_messages)
        reaches = " LEFT JOIN reaches ON reaches.contact_id = sub.id" if self.person_reaches else ""
        return (
            f"SELECT sub.id, sub.unit_id{path}, "  # noqa: S608
            f"COALESCE(NULLIF(sub.base_reason, ''), "
            f"CASE WHEN {' OR '.join(over)} THEN 'pressure' ELSE '' END) AS reason{words}{flags} "
            f"FROM ({sql}) sub LEFT JOIN loads ON loads.contact_id = sub.id{reaches}",
            [*over_params, *params],
        )


def _one_per_person(
    campaign: Campaign,
    classification: Classification,
    build: _Rows,
    contacts: QuerySet[Contact],
    handoff_ids: list[int] | None,
) -> None:
    """Make ``classification`` a national campaign's: one message a person.

    Of a person's records that pass every gate themselves (their own consent, suppression,
    pressure…), the first by HQ's rule (``identity.sending.ranking``) is kept; the others
    end ``other_unit``, with ``via_unit`` the unit that sends instead. Records whose person
    has no other pass through a ``UNION ALL`` as classified; the records of shared persons
    (a fifth of a network at most) are classified again on their own and ranked by a
    window. Rejected, both measured on 200,000 contacts: keeping the whole classification
    (a materialised CTE) to rank part of it, and joining the whole audience back to its
    ranked part, each cost more than this second, small pass. At hand-off a record also
    yields to a record of its person this campaign already sent to (records linked after
    the freeze)."""
    rule = by_person.sending_store_rule(campaign.owner_path[: OrgNode.steplen])
    rows, rows_params = classification.sql, classification.params
    # Hand-written SQL: ``shared`` is the CTE ``classified`` defines.
    sharing, sharing_params = build(
        contacts.filter(id__in=RawSQL("SELECT contact_id FROM shared", []))  # noqa: S611
    )
    columns = ["id", "unit_id", *(["unit_path"] if build.paths else [])]
    columns += (
        [f"word_{w}" for w in range(-(-len(build.ledger) // WORD_BITS))] if build.rules else []
    )
    columns += [f"reach_{i}" for i in range(len(build.planned))]
    yields = "d.place > 1"
    via = "CASE WHEN d.place > 1 THEN d.first_unit END"
    sent, sent_params = "", []
    if handoff_ids is not None:
        recipients = Recipient._meta.db_table
        sent = (
            f"LEFT JOIN (SELECT sh.person_id AS person, MIN(r.unit_id) AS unit_id "  # noqa: S608
            f"FROM {recipients} r JOIN shared sh ON sh.contact_id = r.contact_id "
            "WHERE r.campaign_id = %s AND r.status = 'sent' GROUP BY sh.person_id) s "
            "ON s.person = d.person_id "
        )
        sent_params = [campaign.pk]
        yields = f"({yields} OR s.person IS NOT NULL)"
        via = "COALESCE(s.unit_id, CASE WHEN d.place > 1 THEN d.first_unit END)"
    ranked = (
        "SELECT x.*, sh.person_id, ROW_NUMBER() OVER w AS place, "  # noqa: S608
        "FIRST_VALUE(x.unit_id) OVER w AS first_unit "
        f"FROM ({sharing}) x JOIN shared sh ON sh.contact_id = x.id WHERE x.reason = '' "
        f"WINDOW w AS (PARTITION BY sh.person_id ORDER BY {by_person.ranking(rule, 'x')})"
    )
    classification.sql = (
        f"SELECT {', '.join(f'c.{c}' for c in columns)}, c.reason, NULL AS via_unit "  # noqa: S608
        f"FROM ({rows}) c WHERE c.reason <> '' OR c.id NOT IN (SELECT contact_id FROM shared) "
        "UNION ALL "
        f"SELECT {', '.join(f'd.{c}' for c in columns)}, "
        f"CASE WHEN {yields} THEN '{Reason.OTHER_UNIT.value}' ELSE '' END, "
        f"CASE WHEN {yields} THEN {via} END FROM ({ranked}) d {sent}"
    )
    classification.params = [*rows_params, *sharing_params, *sent_params]
    classification.one_per_person = True


def _ledger_campaigns(campaign: Campaign, since: dt.datetime) -> list[int]:
    """The campaigns whose sent (or pending) rows may count against the caps since ``since``."""
    return list(
        Campaign.objects.filter(channel=campaign.channel, status__in=HAS_SENT)
        .filter(Q(finished_at__isnull=True) | Q(finished_at__gt=since))
        .exclude(pk=campaign.pk)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _loads(campaign, when, rules, planned, launched, ledger, only=None) -> tuple[str, list]:
    """``loads(contact_id, person, load_0, …, word_0, …)`` (CTEs that read ``shared``): per person, the messages to any of their
    records inside each cap's window (those sent on the channel, and those a running
    competitor has still to send) and which campaigns they came from, as bit sets. A record
    that shares its person with no other is its own (minus its id, as ``_Rows`` keys it). Only persons that
    the planned competitors could push over a cap are kept: in a real ledger most people had
    one message, and the hash join then holds a fraction of them.

    Bit sets rather than a list of ids: ``string_agg`` cannot aggregate in parallel on
    PostgreSQL 15, ``bit_or`` can (SQLite has no ``bit_or``; a sum of distinct powers of two
    is the same set). Each ledger row finds its bit by a hash join on a small table."""
    columns, params, could, could_params = [], [], [], []
    for index, rule in enumerate(rules):
        inside = [o.pk for o in launched if _inside(o, when, rule.window_days)]
        load = (
            f"COUNT(*) FILTER (WHERE (r.status = 'sent' AND r.sent_at > %s) "
            f"OR (r.status = 'pending' AND r.campaign_id IN ({_placeholders(inside)})))"
        )
        load_params = [_db_time(when - dt.timedelta(days=rule.window_days)), *inside]
        columns.append(f"{load} AS load_{index}")
        params += load_params
        could.append(f"{load} >= %s")
        could_params += [
            *load_params,
            rule.max_messages - sum(_inside(o, when, rule.window_days) for o in planned),
        ]
    bits, join = [], ""
    if ledger:
        union = " UNION ALL ".join(
            ["SELECT %s AS campaign_id, %s AS word, %s AS bit"] * len(ledger)
        )
        params_bits = [
            v for i, pk in enumerate(ledger) for v in (pk, i // WORD_BITS, 1 << (i % WORD_BITS))
        ]
        join = f"LEFT JOIN ({union}) bits ON bits.campaign_id = r.campaign_id "
        either = "bit_or(bits.bit" if connection.vendor == "postgresql" else "SUM(DISTINCT bits.bit"
        bits = [
            f"{either}) FILTER (WHERE bits.word = {w}) AS word_{w}"
            for w in range(-(-len(ledger) // WORD_BITS))
        ]
    else:
        params_bits = []
    ids = [o.pk for o in launched]
    since = when - dt.timedelta(days=max(r.window_days for r in rules))
    table = Recipient._meta.db_table
    # ``only``: a hand-off's few contacts and their persons' other records (``shared`` holds
    # these at hand-off), found through the (contact, channel, sent_at) index.
    contacts = (
        f"AND r.contact_id IN (SELECT contact_id FROM shared UNION SELECT c.id FROM "  # noqa: S608
        f"{Contact._meta.db_table} c WHERE c.id IN ({_placeholders(only)})) "
        if only is not None
        else ""
    )
    person = "COALESCE(sh.person_id, -r.contact_id)"
    # Materialised on PostgreSQL: inlined, a planner that guessed one contact row (fresh
    # statistics are rare right after an import, and row security hides the rest) put the
    # aggregate on the inner side of a nested loop and ran it once per contact: 40 s for
    # 1,200 contacts of the demo. Computed once, it is hash-joined.
    return (
        f"person_loads AS {_materialized()}(SELECT {person} AS person, {', '.join(columns + bits)} "  # noqa: S608
        f"FROM {table} r LEFT JOIN shared sh ON sh.contact_id = r.contact_id "
        f"{join}WHERE r.channel = %s AND r.campaign_id <> %s {contacts}"
        f"AND ((r.status = 'sent' AND r.sent_at > %s) OR (r.status = 'pending' AND r.campaign_id IN ({_placeholders(ids)}))) "
        f"GROUP BY {person} HAVING {' OR '.join(could)}), "
        # Back to records: every record of each person kept (a record alone is -person).
        f"loads AS {_materialized()}(SELECT COALESCE(sh.contact_id, -p.person) AS contact_id, "
        "p.* FROM person_loads p LEFT JOIN shared sh ON sh.person_id = p.person) ",
        [
            *params,
            *params_bits,
            campaign.channel,
            campaign.pk,
            *(only or []),
            _db_time(since),
            *ids,
            *could_params,
        ],
    )


@contextmanager
def _big_statement():
    """PostgreSQL settings for one statement over a whole network's contacts.

    No JIT: it spent two seconds compiling a two-second query. Room to hash the ledger in
    memory. No sorts: row-level security hides from the planner how many contacts the
    scope lets through (it guesses 3 %), so it sorted a million rows to group them where a
    hash aggregate takes a third of the time."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
                cursor.execute("SET LOCAL work_mem = '64MB'")
                cursor.execute("SET LOCAL enable_sort = off")
                # No nested loops: with no statistics yet (a database just loaded, autovacuum
                # not run) the planner guessed one contact and joined the pressure loads to
                # every contact by a loop over all of them: 4 s for 1,600 contacts of the demo
                # where the hash join takes 0.1 s. A network's audience is never a few rows.
                cursor.execute("SET LOCAL enable_nestloop = off")
        yield


def unit_cost(campaign: Campaign, target: Target, policy: SendingPolicy) -> tuple[Decimal, int]:
    """(cost of one message for this unit, SMS segments per message)."""
    if campaign.channel == Channel.EMAIL:
        return pricing.cost(policy, channel=campaign.channel, messages=1), 0
    version = campaign.template.current
    values = target.local_version.values if target.local_version else {}
    segments = measure(sms_preview(version, values, target.unit)).segments if version else 1
    segments = pricing.billed_segments(segments)
    return pricing.cost(policy, channel=campaign.channel, messages=1, segments=segments), segments


def _day_range(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The instants from ``start`` 00:00 to the end of ``end``, in the current time zone: a
    range the ``(unit, sent_at)`` index answers (``sent_at__date`` cast every row)."""
    return (
        timezone.make_aware(dt.datetime.combine(start, dt.time.min)),
        timezone.make_aware(dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min)),
    )


def spent_by_budget(budgets, policy: SendingPolicy) -> dict[int, Decimal]:
    """What each budget's unit has paid for sent messages in the budget's period (HQ's share
    of relays excluded), for many budgets in one statement: ``{budget.pk: amount}``.

    The rules page used to ask once per budget with ``sent_at__date`` ranges, which no index
    answers: each budget read the whole ledger (15–25 s for the demo's page on a busy machine).
    """
    budgets = list(budgets)
    if not budgets:
        return {}
    which = []
    matches = Q()
    for budget in budgets:
        since, until = _day_range(budget.starts_on, budget.ends_on)
        test = Q(unit_id=budget.unit_id, sent_at__gte=since, sent_at__lt=until)
        which.append(When(test, then=Value(budget.pk)))
        matches |= test
    rows = (
        Recipient.objects.filter(matches, status=Recipient.Status.SENT)
        .annotate(budget_id=Case(*which, output_field=IntegerField()))
        .order_by()
        .values("budget_id", "channel", "campaign__kind")
        .annotate(n=Count("id"), segments=Sum(pricing.BILLED_SEGMENTS))
    )
    totals = dict.fromkeys((b.pk for b in budgets), Decimal("0"))
    for row in rows:
        if row["budget_id"] is None:
            continue
        totals[row["budget_id"]] += pricing.paid_by_unit(
            policy,
            channel=row["channel"],
            messages=row["n"],
            segments=row["segments"] or 0,
            national=row["campaign__kind"] == Campaign.Kind.NATIONAL,
        )
    return totals


def spent(unit: OrgNode, start: dt.date, end: dt.date, policy: SendingPolicy) -> Decimal:
    """What the unit has paid for sent messages in the period (HQ's share of relays excluded)."""
    period = Budget(pk=0, unit=unit, starts_on=start, ends_on=end)
    return spent_by_budget([period], policy)[0]


def preview(campaign: Campaign, when: dt.datetime | None = None) -> Preview:
    when = when or campaign.send_at or timezone.now()
    result = Preview(when=when, opted_out_units=opted_out_units(campaign))
    chosen = targets(campaign)
    result.units = len(chosen)
    if not chosen:
        return result
    policy = policy_for(campaign.owner)
    classification = classified(campaign, candidates(campaign, [t.unit for t in chosen]), when)
    elsewhere_of: dict[int, dict[int, int]] = {}
    per_unit, sources = _counts(classification, elsewhere_of)
    exclusions = dict.fromkeys(REASONS, 0)
    window = sms_window(policy)
    network = _network(campaign)
    for target in chosen:
        counts = per_unit.get(target.unit.pk, {})
        line = UnitCount(target.unit, target.local_version)
        line.elsewhere = elsewhere_of.get(target.unit.pk, {})
        result.per_unit.append(line)
        line.candidates = sum(counts.values())
        result.candidates += line.candidates
        for reason, n in counts.items():
            if reason:
                exclusions[reason] += n
                line.exclusions[reason] = n
        sendable = counts.get("", 0)
        if not sendable:
            continue
        each, _segments = unit_cost(campaign, target, policy)
        affordable, budget = _budget(campaign, target, policy, when, each, sendable)
        if budget is not None:
            result.budgets.append(budget)
        exclusions["over_budget"] += sendable - affordable
        if sendable > affordable:
            line.exclusions["over_budget"] = sendable - affordable
        result.recipients += affordable
        line.recipients = affordable
        cost = each * affordable
        hq = pricing.hq_share(cost, target.hq_share_percent)
        line.cost, line.hq_cost = cost, hq
        result.cost += cost
        result.hq_cost += hq
        if campaign.channel == Channel.SMS and not campaign.is_transactional:
            tz = unit_time_zone(target.unit, network=network)
            if not window.allows(when, tz):
                result.deferred.append(
                    {
                        "unit": target.unit,
                        "count": affordable,
                        "until": window.next_allowed(when, tz),
                    }
                )
    result.exclusions = {k: v for k, v in exclusions.items() if v}
    result.pressure_sources = sources
    return result


def _counts(
    classification: Classification, elsewhere_of: dict[int, dict[int, int]]
) -> tuple[dict[int, dict[str, int]], list[tuple[str, int]]]:
    """Contacts per (unit, reason), and how many of those lost to pressure each other campaign
    reaches (the ledger's and the planned ones'), in one pass. ``elsewhere_of`` receives,
    per unit, the units its ``other_unit`` contacts receive the campaign from."""
    planned, words = classification.planned, classification.words
    flags = "".join(f", SUM(c.reach_{i})" for i in range(len(planned)))
    bits = "".join(f", CASE WHEN c.reason = 'pressure' THEN c.word_{w} END" for w in range(words))
    via = "c.via_unit" if classification.one_per_person else "NULL"
    groups = ", ".join(str(n) for n in range(1, 4 + words))
    query = (
        f"{classification.ctes}SELECT c.unit_id, c.reason, {via}{bits}, COUNT(*){flags} "  # noqa: S608
        f"FROM ({classification.sql}) c GROUP BY {groups}"
    )
    per_unit: dict[int, dict[str, int]] = {}
    by_campaign: dict[int, int] = {}
    reached = [0] * len(planned)
    with _big_statement(), connection.cursor() as cursor:
        cursor.execute(query, [*classification.cte_params, *classification.params])
        rows = cursor.fetchall()
    for unit_id, reason, via_unit, *rest in rows:
        row_words, (n, *reach) = rest[:words], rest[words:]
        counts = per_unit.setdefault(unit_id, {})
        counts[reason] = counts.get(reason, 0) + n
        if via_unit is not None:
            elsewhere = elsewhere_of.setdefault(unit_id, {})
            elsewhere[via_unit] = elsewhere.get(via_unit, 0) + n
        if reason == "pressure":
            for pk in classification.campaign_ids(row_words):
                by_campaign[pk] = by_campaign.get(pk, 0) + n
            reached = [a + (b or 0) for a, b in zip(reached, reach, strict=True)]
    names = dict(Campaign.objects.filter(pk__in=by_campaign).values_list("pk", "name"))
    sources = [(names[pk], n) for pk, n in by_campaign.items() if pk in names]
    sources += [(other.name, n) for other, n in zip(planned, reached, strict=True) if n]
    return per_unit, sorted(sources, key=lambda s: (-s[1], s[0]))


def _budget(campaign, target, policy, when, each, sendable) -> tuple[int, dict | None]:
    """How many of ``sendable`` messages the unit can pay for, and its budget line (if any)."""
    budget = budget_for(target.unit, when.date())
    if budget is None or each == 0:
        return sendable, None
    unit_each = pricing.unit_share(each, target.hq_share_percent)
    remaining = budget.amount - spent(target.unit, budget.starts_on, budget.ends_on, policy)
    needed = unit_each * sendable
    over = needed > remaining
    line = {
        "unit": target.unit,
        "budget": budget.amount,
        "remaining": remaining,
        "needed": needed.quantize(Decimal("0.01")),
        "over": over,
    }
    if not over or campaign.budget_override:
        return sendable, line
    return (max(0, int(remaining / unit_each)) if unit_each else sendable), line


def _network(campaign: Campaign) -> Network | None:
    """The network whose time zone an SMS campaign's units without one of their own use."""
    if campaign.channel != Channel.SMS:
        return None
    return getattr(root_of(campaign.owner), "network", None)


def freeze(campaign: Campaign, when: dt.datetime) -> int:
    """Write one ledger row per candidate: pending, or skipped with its reason. Idempotent."""
    chosen = targets(campaign)
    if not chosen:
        return 0
    policy = policy_for(campaign.owner)
    classification = classified(
        campaign, candidates(campaign, [t.unit for t in chosen]), when, paths=True
    )
    table = Recipient._meta.db_table
    with _big_statement(), connection.cursor() as cursor:
        cursor.execute(
            f"{classification.ctes}INSERT INTO {table} (campaign_id, contact_id, unit_id, unit_path, channel, status, reason, detail, "  # noqa: S608
            "lease_owner, attempts, ambiguous_count, segments, feedback) "
            f"SELECT %s, sub.id, sub.unit_id, sub.unit_path, %s, "
            "CASE WHEN sub.reason = '' THEN 'pending' ELSE 'skipped' END, sub.reason, '', '', 0, 0, 0, '' "
            f"FROM ({classification.sql}) sub WHERE true ON CONFLICT DO NOTHING",
            [*classification.cte_params, campaign.pk, campaign.channel, *classification.params],
        )
    window = sms_window(policy)
    network = _network(campaign)
    # Every unit's count in one pass over the campaign's ledger, not one pass per unit.
    pending = dict(
        Recipient.objects.filter(campaign=campaign, status=Recipient.Status.PENDING)
        .order_by()
        .values_list("unit_id")
        .annotate(n=Count("id"))
    )
    for target in chosen:
        sendable = pending.get(target.unit.pk, 0)
        if not sendable:
            continue
        rows = Recipient.objects.filter(
            campaign=campaign, unit=target.unit, status=Recipient.Status.PENDING
        )
        each, segments = unit_cost(campaign, target, policy)
        if segments:
            rows.update(segments=segments)
        affordable = _budget(campaign, target, policy, when, each, sendable)[0]
        if affordable < sendable:
            cut = list(rows.order_by("-id").values_list("id", flat=True)[: sendable - affordable])
            Recipient.objects.filter(pk__in=cut).update(
                status=Recipient.Status.SKIPPED, reason="over_budget"
            )
        if campaign.channel == Channel.SMS and not campaign.is_transactional:
            tz = unit_time_zone(target.unit, network=network)
            if not window.allows(when, tz):
                rows.update(not_before=window.next_allowed(when, tz))
    return Recipient.objects.filter(campaign=campaign).count()
