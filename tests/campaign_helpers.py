"""Builders shared by the campaign and sending tests."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from enseigne.brand.services import local_version_save, template_create
from enseigne.campaigns import services
from enseigne.contacts.models import ConsentStatus, Contact
from enseigne.contacts.services import segment_save
from tests.factories import ContactFactory

EMAIL_SOURCE = (
    "<mjml><mj-body><mj-section><mj-column><mj-text>"
    'Bonjour {{ contact.first_name }}, <ens-zone name="headline" kind="text">Nouvelle saison</ens-zone>'
    ' — {{ unit.name }}. <a href="{{ links.unsubscribe }}">Se désabonner</a>'
    "</mj-text></mj-column></mj-section></mj-body></mjml>"
)
SMS_SOURCE = 'Bonjour {{ contact.first_name }} <ens-zone name="message" kind="text">-20% ce week-end</ens-zone>'
EVERYONE = {"match": "all", "rules": []}


def email_template(world, name="Saison"):
    return template_create(
        actor=world.hq_admin,
        shared_with=world.root,
        channel="email",
        name=name,
        source=EMAIL_SOURCE,
        subject="{{ contact.first_name }}, la saison commence",
    )


def sms_template(world, name="Flash", *, source=SMS_SOURCE, max_segments=2):
    return template_create(
        actor=world.hq_admin,
        shared_with=world.root,
        channel="sms",
        name=name,
        source=source,
        sms_stop="STOP 36111",
        max_segments=max_segments,
    )


def contacts(unit, n, *, email=True, sms=False, start=0, **extra) -> list[Contact]:
    made = []
    for i in range(start, start + n):
        made.append(
            ContactFactory(
                unit=unit,
                email=f"{unit.code}.{i}@example.com",
                phone=f"+3361{unit.pk % 10}{i:06d}" if sms else None,
                email_consent=ConsentStatus.GRANTED if email else ConsentStatus.NONE,
                sms_consent=ConsentStatus.GRANTED if sms else ConsentStatus.NONE,
                **extra,
            )
        )
    return made


def local_campaign(world, *, channel="email", unit=None, template=None, values=None, send_at=None):
    unit = unit or world.unit_a
    template = template or (email_template(world) if channel == "email" else sms_template(world))
    local = local_version_save(
        actor=world.hq_admin,
        unit=unit,
        template=template,
        values=values or ({"headline": "Soldes à Lyon"} if channel == "email" else {}),
    )
    segment = segment_save(actor=None, owner=unit, name=f"Tous {unit.code}", rules=EVERYONE)
    return services.campaign_create_local(
        actor=world.hq_admin,
        unit=unit,
        channel=channel,
        name=f"Local {unit.code}",
        template=template,
        local_version=local,
        segment=segment,
        send_at=send_at,
    )


def launched(world, campaign, when=None):
    """Approve (as HQ), schedule and launch ``campaign``; returns the ledger size."""
    when = when or timezone.now()
    services.campaign_submit(actor=world.hq_admin, campaign=campaign)
    services.campaign_schedule(
        actor=world.hq_admin, campaign=campaign, send_at=when + dt.timedelta(minutes=1)
    )
    return services.campaign_launch(actor=world.hq_admin, campaign=campaign, now=when)
