"""Importing HQ's product catalogue from a CSV file, the way sales and contacts are imported:
upload, column mapping (French or English headers guessed), dry run, the worker's run with
its progress, a row-by-row report.

The rows are checked and written by the library's catalogue module (``brand.catalogue``:
products created or updated by SKU through the library's own audited services); this module
keeps the import's state. The whole file is checked first (a second row with an SKU seen
before is refused wherever it is), then written in chunks, each committed with its report
lines, counts and checkpoint, so a run that dies is taken over after its last chunk
(``lib.imports``) and writes every product once.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from enseigne.brand.asset_services import owner_paths
from enseigne.brand.catalogue import (
    FIELDS,
    MAX_ROWS,
    check_rows,
    existing_products,
    guess_mapping,
    missing_fields,
    write_rows,
)
from enseigne.commerce.models import CatalogueImport, CatalogueImportProblem
from enseigne.contacts.import_reader import clean_mapping, read_rows, store_upload
from enseigne.lib.imports import (
    check_upload_size,
    import_again,
    import_checkpoint,
    import_claim,
    import_give_up,
    import_not_started,
    import_queue,
)
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.access import access_for
from enseigne.network.models import OrgNode, User

TARGETS = FIELDS
TARGET_LABELS = {
    "sku": gettext_lazy("SKU"),
    "name": gettext_lazy("Product name"),
    "category": gettext_lazy("Category"),
    "price": gettext_lazy("Price"),
}
CHUNK_ROWS = 500  # rows written per transaction: each product is an audited library write


@transaction.atomic
def catalogue_import_prepare(
    *, actor: User, node: OrgNode, file_name: str, content: bytes
) -> CatalogueImport:
    """Store the file and propose a mapping; the products will be shared with ``node``'s
    subtree (HQ's library: whoever manages assets there)."""
    owner_paths(actor, node, own=False)  # PermissionDenied if not allowed
    check_upload_size(len(content))
    stored = store_upload(content, file_name, prefix="catalogue-")
    return CatalogueImport.objects.create(
        node=node,
        unit_path=node.path,
        created_by=actor,
        mapping=guess_mapping(stored.columns),
        **stored.import_fields(),
    )


@transaction.atomic
def catalogue_import_start(
    *,
    actor: User,
    catalogue_import: CatalogueImport,
    mapping: dict[str, str],
    dry_run: bool = False,
    queue: bool = True,
) -> CatalogueImport:
    """Check the mapping and queue the import (or its dry run) for the worker."""
    owner_paths(actor, catalogue_import.node, own=False)
    import_not_started(catalogue_import)
    clean = clean_mapping(mapping, catalogue_import.columns, TARGETS)
    missing = missing_fields(clean)
    if missing:
        raise ValidationError(
            {
                "mapping": _("Map a column to: %(fields)s.")
                % {"fields": ", ".join(str(TARGET_LABELS[f]) for f in missing)}
            }
        )
    if (catalogue_import.total_rows or 0) > MAX_ROWS:
        raise ValidationError(
            {"file": _("More than %(n)s rows: split the file.") % {"n": f"{MAX_ROWS:,}"}}
        )
    from enseigne.commerce.tasks import run_catalogue_import  # the task runs this module

    task = run_catalogue_import if queue else None
    import_queue(CatalogueImport, catalogue_import.pk, task, mapping=clean, dry_run=dry_run)
    catalogue_import.refresh_from_db()
    return catalogue_import


@transaction.atomic
def catalogue_import_again(*, actor: User, catalogue_import: CatalogueImport) -> CatalogueImport:
    """After a dry run: the same file for real, once (``lib.imports.import_again``)."""
    owner_paths(actor, catalogue_import.node, own=False)
    return import_again(
        CatalogueImport,
        catalogue_import.pk,
        owner="node",
        actor=actor,
        start=lambda again: catalogue_import_start(
            actor=actor, catalogue_import=again, mapping=again.mapping
        ),
    )


def catalogue_import_give_up(import_id: int) -> None:
    """The worker failed for good; importing the file again writes no product twice."""
    import_give_up(
        CatalogueImport,
        import_id,
        lambda catalogue_import: (
            _(
                "Stopped by an unexpected error after %(rows)s rows. Import the file again: "
                "the products already written are found by their SKU, not created twice."
            )
            % {"rows": catalogue_import.processed_rows}
        ),
    )


def catalogue_import_run(import_id: int) -> CatalogueImport:
    """Run one queued catalogue import (or dry run) to its end, or go on with one whose run
    died; safe to call twice."""
    with db_scope(ALL):
        claimed = import_claim(CatalogueImport, import_id)
        catalogue_import = CatalogueImport.objects.select_related("node", "created_by").get(
            pk=import_id
        )
    if not claimed:
        return catalogue_import
    with translation.override(catalogue_import.language or settings.LANGUAGE_CODE):
        return _run_claimed(catalogue_import)


def _run_claimed(catalogue_import: CatalogueImport) -> CatalogueImport:
    import_id = catalogue_import.pk
    scope = [catalogue_import.unit_path]
    actor, node = catalogue_import.created_by, catalogue_import.node
    try:
        header, rows = read_rows(catalogue_import.file_path)
        try:
            checked = check_rows(header, rows, catalogue_import.mapping)
        finally:
            getattr(rows, "close", lambda: None)()  # the generator closes the file
    except (UnicodeDecodeError, OSError) as exc:
        with db_scope(scope):
            CatalogueImport.objects.filter(pk=import_id).update(
                status=CatalogueImport.Status.FAILED,
                error=_("The file could not be read as CSV: %(detail)s") % {"detail": exc},
                finished_at=timezone.now(),
            )
        catalogue_import.refresh_from_db()
        return catalogue_import
    if actor is None:  # the products are written in their importer's name (the audit log)
        catalogue_import_give_up(import_id)
        catalogue_import.refresh_from_db()
        return catalogue_import
    # The library's writes check and audit the importer's rights, under the importer's scope.
    scope = list(access_for(actor).paths)
    unit_path, _shared = owner_paths(actor, node, own=False)
    done = catalogue_import.processed_rows
    with db_scope(scope):
        existing = existing_products(unit_path)
    for start in range(done, len(checked), CHUNK_ROWS):
        chunk = checked[start : start + CHUNK_ROWS]
        with db_scope(scope), transaction.atomic():
            counts = write_rows(
                actor=actor,
                node=node,
                own=False,
                existing=existing,
                rows=chunk,
                mapped=catalogue_import.mapping.values(),
                dry_run=catalogue_import.dry_run,
            )
            CatalogueImportProblem.objects.bulk_create(
                [
                    CatalogueImportProblem(
                        catalogue_import=catalogue_import,
                        unit_path=catalogue_import.unit_path,
                        row_number=line,
                        column=column[:255],
                        value=value[:255],
                        reason=reason[:500],
                    )
                    for row in chunk
                    for line, column, value, reason in row.problems
                ],
                batch_size=2000,
            )
            import_checkpoint(
                CatalogueImport,
                import_id,
                {"processed_rows": start},
                processed_rows=start + len(chunk),
                created_count=F("created_count") + counts["created"],
                updated_count=F("updated_count") + counts["updated"],
                unchanged_count=F("unchanged_count") + counts["unchanged"],
                rejected_count=F("rejected_count") + sum(r.data is None for r in chunk),
            )
    with db_scope(scope):
        CatalogueImport.objects.filter(pk=import_id).update(
            status=CatalogueImport.Status.DONE,
            finished_at=timezone.now(),
            processed_rows=len(checked),
            total_rows=len(checked),
            lease_until=None,
        )
        catalogue_import.refresh_from_db()
    return catalogue_import


def start_and_run(
    *, actor: User, catalogue_import: CatalogueImport, mapping: dict[str, str], dry_run: bool
) -> CatalogueImport:
    """Start, then run in this process (tests; the page queues it)."""
    catalogue_import = catalogue_import_start(
        actor=actor,
        catalogue_import=catalogue_import,
        mapping=mapping,
        dry_run=dry_run,
        queue=False,
    )
    return catalogue_import_run(catalogue_import.pk)
