"""Import a product catalogue (SKU, name, category, price) into the asset library."""

from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from enseigne.brand.catalogue import catalogue_import
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.access import access_for
from enseigne.network.models import OrgNode, User


class Command(BaseCommand):
    help = (
        "Create or update products by SKU from a CSV file (columns SKU, name, category, price, "
        "found by their names). HQ's products are shared with --node's subtree; --own makes "
        "them the unit's own. Bad rows are reported; --dry-run writes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--node", required=True, help="The node's code (a unit with --own).")
        parser.add_argument("--as", dest="email", required=True, help="The acting user.")
        parser.add_argument("--own", action="store_true")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, **options):
        path = Path(options["file"])
        with db_scope(ALL):
            user = User.objects.filter(
                email=options["email"].strip().lower(), is_active=True
            ).first()
            node = OrgNode.objects.filter(code=options["node"]).first()
        if user is None or node is None:
            raise CommandError("No such active user, or no node with this code.")
        try:
            with db_scope(access_for(user).paths):
                result = catalogue_import(
                    actor=user,
                    node=node,
                    own=options["own"],
                    file_name=path.name,
                    content=path.read_bytes(),
                    dry_run=options["dry_run"],
                )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        except PermissionDenied:
            raise CommandError("This user may not add products there.") from None
        verb = "to create" if options["dry_run"] else "created"
        self.stdout.write(
            f"{result.created} products {verb}, {result.updated} updated, {result.unchanged} "
            f"unchanged, {result.rejected} rows rejected."
        )
        for line, column, value, reason in result.errors:
            self.stdout.write(f"line {line}\t{column}\t{value}\t{reason}")
