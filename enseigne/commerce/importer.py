"""Importing orders from a CSV file: one row per order line, the rows of an order share its id.

The file is read with the contacts import's reader (any encoding a spreadsheet writes, ``;``
or ``,``, a broken quotation mark costs only its lines) and its columns are proposed a
field from their names, as for contacts. Rows are grouped by order id (anywhere in the
file), then recorded by the same service as the API's batches, so the rules are the
same; a decimal comma is read here (``12,50``). The report names each refused row, its
column, value and rule (every problem of a row, in one pass); a line with an SKU the library
does not know is kept and flagged.

A file is a record of sales that happened, so a buyer the file cannot name costs the order
its buyer, never the sale (issue 21): an e-mail or phone that is not valid (a typo) is left
out and the order kept, and so is one that names no contact of the store (another store's
customer); each is reported as a warning on its row. Only a contact *id* that is not the
store's refuses the order, as in the API (``services.orders_record``, the one rule for ids).
A dry run checks everything, duplicates included, and writes only the report. Running an
import again records nothing twice (its orders are duplicates). Reasons are stored as their
source text and parameters and shown in the reader's language (``lib.imports``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from enseigne.commerce.cleaning import LINE_FIELDS, Rule, clean_order
from enseigne.commerce.models import Order, OrderImport, OrderImportProblem
from enseigne.commerce.services import (
    MAX_BATCH,
    Outcome,
    Status,
    address_problems,
    may_record,
    orders_record,
)
from enseigne.contacts.import_reader import (
    clean_mapping,
    guess_by_name,
    guess_table,
    import_create,
    read_rows,
)
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
from enseigne.network.models import OrgNode, User

# The file's fields, order-level first; a row's line fields make one line of its order.
ORDER_TARGETS = ("order_id", "occurred_at", "total", "channel", "contact", "email", "phone")
TARGETS = ORDER_TARGETS + LINE_FIELDS
TARGET_LABELS = {
    "order_id": gettext_lazy("Order id"),
    "occurred_at": gettext_lazy("Date and time"),
    "total": gettext_lazy("Order total"),
    "channel": gettext_lazy("Channel (in_store, online)"),
    "contact": gettext_lazy("Contact id"),
    "email": gettext_lazy("E-mail"),
    "phone": gettext_lazy("Phone"),
    "sku": gettext_lazy("SKU"),
    "category": gettext_lazy("Category"),
    "quantity": gettext_lazy("Quantity"),
    "unit_amount": gettext_lazy("Unit price"),
    "amount": gettext_lazy("Line amount"),
    "discount": gettext_lazy("Discount"),
    "is_return": gettext_lazy("Return (yes/no)"),
}
MAX_ROWS = 500_000  # an order's rows may be anywhere in the file: the file is grouped in memory

_GUESSES = {
    "order_id": {"order_id", "order id", "order", "commande", "n commande", "no commande",
                 "numero commande", "numero de commande", "id commande", "ticket", "n ticket",
                 "numero ticket", "transaction", "transaction id"},
    "occurred_at": {"occurred_at", "date", "date commande", "date achat", "date d achat",
                    "datetime", "date heure", "order date", "purchase date"},
    "total": {"total", "total commande", "montant total", "total ttc", "order total"},
    "channel": {"channel", "canal", "canal de vente"},
    "contact": {"contact", "contact_id", "contact id", "id contact"},
    "email": {"email", "e-mail", "mail", "courriel", "adresse email"},
    "phone": {"phone", "telephone", "tel", "mobile", "portable"},
    "sku": {"sku", "ref", "reference", "ref article", "reference article", "code article",
            "article", "ean", "product code"},
    "category": {"category", "categorie", "famille", "rayon", "univers"},
    "quantity": {"quantity", "qty", "quantite", "qte", "nb", "nombre"},
    "unit_amount": {"unit_amount", "unit price", "prix unitaire", "pu", "prix", "price"},
    "amount": {"amount", "montant", "montant ligne", "line amount", "total ligne", "line total"},
    "discount": {"discount", "remise", "reduction", "rabais"},
    "is_return": {"is_return", "return", "retour", "avoir"},
}  # fmt: skip
_GUESS_TABLE = guess_table(_GUESSES)


def guess_mapping(columns: list[str]) -> dict[str, str]:
    return guess_by_name(columns, _GUESS_TABLE)


@transaction.atomic
def order_import_prepare(
    *, actor: User, unit: OrgNode, file_name: str, content: bytes
) -> OrderImport:
    """Store the file as UTF-8 text and propose a mapping (the first step, as for contacts)."""
    may_record(actor, unit)
    if unit.kind != OrgNode.Kind.UNIT:
        raise ValidationError({"unit": _("Import into a unit.")})
    return import_create(
        OrderImport,
        actor,
        (file_name, content),
        lambda stored: guess_mapping(stored.columns),
        unit=unit,
        unit_path=unit.path,
    )


@transaction.atomic
def order_import_start(
    *,
    actor: User,
    order_import: OrderImport,
    mapping: dict[str, str],
    dry_run: bool = False,
    queue: bool = True,
) -> OrderImport:
    """Check the mapping and queue the import (or its dry run) for the worker; without
    ``queue`` the caller runs it (the command line)."""
    may_record(actor, order_import.unit)
    import_not_started(order_import)
    clean = clean_mapping(mapping, order_import.columns, TARGETS)
    if "order_id" not in clean.values():
        raise ValidationError({"mapping": _("Map a column to the order id.")})
    if not {"total", "amount", "unit_amount"} & set(clean.values()):
        raise ValidationError(
            {"mapping": _("Map a column to the order total, the line amount or the unit price.")}
        )
    from enseigne.commerce.tasks import run_order_import  # the task runs this module

    task = run_order_import if queue else None
    import_queue(OrderImport, order_import.pk, task, mapping=clean, dry_run=dry_run)
    order_import.refresh_from_db()
    return order_import


@transaction.atomic
def order_import_again(*, actor: User, order_import: OrderImport) -> OrderImport:
    """After a dry run: the same file for real, once (``lib.imports.import_again``)."""
    may_record(actor, order_import.unit)
    return import_again(
        OrderImport,
        order_import.pk,
        owner="unit",
        actor=actor,
        start=lambda again: order_import_start(
            actor=actor, order_import=again, mapping=again.mapping
        ),
    )


# What a failed import says (lib.imports.import_give_up fills in where it stopped).
_STOPPED = gettext_lazy(
    "Stopped by an unexpected error after %(rows)s rows. Import the file again: "
    "the orders already recorded are not counted twice."
)


def order_import_give_up(import_id: int) -> None:
    """The worker failed for good. Each batch committed with its counts and importing the
    file again records no order twice, so that is the way on."""
    import_give_up(OrderImport, import_id, _STOPPED)


@dataclass
class _Group:
    """One order of the file: its fields, its lines, and the file line of each."""

    first_line: int
    order: dict[str, str] = field(default_factory=dict)
    lines: list[dict[str, str]] = field(default_factory=list)
    line_numbers: list[int] = field(default_factory=list)
    order_field_lines: dict[str, int] = field(default_factory=dict)


@dataclass
class _Report:
    problems: list[OrderImportProblem] = field(default_factory=list)
    refused_rows: int = 0
    without_buyer: int = 0  # orders kept (or, in a dry run, to keep) without their buyer


def _problem(order_import, kind, line, column, value, rule, reason) -> OrderImportProblem:
    return OrderImportProblem(
        order_import=order_import,
        unit_path=order_import.unit_path,
        kind=kind,
        row_number=line,
        column=column[:255],
        value=str(value)[:255],
        rule=rule,
        reason=reason_stored(reason, 500),
    )


def _group_rows(order_import: OrderImport, report: _Report) -> tuple[list[_Group], int]:
    """The file's orders in order of first appearance, and the number of rows read."""
    header, rows = read_rows(order_import.file_path)
    position = {name: index for index, name in reversed(list(enumerate(header)))}
    columns = [
        (column, target, position.get(column)) for column, target in order_import.mapping.items()
    ]
    groups: dict[str, _Group] = {}
    refused = OrderImportProblem.Kind.REFUSED
    count = 0
    for file_row in itertools.islice(rows, MAX_ROWS + 1):
        count += 1
        if count > MAX_ROWS:
            report.problems.append(
                _problem(
                    order_import, refused, file_row.line, "", "", Rule.TOO_MANY,
                    _("More than %(n)s rows: split the file.") % {"n": f"{MAX_ROWS:,}"},
                )
            )  # fmt: skip
            count -= 1
            break
        if file_row.fields is None:
            report.refused_rows += 1
            report.problems.append(
                _problem(
                    order_import, refused, file_row.line, "", file_row.text, Rule.NOT_TEXT,
                    _("a quotation mark opened on this line does not close where it should, so "
                      "the line cannot be split into columns: check its quotation marks"),
                )
            )  # fmt: skip
            continue
        width = len(file_row.fields)
        values = {
            target: file_row.fields[index].strip()
            for column, target, index in columns
            if index is not None and index < width
        }
        order_id = values.get("order_id", "")
        if not order_id:
            report.refused_rows += 1
            report.problems.append(
                _problem(
                    order_import, refused, file_row.line, _column_of(order_import, "order_id"),
                    "", Rule.REQUIRED, _("This row has no order id."),
                )
            )  # fmt: skip
            report.problems.extend(_row_alone_problems(order_import, file_row.line, values))
            continue
        group = groups.get(order_id)
        if group is None:
            group = groups[order_id] = _Group(first_line=file_row.line)
        conflicts = [
            target
            for target in ORDER_TARGETS
            if values.get(target) and group.order.get(target, values[target]) != values[target]
        ]
        if conflicts:  # every column of the row that contradicts its order, in one pass
            report.refused_rows += 1
            report.problems.extend(
                _problem(
                    order_import, refused, file_row.line, _column_of(order_import, conflict),
                    values[conflict], Rule.NOT_A_CHOICE,
                    _("Differs from line %(line)s of the same order.")
                    % {"line": group.order_field_lines[conflict]},
                )
                for conflict in conflicts
            )  # fmt: skip
            others = {t: v for t, v in values.items() if t not in conflicts}
            report.problems.extend(_row_alone_problems(order_import, file_row.line, others))
            continue
        for target in ORDER_TARGETS:
            if values.get(target) and target not in group.order:
                group.order[target] = values[target]
                group.order_field_lines[target] = file_row.line
        line = {target: values[target] for target in LINE_FIELDS if values.get(target)}
        if line:
            group.lines.append(line)
            group.line_numbers.append(file_row.line)
    getattr(rows, "close", lambda: None)()  # the generator closes the file
    return list(groups.values()), count


def _row_alone_problems(
    order_import: OrderImport, line: int, values: dict[str, str]
) -> list[OrderImportProblem]:
    """The other problems of a row refused before its order is known (it has no order id,
    or contradicts its order): its values checked as an order of this one line, and its
    e-mail or phone, so that one pass over the report corrects the row."""
    order: dict = {target: values[target] for target in ORDER_TARGETS if values.get(target)}
    row_line = {target: values[target] for target in LINE_FIELDS if values.get(target)}
    order["order_id"] = order.get("order_id") or "-"  # reported already
    if row_line:
        order["lines"] = [row_line]
    _order, problems = clean_order(order, decimal_comma=True, strict=False)
    problems += address_problems(order_import.unit, values)
    found = [(_problem_target(p.field), p.rule, p.message) for p in problems]
    return [
        _problem(
            order_import,
            OrderImportProblem.Kind.REFUSED,
            line,
            _column_of(order_import, target),
            values.get(target, ""),
            rule,
            message,
        )
        for target, rule, message in found
    ]


def _problem_target(problem_field: str) -> str:
    """The file's field a problem of the cleaning names (``lines[0].quantity``: quantity)."""
    return (
        problem_field.rpartition("].")[2] if problem_field.startswith("lines[") else problem_field
    )


def _column_of(order_import: OrderImport, target: str) -> str:
    return next((c for c, t in order_import.mapping.items() if t == target), "")


def _report_outcome(
    order_import: OrderImport, group: _Group, outcome: Outcome, report: _Report
) -> None:
    """An order's report lines: every problem of a refused order; on an order kept, each
    warning on its buyer (``services._buyers``: the one rule, and its words); an unknown SKU
    on each of its lines. A duplicate was reported by the import that recorded it."""
    if outcome.status == Status.REFUSED:
        report.refused_rows += max(1, len(group.lines))
    for kind, problems in (
        (OrderImportProblem.Kind.REFUSED, outcome.problems),
        (OrderImportProblem.Kind.NO_BUYER, outcome.warnings),
    ):
        for problem in problems:
            line, target = group.first_line, _problem_target(problem.field)
            if problem.field.startswith("lines["):
                index_text = problem.field[len("lines[") :].partition("]")[0]
                line = group.line_numbers[int(index_text)]
                value = group.lines[int(index_text)].get(target, "")
            else:
                line = group.order_field_lines.get(target, group.first_line)
                value = group.order.get(target, "")
            report.problems.append(
                _problem(
                    order_import,
                    kind,
                    line,
                    _column_of(order_import, target),
                    value,
                    problem.rule,
                    problem.message,
                )
            )
    report.without_buyer += outcome.without_buyer
    unknown = set(outcome.unknown_skus)
    for line_values, line in zip(group.lines, group.line_numbers, strict=True):
        if line_values.get("sku") in unknown:
            report.problems.append(
                _problem(
                    order_import,
                    OrderImportProblem.Kind.FLAGGED,
                    line,
                    _column_of(order_import, "sku"),
                    line_values["sku"],
                    "unknown_sku",
                    _("No product with this SKU in the library: the line is kept and flagged."),
                )
            )


def order_import_run(import_id: int) -> OrderImport:
    """Run one queued import (or dry run) to its end, or go on with one whose run died
    after its last committed batch; safe to call twice (``lib.imports.import_run``)."""
    return import_run(OrderImport, import_id, _run_claimed, "unit__profile")


def _run_claimed(order_import: OrderImport) -> OrderImport:
    """Read and group the whole file (the same groups on every run), then record its orders
    batch by batch from the checkpoint: each batch's orders, report lines, counts and
    checkpoint commit together, so a run that dies leaves whole batches behind it."""
    import_id = order_import.pk
    scope = [order_import.unit_path]
    report = _Report()
    try:
        with reasons_as_source():
            groups, rows_read = _group_rows(order_import, report)
    except (UnicodeDecodeError, OSError) as exc:
        import_unreadable(order_import, exc)
        return order_import
    done = order_import.orders_done
    processed = report.refused_rows
    if done is None:  # the rows refused while reading: reported once, with the checkpoint
        with db_scope(scope), transaction.atomic():
            OrderImportProblem.objects.bulk_create(report.problems, batch_size=2000)
            import_checkpoint(
                OrderImport,
                import_id,
                {"orders_done": None},
                orders_done=0,
                refused_rows=report.refused_rows,
                processed_rows=processed,
            )
        done = 0
    processed += sum(max(1, len(g.lines)) for g in groups[:done])
    for start in range(done, len(groups), MAX_BATCH):
        batch = groups[start : start + MAX_BATCH]
        report = _Report()
        raw_orders = [{**group.order, "lines": group.lines} for group in batch]
        with db_scope(scope), transaction.atomic(), reasons_as_source():
            outcomes = orders_record(
                actor=None,
                unit=order_import.unit,
                orders=raw_orders,
                source=Order.Source.CSV,
                decimal_comma=True,
                strict=False,
                dry_run=order_import.dry_run,
            )
            for group, outcome in zip(batch, outcomes, strict=True):
                _report_outcome(order_import, group, outcome, report)
            OrderImportProblem.objects.bulk_create(report.problems, batch_size=2000)
            processed += sum(max(1, len(g.lines)) for g in batch)
            import_checkpoint(
                OrderImport,
                import_id,
                {"orders_done": start},
                orders_done=start + len(batch),
                processed_rows=min(processed, rows_read),
                **_batch_counts(batch, outcomes, report),
            )
    import_done(order_import, rows_read)
    return order_import


def _batch_counts(batch: list[_Group], outcomes: list[Outcome], report: _Report) -> dict:
    """What a recorded batch adds to the import's counts."""
    created = [(o, g) for o, g in zip(outcomes, batch, strict=True) if o.status == Status.CREATED]
    return {
        "created_count": F("created_count") + len(created),
        "duplicate_count": F("duplicate_count")
        + sum(o.status == Status.DUPLICATE for o in outcomes),
        "refused_count": F("refused_count") + sum(o.status == Status.REFUSED for o in outcomes),
        "refused_rows": F("refused_rows") + report.refused_rows,
        "line_count": F("line_count") + sum(len(g.lines) for _o, g in created),
        "unknown_sku_lines": F("unknown_sku_lines")
        + sum(p.kind == OrderImportProblem.Kind.FLAGGED for p in report.problems),
        "without_buyer_count": F("without_buyer_count") + report.without_buyer,
    }


def start_and_run(
    *, actor: User, order_import: OrderImport, mapping: dict[str, str], dry_run: bool
) -> OrderImport:
    """The command line's way: start, then run in this process (the UI would queue it)."""
    order_import = order_import_start(
        actor=actor, order_import=order_import, mapping=mapping, dry_run=dry_run, queue=False
    )
    return order_import_run(order_import.pk)
