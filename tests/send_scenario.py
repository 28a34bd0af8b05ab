"""Run as a script against a scratch database: migrate, build a network, launch a campaign.

    DATABASE_URL=… python tests/send_scenario.py <contacts> [<links>]   → prints the campaign id

``<links>`` adds that many web links to the message (each goes through click tracking).
With ``SCENARIO_LAUNCH=start`` the campaign is left *preparing* (launched as a page does: the
worker freezes its audience).

    DATABASE_URL=… python tests/send_scenario.py prepare-and-die <campaign id>

prepares it as the worker does, and kills its own process (SIGKILL) once the ledger rows
are written and before they are committed: a worker that dies mid-freeze.

The reliability tests run workers as separate processes (so they can be killed), which
needs a database those processes can reach, not the test run's own.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def migrated() -> None:
    """Django set up on the scratch database, migrated as the owner, then as the app role."""
    os.environ["ENSEIGNE_DB_AS_OWNER"] = "1"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connections

    connections.close_all()
    from enseigne.lib.rowsecurity import set_role_switch

    set_role_switch(True)


def main(total: int, links: int = 0) -> None:
    migrated()
    from enseigne.brand.services import template_create
    from enseigne.campaigns import services
    from enseigne.contacts.models import ConsentStatus, Contact
    from enseigne.lib.rowsecurity import ALL, db_scope
    from tests.campaign_helpers import EMAIL_SOURCE, launched, local_campaign
    from tests.factories import build_world

    with db_scope(ALL):
        world = build_world()
        unit = world.unit_a
        Contact.objects.bulk_create(
            [
                Contact(
                    unit=unit,
                    unit_path=unit.path,
                    email=f"p{i}@example.com",
                    first_name=f"P{i}",
                    email_consent=ConsentStatus.GRANTED,
                )
                for i in range(total)
            ],
            batch_size=5000,
        )
        extra = "".join(
            f' <a href="https://maison.example/offre-{n}?utm_source=enseigne&amp;utm_medium=email">'
            f"Offre {n}</a>"
            for n in range(1, links + 1)
        )
        template = template_create(
            actor=world.hq_admin,
            shared_with=world.root,
            channel="email",
            name="Saison",
            source=EMAIL_SOURCE.replace("</mj-text>", f"{extra}</mj-text>"),
            subject="{{ contact.first_name }}, la saison commence",
        )
        campaign = local_campaign(world, template=template)
        if os.environ.get("SCENARIO_LAUNCH") == "start":
            services.campaign_submit(actor=world.hq_admin, campaign=campaign)
            services.campaign_launch_start(actor=world.hq_admin, campaign=campaign)
        else:
            launched(world, campaign)
    print(campaign.pk)


if __name__ == "__main__" and sys.argv[1].isdigit():
    main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0)


def unsubscribe_tail(campaign_id: int, count: int) -> None:
    """Unsubscribe the last ``count`` recipients through the public service; print id and commit time."""
    import time

    import django

    django.setup()
    from enseigne.campaigns.models import Recipient
    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.tracking.services import unsubscribe

    with db_scope(ALL):
        ids = list(
            Recipient.objects.filter(campaign_id=campaign_id)
            .order_by("-id")
            .values_list("id", flat=True)[:count]
        )
    for pk in ids:
        unsubscribe(recipient_id=pk)
        print(pk, repr(time.time()), flush=True)


if __name__ == "__main__" and sys.argv[1] == "unsubscribe":
    unsubscribe_tail(int(sys.argv[2]), int(sys.argv[3]))


def prepare_and_die(campaign_id: int) -> None:
    import signal
    from unittest import mock

    import django

    django.setup()
    from enseigne.campaigns import audience
    from enseigne.campaigns.models import Recipient
    from enseigne.delivery.services import sending_prepare

    real = audience.freeze

    def freeze(campaign, when):
        total = real(campaign, when)
        assert Recipient.objects.filter(campaign=campaign).count() == total > 0
        print("frozen, not committed", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    with mock.patch("enseigne.campaigns.audience.freeze", side_effect=freeze):
        sending_prepare(campaign_id)


if __name__ == "__main__" and sys.argv[1] == "prepare-and-die":
    prepare_and_die(int(sys.argv[2]))
