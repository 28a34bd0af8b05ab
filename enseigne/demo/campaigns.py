"""Demo campaigns: past national and local ones with results, a national one waiting for
relays, a local one waiting for approval, dated drafts (Lyon's SMS and e-mail, a national
one) for the calendar; rules, pressure caps, budgets."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from django.utils import timezone

from enseigne.brand.models import LocalVersion, Template
from enseigne.campaigns import audience, services
from enseigne.campaigns.models import Budget, Campaign, PressureRule, Recipient, Relay
from enseigne.campaigns.selectors import policy_for
from enseigne.contacts.models import Segment
from enseigne.contacts.services import segment_save
from enseigne.network.models import OrgNode, User

S = Campaign.Status


def _finish_in_the_past(campaign: Campaign, when: dt.datetime, rng: random.Random) -> None:
    """Freeze the audience as of ``when`` and record it as sent then, with a few failures."""
    Campaign.objects.filter(pk=campaign.pk).update(
        status=S.SENDING,
        send_at=when,
        launched_at=when,
        frozen_at=when,
        scheduled_at=when - dt.timedelta(days=3),
    )
    campaign.refresh_from_db()
    total = audience.freeze(campaign, when)
    pending = list(
        Recipient.objects.filter(campaign=campaign, status="pending").values_list("id", flat=True)
    )
    failed = set(rng.sample(pending, k=len(pending) // 60))
    Recipient.objects.filter(pk__in=failed).update(
        status="failed", reason="refused", detail="550 5.1.1 User unknown", attempts=1
    )
    Recipient.objects.filter(campaign=campaign, status="pending").update(
        status="sent", sent_at=when + dt.timedelta(minutes=4), attempts=1
    )
    Campaign.objects.filter(pk=campaign.pk).update(
        status=S.FINISHED, finished_at=when + dt.timedelta(minutes=9), recipient_total=total
    )


def seed_campaigns(
    root: OrgNode, units: dict[str, OrgNode], users: dict[str, User], domain: str
) -> dict:
    rng = random.Random(7)
    now = timezone.now()
    marketer = users[f"marketing@{domain}"]
    lyon, lille = units["lyon"], units["lille"]
    policy = policy_for(root)
    policy.national_cofunding_percent = 50
    policy.save()
    PressureRule.objects.create(node=root, channel="email", max_messages=2, window_days=7)
    PressureRule.objects.create(node=root, channel="sms", max_messages=4, window_days=30)
    month_start = now.date().replace(day=1)
    for unit in units.values():
        Budget.objects.create(
            unit=unit,
            unit_path=unit.path,
            starts_on=month_start,
            ends_on=(month_start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1),
            amount=Decimal("150.00") if unit.code != "lyon" else Decimal("300.00"),
        )
    templates = {t.name: t for t in Template.objects.all()}
    locals_ = {lv.name: lv for lv in LocalVersion.objects.all()}
    lyon_segment = Segment.objects.get(owner=lyon)

    # Past: a national campaign every unit relayed, and a Lyon local one.
    summer = services.campaign_create_national(
        actor=marketer,
        channel="email",
        name="Soldes d'été",
        template=templates["Promotion de saison"],
    )
    services.campaign_submit(actor=marketer, campaign=summer)
    services.relays_announce(summer)
    Relay.objects.filter(campaign=summer).update(
        status=Relay.Status.RELAYED, decided_at=now - dt.timedelta(days=70)
    )
    Relay.objects.filter(campaign=summer, unit=lyon).update(local_version=locals_["Noël à Lyon"])
    _finish_in_the_past(summer, now - dt.timedelta(days=65), rng)
    workshop = services.campaign_create_local(
        actor=users[f"lyon@{domain}"],
        unit=lyon,
        channel="email",
        name="Ateliers déco du samedi",
        template=templates["Bienvenue"],
        local_version=locals_["Bienvenue Lyon"],
        segment=lyon_segment,
    )
    Campaign.objects.filter(pk=workshop.pk).update(
        status=S.APPROVED, decided_by=users[f"region.sud-est@{domain}"]
    )
    _finish_in_the_past(workshop, now - dt.timedelta(days=20), rng)

    # Waiting for the units: the holidays campaign, to relay (personalised) or opt out.
    holidays = services.campaign_create_national(
        actor=marketer,
        channel="email",
        name="Les fêtes s'illuminent",
        template=templates["Promotion de saison"],
        relay_deadline=now + dt.timedelta(days=4),
    )
    services.campaign_submit(actor=marketer, campaign=holidays)
    services.campaign_schedule(
        actor=marketer,
        campaign=holidays,
        send_at=(now + dt.timedelta(days=6)).replace(hour=9, minute=30, second=0, microsecond=0),
    )
    nantes = units.get("nantes")
    if nantes is not None:
        Relay.objects.filter(campaign=holidays, unit=nantes).update(
            status=Relay.Status.RELAYED, decided_at=now
        )

    # Waiting for approval: Lille's own Christmas mailing.
    lille_segment = Segment.objects.filter(owner=lille).first()
    if lille_segment is None:
        lille_segment = segment_save(
            actor=users[f"lille@{domain}"],
            owner=lille,
            name="Tous les clients joignables",
            rules={"match": "all", "rules": [{"field": "consent_email", "op": "is_valid"}]},
        )
    christmas = services.campaign_create_local(
        actor=users[f"lille@{domain}"],
        unit=lille,
        channel="email",
        name="Noël à Lille",
        template=templates["Promotion de saison"],
        local_version=locals_["Noël à Lille"],
        segment=lille_segment,
        send_at=(now + dt.timedelta(days=8)).replace(hour=10, minute=0, second=0, microsecond=0),
    )
    services.campaign_submit(actor=users[f"lille@{domain}"], campaign=christmas)

    # Dated drafts, for the calendar: dragging one shows the pressure of its new date.
    def next_weekday(weekday: int, hour: int, weeks: int = 0) -> dt.datetime:
        local = timezone.localtime(now)
        days = (weekday - local.weekday()) % 7 or 7
        return (local + dt.timedelta(days=days + 7 * weeks)).replace(
            hour=hour, minute=0, second=0, microsecond=0
        )

    # A Lyon SMS draft: schedule it on a Sunday and watch it wait for Monday 08:00.
    sms_segment = segment_save(
        actor=users[f"lyon@{domain}"],
        owner=lyon,
        name="Joignables par SMS",
        rules={"match": "all", "rules": [{"field": "consent_sms", "op": "is_valid"}]},
    )
    services.campaign_create_local(
        actor=users[f"lyon@{domain}"],
        unit=lyon,
        channel="sms",
        name="Flash samedi Lyon",
        template=templates["SMS promo flash"],
        local_version=locals_["Flash samedi Lyon"],
        segment=sms_segment,
        send_at=next_weekday(5, 10),
    )
    services.campaign_create_local(
        actor=users[f"lyon@{domain}"],
        unit=lyon,
        channel="email",
        name="Nocturne déco Lyon",
        template=templates["Bienvenue"],
        local_version=locals_["Bienvenue Lyon"],
        segment=lyon_segment,
        send_at=next_weekday(3, 18, weeks=1),
    )
    # Waiting for the region manager's approval (the README's approval inbox).
    welcome = services.campaign_create_local(
        actor=users[f"lyon@{domain}"],
        unit=lyon,
        channel="email",
        name="Bienvenue aux clients de décembre",
        template=templates["Bienvenue"],
        local_version=locals_["Bienvenue Lyon"],
        segment=lyon_segment,
        send_at=next_weekday(2, 10, weeks=1),
    )
    services.campaign_submit(actor=users[f"lyon@{domain}"], campaign=welcome)
    services.campaign_create_national(
        actor=marketer,
        channel="email",
        name="Rentrée des luminaires",
        template=templates["Promotion de saison"],
        relay_deadline=next_weekday(1, 12, weeks=2),
        send_at=next_weekday(3, 9, weeks=2),
    )
    return {"campaigns": Campaign.objects.count()}
