"""``enseigne match_people [--network CODE]``: the model's pass over a network now."""

from django.core.management.base import BaseCommand, CommandError

from enseigne.identity.batch import match_network
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.models import OrgNode


class Command(BaseCommand):
    help = "Match the records of each network (or one) with the probabilistic model."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--network", help="the network's code (default: every network)")

    def handle(self, *args, **options) -> None:
        with db_scope(ALL):
            roots = OrgNode.objects.filter(depth=1)
            if options["network"]:
                roots = roots.filter(code=options["network"])
                if not roots.exists():
                    raise CommandError(f"No network with the code {options['network']!r}.")
            roots = list(roots)
        for root in roots:
            counts = match_network(root)
            self.stdout.write(
                f"{root.name}: {counts['records']} records, {counts['merged']} moved into "
                f"another person, {counts['queued']} pairs for review."
            )
