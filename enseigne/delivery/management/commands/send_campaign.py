"""``enseigne send_campaign <id>``: run a sending campaign in this process, beside any other worker.

Workers share a campaign through the ledger's leases, so this can be started on any
number of machines to add throughput, or to finish a campaign by hand.
"""

import time

from django.core.management.base import BaseCommand, CommandError

from enseigne.campaigns.models import Campaign
from enseigne.delivery.pipeline import Runner
from enseigne.lib.ids import parse_uuid
from enseigne.lib.rowsecurity import ALL, db_scope


class Command(BaseCommand):
    help = "Send a campaign that is in the 'sending' state (shares the work with other workers)."

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="The campaign's public id (or database id).")
        parser.add_argument(
            "--until-finished",
            action="store_true",
            help="Keep going (waiting for retries and expired leases) until it is finished.",
        )
        parser.add_argument("--timeout", type=float, default=3600)

    def handle(self, *args, **options):
        key = options["campaign"]
        lookup = (
            {"public_id": key} if parse_uuid(key) else {"pk": int(key)} if key.isdigit() else None
        )
        with db_scope(ALL):
            campaign = Campaign.objects.filter(**lookup).first() if lookup else None
        if campaign is None:
            raise CommandError(f"No campaign {key!r}.")
        runner = Runner(campaign.pk)
        deadline = time.monotonic() + options["timeout"]
        try:
            while True:
                stats = runner.run()
                with db_scope(ALL):
                    status = (
                        Campaign.objects.filter(pk=campaign.pk)
                        .values_list("status", flat=True)
                        .first()
                    )
                self.stdout.write(
                    f"{stats.sent} sent, {stats.failed} failed, {stats.skipped} not sent, "
                    f"{stats.retried} to retry, {stats.ambiguous} ambiguous; campaign {status}"
                )
                if not options["until_finished"] or status != Campaign.Status.SENDING:
                    break
                if time.monotonic() > deadline:
                    raise CommandError("Timed out before the campaign finished.")
                time.sleep(0.2 if stats.claimed else 0.5)
        finally:
            runner.close()
