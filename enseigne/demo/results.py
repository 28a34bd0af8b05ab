"""A year of results for the demo network, so every chart and ranking has data.

Past campaigns (national relays and each unit's own e-mail and SMS campaigns) get a
ledger and the events a real year would have left: sent, bounced, opened (some by mail
scanners), clicked (on two or three links), unsubscribed, and sales credited to clicks.
Lyon is the strong unit; Marseille is weak on SMS (few clicks, many STOPs); Lille has one
outstanding local campaign that the gallery shows to everyone. The rollups are then
built from these events the way the worker builds them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from enseigne.analytics import rollups
from enseigne.brand.models import Template
from enseigne.brand.services import local_version_save
from enseigne.campaigns.models import Campaign, Recipient, Relay
from enseigne.contacts.models import VALID_CONSENT, Contact
from enseigne.delivery import events
from enseigne.delivery.models import Event, Link
from enseigne.lib.bulk import bulk_insert
from enseigne.network.models import OrgNode, User
from enseigne.tracking.models import Conversion

K = Event.Kind
LEDGER_FIELDS = (
    "campaign",
    "contact",
    "unit",
    "unit_path",
    "channel",
    "status",
    "reason",
    "detail",
    "lease_owner",
    "attempts",
    "ambiguous_count",
    "segments",
    "sent_at",
    "feedback",
)
S = Campaign.Status


@dataclass(frozen=True)
class Profile:
    """How a unit's customers respond (rates per delivered message; sales per clicker)."""

    open: float = 0.38
    click: float = 0.045
    unsubscribe: float = 0.003
    sms_click: float = 0.07
    sms_stop: float = 0.01
    buy: float = 0.18
    basket: float = 65.0


PROFILES = {
    "lyon": Profile(
        open=0.49,
        click=0.095,
        unsubscribe=0.0015,
        sms_click=0.13,
        sms_stop=0.004,
        buy=0.3,
        basket=88,
    ),
    "marseille": Profile(
        open=0.35, click=0.04, sms_click=0.015, sms_stop=0.045, buy=0.14, basket=58
    ),
    "nantes": Profile(open=0.42, click=0.06, sms_click=0.09, buy=0.2, basket=70),
    "rouen": Profile(
        open=0.33, click=0.032, unsubscribe=0.005, sms_click=0.06, buy=0.15, basket=55
    ),
}
NATIONALS = [
    (350, "Soldes d'hiver"),
    (310, "Saint-Valentin : lumières tamisées"),
    (270, "Printemps déco"),
    (225, "Fête des mères"),
    (190, "Jardin et terrasse"),
    (120, "Rentrée cocooning"),
    (85, "Nouvelle collection luminaires"),
    (40, "Journées portes ouvertes"),
    (5, "Black Friday"),
]
LOCAL_EMAIL = [
    "Atelier déco du samedi",
    "Vente privée clients fidèles",
    "Nocturne shopping",
    "Nouveautés textiles",
    "Soirée des créateurs",
    "Inauguration de l'espace luminaires",
    "Brocante déco",
    "Atelier couronnes",
    "Semaine du linge de maison",
    "Après-midi conseils couleurs",
    "Vide-vitrine",
    "Goûter des enfants",
]
LOCAL_SMS = [
    "Flash week-end",
    "Dernier jour des soldes",
    "Rappel soirée privée",
    "Retrait click & collect prolongé",
    "Vente flash luminaires",
    "Ouverture exceptionnelle dimanche",
]
STANDOUT = "Atelier bougies parfumées"
LINKS = [
    "https://www.maison-lumiere.test/collection",
    "https://www.maison-lumiere.test/magasins/{code}",
    "https://www.maison-lumiere.test/offres",
]


def seed_results(
    units: dict[str, OrgNode], users: dict[str, User], domain: str, *, seed: int = 2026
) -> dict:
    rng = random.Random(seed)
    now = timezone.now()
    reachable = _reachable(units.values())
    templates = {t.name: t for t in Template.objects.all()}
    plans = _plan(rng, units, users, templates, now, domain)
    ledger = []
    for campaign, unit, when, _profile in plans:
        audience = [c for c, created in reachable[(unit.pk, campaign.channel)] if created < when]
        share = 0.75 if campaign.is_national else 0.9
        for contact_id in rng.sample(audience, k=int(len(audience) * share)):
            ledger.append(
                (
                    campaign.pk,
                    contact_id,
                    unit.pk,
                    unit.path,
                    campaign.channel,
                    Recipient.Status.SENT,
                    "",
                    "",
                    "",
                    1,
                    0,
                    1 if campaign.channel == "sms" else 0,
                    when + dt.timedelta(minutes=rng.randint(1, 20)),
                    "",
                )
            )
    bulk_insert(Recipient, LEDGER_FIELDS, ledger)
    totals = Counter()
    rows: list[events.Row] = []
    sales: list[Conversion] = []
    by_key = defaultdict(list)
    for recipient in (
        Recipient.objects.filter(campaign__in=[p[0] for p in plans])
        .values_list("id", "campaign_id", "unit_id", "contact_id", "sent_at")
        .order_by("id")
    ):
        by_key[(recipient[1], recipient[2])].append(recipient)
    for campaign, unit, _when, profile in plans:
        links = _links(campaign, unit)
        for recipient_id, _c, _u, contact_id, sent_at in by_key[(campaign.pk, unit.pk)]:
            _simulate(
                rng,
                rows,
                sales,
                totals,
                campaign,
                unit,
                profile,
                links,
                recipient_id,
                contact_id,
                sent_at,
                now,
            )
    events.write(rows)
    Conversion.objects.bulk_create(sales, batch_size=5000)
    for campaign_id, total in Counter(entry[0] for entry in ledger).items():
        Campaign.objects.filter(pk=campaign_id).update(recipient_total=total)
    # The two campaigns of the demo's main story (finished earlier by seed_campaigns) get results too.
    _story_results(rng, units, totals=totals, now=now)
    rollups.rebuild_base_history(now.date() - dt.timedelta(days=365), timezone.localdate())
    rollups.refresh()
    return {
        "past_campaigns": len({p[0].pk for p in plans}),
        "events": sum(totals.values()),
        "sales": Conversion.objects.count(),
    }


def _reachable(units) -> dict[tuple[int, str], list[tuple[int, dt.datetime]]]:
    """(unit, channel) → contacts that may receive it, with when they joined."""
    out: dict[tuple[int, str], list[tuple[int, dt.datetime]]] = defaultdict(list)
    for pk, unit_id, created, email, sms in (
        Contact.objects.filter(unit__in=list(units))
        .values_list("pk", "unit_id", "created_at", "email_consent", "sms_consent")
        .order_by("pk")
    ):
        if email in VALID_CONSENT:
            out[(unit_id, "email")].append((pk, created))
        if sms in VALID_CONSENT:
            out[(unit_id, "sms")].append((pk, created))
    return out


def _at(now: dt.datetime, days_ago: int, hour: int) -> dt.datetime:
    day = timezone.localtime(now - dt.timedelta(days=days_ago))
    while day.weekday() == 6:  # nobody sends on Sundays here
        day -= dt.timedelta(days=1)
    return day.replace(hour=hour, minute=0, second=0, microsecond=0)


def _plan(rng, units, users, templates, now, domain):
    """The past campaigns: (campaign, sending unit, when, profile) per unit that sent it."""
    marketer = users[f"marketing@{domain}"]
    plans = []
    made = []
    for days_ago, name in NATIONALS:
        when = _at(now, days_ago, 10)
        campaign = Campaign(
            kind=Campaign.Kind.NATIONAL,
            channel="email",
            name=name,
            owner=_root(units),
            owner_path=_root(units).path,
            template=templates["Promotion de saison"],
            status=S.FINISHED,
            send_at=when,
            scheduled_at=when - dt.timedelta(days=10),
            launched_at=when,
            frozen_at=when,
            finished_at=when + dt.timedelta(minutes=30),
            created_by=marketer,
            decided_by=marketer,
            decided_at=when - dt.timedelta(days=10),
        )
        made.append((campaign, when, None))
    for code, unit in units.items():
        is_lyon = code == "lyon"
        email_count = 12 if is_lyon else rng.randint(4, 6)
        sms_count = 6 if code in ("lyon", "marseille") else rng.randint(2, 3)
        for i, name in enumerate(rng.sample(LOCAL_EMAIL, email_count)):
            when = _at(now, rng.randint(8, 340), 10 + i % 3)
            made.append(
                (
                    _local(
                        unit,
                        "email",
                        f"{name} · {unit.profile.city}",
                        templates["Invitation à un événement en magasin"],
                        when,
                        users,
                    ),
                    when,
                    unit,
                )
            )
        for name in rng.sample(LOCAL_SMS, sms_count):
            when = _at(now, rng.randint(8, 340), 11)
            made.append(
                (
                    _local(
                        unit,
                        "sms",
                        f"{name} · {unit.profile.city}",
                        templates["SMS promo flash"],
                        when,
                        users,
                    ),
                    when,
                    unit,
                )
            )
    lille = units["lille"]
    standout_when = _at(now, 33, 10)
    made.append(
        (
            _local(
                lille,
                "email",
                f"{STANDOUT} · {lille.profile.city}",
                templates["Invitation à un événement en magasin"],
                standout_when,
                users,
            ),
            standout_when,
            lille,
        )
    )
    Campaign.objects.bulk_create([m[0] for m in made], batch_size=500)
    for campaign, when, _unit in made:
        Campaign.objects.filter(pk=campaign.pk).update(created_at=when - dt.timedelta(days=12))
    _standout_content(made[-1][0], lille, users, domain)
    _past_words([(c, u) for c, _when, u in made[:-1] if u is not None], users, domain)
    relays = []
    for campaign, when, unit in made:
        if unit is not None:
            plans.append((campaign, unit, when, _profile(unit, campaign)))
            continue
        for code, each in units.items():
            relayed = rng.random() < (
                1.0 if code == "lyon" else 0.55 if code == "marseille" else 0.85
            )
            relays.append(
                Relay(
                    campaign=campaign,
                    unit=each,
                    unit_path=each.path,
                    status=Relay.Status.RELAYED if relayed else Relay.Status.OPTED_OUT,
                    decided_at=when - dt.timedelta(days=rng.randint(2, 8)),
                )
            )
            if relayed:
                plans.append((campaign, each, when, PROFILES.get(code, Profile())))
    Relay.objects.bulk_create(relays, batch_size=500)
    return plans


def _root(units) -> OrgNode:
    return OrgNode.objects.get(path=next(iter(units.values())).path[: OrgNode.steplen])


def _local(unit, channel, name, template, when, users) -> Campaign:
    manager = next((u for e, u in users.items() if e.startswith(f"{unit.code}@")), None)
    return Campaign(
        kind=Campaign.Kind.LOCAL,
        channel=channel,
        name=name,
        owner=unit,
        owner_path=unit.path,
        template=template,
        status=S.FINISHED,
        send_at=when,
        scheduled_at=when - dt.timedelta(days=5),
        launched_at=when,
        frozen_at=when,
        finished_at=when + dt.timedelta(minutes=10),
        created_by=manager,
    )


def _profile(unit: OrgNode, campaign: Campaign) -> Profile:
    profile = PROFILES.get(unit.code, Profile())
    if campaign.name.startswith(STANDOUT):
        return Profile(open=0.58, click=0.16, unsubscribe=0.001, buy=0.35, basket=42)
    return profile


def _standout_content(campaign: Campaign, lille: OrgNode, users, domain) -> None:
    """Lille's best campaign carries its own words, for the gallery to show and copy."""
    version = local_version_save(
        actor=users[f"lille@{domain}"],
        unit=lille,
        template=campaign.template,
        name=STANDOUT,
        values={
            "event_name": "Atelier bougies parfumées",
            "event_when": "Samedi 15 h – 17 h",
            "details": "<div>Composez votre bougie avec notre parfumeur : cire de soja, mèche en coton, "
            "trois senteurs au choix. <strong>Places limitées à 12</strong>, "
            "inscription en magasin ou par téléphone.</div>",
        },
    )
    Campaign.objects.filter(pk=campaign.pk).update(local_version=version)


DAYS_FR = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]


def _past_words(campaigns, users, domain) -> None:
    """Each past local campaign sent its own words (the templates' required zones filled
    in), so that the gallery shows them and a store can start from any of them."""
    versions = {}
    for campaign, unit in campaigns:
        base = campaign.name.split(" · ")[0]
        when = timezone.localtime(campaign.send_at)
        day = f"{DAYS_FR[when.weekday()].capitalize()} {when.day}, {15 + when.day % 4} h"
        if campaign.channel == "sms":
            values = {"message": f"{base} : -20 % sur une sélection, ce week-end !"[:110]}
        else:
            values = {
                "event_name": base[:60],
                "event_when": day,
                "details": f"<div>{base} : conseils de l'équipe, nouveautés et un verre offert. "
                "<strong>Entrée libre</strong>, sur inscription en magasin.</div>",
            }
        actor = next((u for e, u in users.items() if e.startswith(f"{unit.code}@")), None)
        version = local_version_save(
            actor=actor or users[f"siege@{domain}"],
            unit=unit,
            template=campaign.template,
            values=values,
            name=campaign.name[:200],
        )
        versions[campaign.pk] = version.pk
    for pk, version_pk in versions.items():
        Campaign.objects.filter(pk=pk).update(local_version_id=version_pk)


def _links(campaign: Campaign, unit: OrgNode) -> list[int]:
    made = []
    for position, url in enumerate(LINKS[: 2 if campaign.channel == "sms" else 3], 1):
        url = url.format(code=unit.code)
        link, _ = Link.objects.get_or_create(
            campaign=campaign,
            unit=unit,
            url_hash=hashlib.sha256(url.encode()).hexdigest()[:32],
            defaults={"unit_path": unit.path, "url": url, "position": position},
        )
        made.append(link.pk)
    return made


def _simulate(
    rng, rows, sales, totals, campaign, unit, profile, links, recipient_id, contact_id, sent_at, now
):
    """What one message did."""

    def add(kind, when, **extra):
        if when <= now:
            rows.append(
                events.row(
                    occurred_at=when,
                    kind=kind,
                    channel=campaign.channel,
                    campaign_id=campaign.pk,
                    unit_id=unit.pk,
                    unit_path=unit.path,
                    **extra,
                )
            )
            totals[kind] += 1

    add(K.SENT, sent_at, recipient_id=recipient_id)
    sms = campaign.channel == "sms"
    if not sms and rng.random() < 0.008:
        add(
            K.BOUNCED, sent_at + dt.timedelta(minutes=rng.randint(1, 30)), recipient_id=recipient_id
        )
        return
    later = sent_at + dt.timedelta(minutes=rng.randint(2, 60 * 48))
    if not sms and rng.random() < profile.open:
        add(K.OPENED, later, machine=rng.random() < 0.1)
    if rng.random() < (profile.sms_click if sms else profile.click):
        clicks = rng.choice((1, 1, 1, 2, 3))
        last = later
        for _ in range(clicks):
            last = last + dt.timedelta(minutes=rng.randint(0, 600))
            add(K.CLICKED, last, recipient_id=recipient_id, link_id=rng.choice(links))
        if rng.random() < profile.buy and contact_id:
            when = last + dt.timedelta(hours=rng.randint(1, 96))
            if when <= now:
                amount = Decimal(str(round(rng.lognormvariate(0, 0.45) * profile.basket, 2)))
                sales.append(
                    Conversion(
                        order_id=f"DEMO-{campaign.pk}-{recipient_id}",
                        unit=unit,
                        unit_path=unit.path,
                        contact_id=contact_id,
                        amount=amount,
                        occurred_at=when,
                        campaign_id=campaign.pk,
                        channel=campaign.channel,
                        source=Conversion.Source.DEMO,
                    )
                )
                add(K.CONVERTED, when, recipient_id=recipient_id, amount=amount)
    if rng.random() < (profile.sms_stop if sms else profile.unsubscribe):
        add(K.UNSUBSCRIBED, later + dt.timedelta(minutes=5), recipient_id=recipient_id)
    if not sms and rng.random() < 0.0004:
        add(K.COMPLAINED, later + dt.timedelta(minutes=9), recipient_id=recipient_id)


def _story_results(rng, units, *, totals, now) -> None:
    """Events for the campaigns seed_campaigns finished in the past (the summer sales, Lyon's workshops)."""
    rows: list[events.Row] = []
    sales: list[Conversion] = []
    for campaign in Campaign.objects.filter(status=S.FINISHED, recipient_total__gt=0).exclude(
        pk__in=Event.objects.filter(kind=K.SENT).values("campaign_id")
    ):
        for unit in OrgNode.objects.filter(
            pk__in=Recipient.objects.filter(campaign=campaign).values("unit_id")
        ):
            links = _links(campaign, unit)
            for recipient_id, contact_id, sent_at in Recipient.objects.filter(
                campaign=campaign, unit=unit, status=Recipient.Status.SENT
            ).values_list("id", "contact_id", "sent_at"):
                _simulate(
                    rng,
                    rows,
                    sales,
                    totals,
                    campaign,
                    unit,
                    PROFILES.get(unit.code, Profile()),
                    links,
                    recipient_id,
                    contact_id,
                    sent_at,
                    now,
                )
    events.write(rows)
    Conversion.objects.bulk_create(sales, batch_size=5000)
