"""Import a CSV of order lines for one unit, acting as a user; print the report."""

from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from enseigne.commerce.importer import TARGETS, order_import_prepare, start_and_run
from enseigne.commerce.models import OrderImportProblem
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.access import access_for
from enseigne.network.models import OrgNode, User


class Command(BaseCommand):
    help = (
        "Import orders from a CSV file (one row per order line; the rows of an order share "
        "its id). Columns are mapped from their names; --map COLUMN=FIELD overrides. "
        "--dry-run checks everything and writes only the report."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--unit", required=True, help="The unit's code.")
        parser.add_argument("--as", dest="email", required=True, help="The acting user.")
        parser.add_argument("--map", action="append", default=[], metavar="COLUMN=FIELD")
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument("--show", type=int, default=50, help="Report lines to print.")

    def handle(self, *args, **options):
        path = Path(options["file"])
        with db_scope(ALL):
            user = User.objects.filter(
                email=options["email"].strip().lower(), is_active=True
            ).first()
            unit = OrgNode.objects.filter(code=options["unit"], kind=OrgNode.Kind.UNIT).first()
        if user is None or unit is None:
            raise CommandError("No such active user, or no unit with this code.")
        try:
            with db_scope(access_for(user).paths):
                order_import = order_import_prepare(
                    actor=user, unit=unit, file_name=path.name, content=path.read_bytes()
                )
            mapping = dict(order_import.mapping)
            for item in options["map"]:
                column, _eq, target = item.partition("=")
                if target and target not in TARGETS:
                    raise CommandError(f"Unknown field {target}; fields: {', '.join(TARGETS)}.")
                mapping[column] = target
            self.stdout.write(
                "Mapping: " + ", ".join(f"{c} → {t}" for c, t in mapping.items() if t)
            )
            order_import = start_and_run(
                actor=user, order_import=order_import, mapping=mapping, dry_run=options["dry_run"]
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        except PermissionDenied:
            raise CommandError("This user may not record sales for this unit.") from None
        oi = order_import
        self.stdout.write(
            f"{'Dry run' if oi.dry_run else 'Import'} {oi.status}: {oi.total_rows} rows, "
            f"{oi.created_count} orders {'to create' if oi.dry_run else 'created'} "
            f"({oi.line_count} lines), {oi.duplicate_count} duplicates, {oi.refused_count} "
            f"orders refused ({oi.refused_rows} rows), {oi.unknown_sku_lines} lines with an "
            "unknown SKU."
        )
        if oi.error:
            self.stdout.write(oi.error)
        with db_scope([oi.unit_path]):
            problems = OrderImportProblem.objects.filter(order_import=oi)[: options["show"]]
            for p in problems:
                self.stdout.write(
                    f"line {p.row_number}\t{p.kind}\t{p.column}\t{p.value}\t{p.rule}\t{p.reason_text}"
                )
