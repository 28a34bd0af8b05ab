"""Importing HQ's product catalogue from a CSV file, the way sales and contacts are imported:
upload, column mapping (French or English headers guessed), dry run, the worker's run with
its progress, a row-by-row report.

The rows are checked and written by the library's catalogue module (``brand.catalogue``:
products created or updated by SKU through the library's own audited services); this module
keeps the import's state. The whole file is checked first (a second row with an SKU seen
before is refused wherever it is), then written in chunks, each committed with its report
lines, counts and checkpoint, so a run that dies is taken over after its last chunk
(``lib.imports``) and writes every product once.

Sales may name an SKU before the catalogue has it (the line is kept and flagged). Each chunk
written links the earlier unknown-SKU lines of the stores under the import's node to their
new product (product, category, no longer unknown) in one statement, refreshes those
buyers' purchase summaries (``commerce.summaries``) and marks the sales reports' flags on
those SKUs resolved, in the chunk's transaction.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, Count, F, OuterRef, Subquery, TextField, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from enseigne.brand.asset_services import owner_paths
from enseigne.brand.catalogue import (
    FIELDS,
    MAX_ROWS,
    Library,
    check_rows,
    guess_mapping,
    missing_fields,
)
from enseigne.brand.models import Asset
from enseigne.commerce import summaries
from enseigne.commerce.models import (
    CatalogueImport,
    CatalogueImportProblem,
    Order,
    OrderImport,
    OrderImportProblem,
    OrderLine,
)
from enseigne.contacts.import_reader import clean_mapping, import_create, read_rows
from enseigne.lib.imports import (
    import_again,
    import_checkpoint,
    import_done,
    import_give_up,
    import_not_started,
    import_queue,
    import_run,
    import_unreadable,
    reason_stored,
    reasons_as_source,
)
from enseigne.lib.rowsecurity import db_scope
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
    return import_create(
        CatalogueImport,
        actor,
        (file_name, content),
        lambda stored: guess_mapping(stored.columns),
        node=node,
        unit_path=node.path,
    )


@transaction.atomic
def catalogue_import_start(
    *,
    actor: User,
    catalogue_import: CatalogueImport,
    mapping: dict[str, str],
    dry_run: bool = False,
) -> CatalogueImport:
    """Check the mapping and queue the import (or its dry run) for the worker, once this
    transaction commits."""
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

    import_queue(
        CatalogueImport, catalogue_import.pk, run_catalogue_import, mapping=clean, dry_run=dry_run
    )
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


# What a failed import says (lib.imports.import_give_up fills in where it stopped).
_STOPPED = gettext_lazy(
    "Stopped by an unexpected error after %(rows)s rows. Import the file again: "
    "the products already written are found by their SKU, not created twice."
)


def catalogue_import_give_up(import_id: int) -> None:
    """The worker failed for good; importing the file again writes no product twice."""
    import_give_up(CatalogueImport, import_id, _STOPPED)


def catalogue_import_run(import_id: int) -> CatalogueImport:
    """Run one queued catalogue import (or dry run) to its end, or go on with one whose run
    died; safe to call twice (``lib.imports.import_run``)."""
    return import_run(CatalogueImport, import_id, _run_claimed, "node", "created_by")


def _run_claimed(catalogue_import: CatalogueImport) -> CatalogueImport:
    import_id = catalogue_import.pk
    scope = [catalogue_import.unit_path]
    actor, node = catalogue_import.created_by, catalogue_import.node
    try:
        header, rows = read_rows(catalogue_import.file_path)
        try:
            with reasons_as_source():  # stored as source text, shown in the reader's language
                checked = check_rows(header, rows, catalogue_import.mapping)
        finally:
            getattr(rows, "close", lambda: None)()  # the generator closes the file
    except (UnicodeDecodeError, OSError) as exc:
        import_unreadable(catalogue_import, exc)
        return catalogue_import
    if actor is None:  # the products are written in their importer's name (the audit log)
        catalogue_import_give_up(import_id)
        catalogue_import.refresh_from_db()
        return catalogue_import
    # The library's writes check and audit the importer's rights, under the importer's scope.
    scope = list(access_for(actor).paths)
    with db_scope(scope):
        library = Library.of(actor, node, own=False)
    for start in range(catalogue_import.processed_rows, len(checked), CHUNK_ROWS):
        chunk = checked[start : start + CHUNK_ROWS]
        with db_scope(scope), transaction.atomic():
            counts = library.write(
                chunk, catalogue_import.mapping.values(), catalogue_import.dry_run
            )
            if not catalogue_import.dry_run:
                unknown_skus_link(node, [row.data["sku"] for row in chunk if row.data is not None])
            CatalogueImportProblem.objects.bulk_create(
                [
                    CatalogueImportProblem(
                        catalogue_import=catalogue_import,
                        unit_path=catalogue_import.unit_path,
                        row_number=line,
                        column=column,
                        value=value,
                        reason=reason_stored(reason, 500),
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
    import_done(catalogue_import, len(checked))
    return catalogue_import


def unknown_skus_link(node: OrgNode, skus: list[str]) -> int:
    """Link the sales lines of the stores under ``node`` that named one of ``skus`` before
    the library had it to the product now shared with ``node`` (the oldest, as a sale
    recorded now would find it): product, category (a line's own category stays), no longer
    unknown, in one statement over the lines' partial index. Then the buyers' purchase
    summaries are recomputed (the lines now count in their category) and the sales
    reports' flags on these SKUs are marked resolved. Returns the number of lines linked.
    Call it in the transaction that wrote the products, in a scope that sees the stores."""
    products: dict[str, tuple[int, str]] = {}
    for sku, pk, category in (
        Asset.objects.filter(kind=Asset.Kind.PRODUCT, unit_path="", shared_path=node.path)
        .annotate(product_sku=Cast(KT("data__sku"), TextField()))
        .filter(product_sku__any=list(set(skus)))
        .order_by("pk")
        .values_list("product_sku", "pk", Cast(KT("data__category"), TextField()))
    ):
        products.setdefault(sku, (pk, category or ""))
    if not products:
        return 0
    lines = OrderLine.objects.filter(
        unknown_sku=True, sku__in=list(products), unit_path__startswith=node.path
    )
    buyers = list(
        Order.objects.filter(pk__in=lines.values("order_id"), contact__isnull=False)
        .order_by()
        .values_list("contact_id", flat=True)
        .distinct()
    )
    # The SKU -> product map as CASE branches: one UPDATE on every engine (a correlated
    # subquery per line read the JSON of every product for each line: bench/catalogue_link.py).
    linked = lines.update(
        product_id=Case(*(When(sku=sku, then=Value(pk)) for sku, (pk, _c) in products.items())),
        category=Case(
            *(
                When(category="", sku=sku, then=Value(category))
                for sku, (_pk, category) in products.items()
            ),
            default=F("category"),
        ),
        unknown_sku=False,
    )
    if buyers:
        summaries.refresh(buyers)
    flags = OrderImportProblem.objects.filter(
        kind=OrderImportProblem.Kind.FLAGGED,
        rule="unknown_sku",
        value__in=skus,
        unit_path__startswith=node.path,
    )
    imports = list(flags.order_by().values_list("order_import_id", flat=True).distinct())
    if imports:
        flags.update(kind=OrderImportProblem.Kind.RESOLVED)
        still_flagged = (
            OrderImportProblem.objects.filter(
                order_import=OuterRef("pk"), kind=OrderImportProblem.Kind.FLAGGED
            )
            .order_by()
            .values("order_import")
            .annotate(n=Count("pk"))
            .values("n")
        )
        OrderImport.objects.filter(pk__in=imports).update(
            unknown_sku_lines=Coalesce(Subquery(still_flagged), 0)
        )
    return linked
