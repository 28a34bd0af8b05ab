"""``enseigne link_people``: give every record its person (after upgrading to a release with
the identity app, or after records were written by raw SQL). The nightly upkeep runs the
same; this runs it now and says how many."""

from django.core.management.base import BaseCommand

from enseigne.identity.linking import link_unlinked, prune_empty_persons


class Command(BaseCommand):
    help = "Link every contact record that has no person yet; drop persons left without records."

    def handle(self, *args, **options) -> None:
        linked = link_unlinked()
        pruned = prune_empty_persons()
        self.stdout.write(f"{linked} records linked, {pruned} empty persons removed.")
