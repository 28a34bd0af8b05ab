"""``enseigne match_people [--network CODE]``: the model's pass over a network now.

Each pass is a ``ModelRun`` like the ones HQ starts from the settings page or the schedule
queues: the network's thresholds, one run at a time per network, audited, shown on the
settings page."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from enseigne.identity.batch import execute_run
from enseigne.identity.models import ModelRun
from enseigne.identity.services import model_run_request
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.models import OrgNode


class Command(BaseCommand):
    help = "Match the records of each network (or one) with the probabilistic model."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--network", help="the network's code (default: every network)")

    def handle(self, *args, **options) -> None:
        with db_scope(ALL):
            roots = OrgNode.objects.filter(depth=1).select_related("network")
            if options["network"]:
                roots = roots.filter(code=options["network"])
                if not roots.exists():
                    raise CommandError(f"No network with the code {options['network']!r}.")
            roots = list(roots)
        refused = []
        for root in roots:
            try:
                with db_scope(ALL):
                    run = model_run_request(
                        actor=None, trigger=ModelRun.Trigger.COMMAND, network=root.network
                    )
            except ValidationError as exc:
                refused.append(root.name)
                self.stderr.write(f"{root.name}: {' '.join(exc.messages)}")
                continue
            done = execute_run(run.pk)
            if done is None or done.status != ModelRun.Status.FINISHED:
                failure = done.get_failure_display() if done else "the run was taken elsewhere"
                raise CommandError(f"{root.name}: {failure}")
            self.stdout.write(
                f"{root.name}: {done.records} records, {done.merged} moved into another "
                f"person, {done.to_review} pairs for review, {done.refused} refused, "
                f"{done.alerts} size alerts (merge from {done.match_threshold}, review "
                f"from {done.review_threshold})."
            )
        if refused:
            raise CommandError(f"Not run (a run is under way): {', '.join(refused)}.")
