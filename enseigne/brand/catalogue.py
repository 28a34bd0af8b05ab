"""A product catalogue (SKU, name, category, price) imported into the asset library.

Each row creates the owner's product with that SKU or updates it (name, category, price;
its link, button and picture stay). The file is read like a contacts import (any encoding
a spreadsheet writes, ``;`` or ``,``, a decimal comma in prices). A bad row is reported with
its line, column, value and reason, and the others are imported; a dry run writes nothing.
Products are written through the library's own services, so each change is audited and
the local versions that show a product follow its new price.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from enseigne.brand.asset_services import asset_create, asset_update, clean_content, owner_paths
from enseigne.brand.models import Asset
from enseigne.contacts.import_reader import (
    FileRow,
    NotText,
    decode_upload,
    guess_by_name,
    guess_table,
    read_rows,
)
from enseigne.lib.decimals import NotADecimal, parse_decimal
from enseigne.network.models import OrgNode, User

FIELDS = ("sku", "name", "category", "price")
MAX_ROWS = 100_000
_GUESSES = {
    "sku": {"sku", "ref", "reference", "ref article", "reference article", "code article",
            "code", "ean", "product code"},
    "name": {"name", "nom", "libelle", "designation", "produit", "product", "product name",
             "nom du produit"},
    "category": {"category", "categorie", "famille", "rayon", "univers"},
    "price": {"price", "prix", "prix ttc", "prix de vente", "pv", "pvc", "unit price"},
}  # fmt: skip
_GUESS_TABLE = guess_table(_GUESSES)
REQUIRED = ("sku", "name")


def guess_mapping(columns: list[str]) -> dict[str, str]:
    """Each column's proposed field, from its name (French or English, any case or accent)."""
    return guess_by_name(columns, _GUESS_TABLE)


@dataclass
class CatalogueResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str, str, str]] = field(
        default_factory=list
    )  # line, column, value, reason

    @property
    def rejected(self) -> int:
        return len({line for line, *_rest in self.errors})


def _price(text: str) -> str:
    """The price as the library keeps it (``12.50``), from ``12,50``, ``12.5`` or ``1 299,00``."""
    try:
        price = parse_decimal(text.replace("€", "").strip(), decimal_comma=True)
    except NotADecimal as error:
        raise ValidationError({"price": str(error)}) from None
    if price < 0 or price != price.quantize(Decimal("0.01")):
        raise ValidationError({"price": _("A price of 0 or more, to the cent.")})
    return f"{price:.2f}"


Problem = tuple[int, str, str, str]  # line, column, value, reason


def _joined(messages: list[str]) -> str:
    """A field's messages as one reason; a single one as it is (a report may keep its
    source text and parameters: ``lib.imports.reasons_as_source``)."""
    return messages[0] if len(messages) == 1 else " ".join(messages)


@dataclass
class CheckedRow:
    """A file row checked: its product's fields, or why it is not imported."""

    line: int
    data: dict | None
    problems: list[Problem]


def check_rows(
    header: list[str], rows: Iterable[FileRow], mapping: dict[str, str]
) -> list[CheckedRow]:
    """Every row of the file checked against the mapping (column -> field), a second row
    with an SKU seen before included. Reads and writes no database."""
    position = {name: index for index, name in reversed(list(enumerate(header)))}
    columns = {
        target: (position[column], column[:255])  # as a report line keeps it
        for column, target in mapping.items()
        if target in FIELDS and column in position
    }
    checked: list[CheckedRow] = []
    seen: dict[str, int] = {}
    for row in rows:
        if row.fields is None:
            reason = _("The line cannot be split into columns: check its quotation marks.")
            checked.append(CheckedRow(row.line, None, [(row.line, "", row.text[:200], reason)]))
            continue
        values = {
            target: (row.fields[index].strip() if index < len(row.fields) else "")
            for target, (index, _name) in columns.items()
        }
        try:
            if values.get("price"):
                values["price"] = _price(values["price"])
            data = clean_content(Asset.Kind.PRODUCT, values)
        except ValidationError as error:
            problems = [
                (row.line, columns.get(name, (0, name))[1], values.get(name, "")[:200], _joined(m))
                for name, m in error.message_dict.items()
            ]
            checked.append(CheckedRow(row.line, None, problems))
            continue
        sku = data["sku"]
        if sku in seen:
            reason = _("The same SKU as line %(line)s.") % {"line": seen[sku]}
            checked.append(CheckedRow(row.line, None, [(row.line, columns["sku"][1], sku, reason)]))
            continue
        seen[sku] = row.line
        checked.append(CheckedRow(row.line, data, []))
    return checked


@dataclass
class Library:
    """Where a catalogue's products go: the actor (whose rights and name each write checks
    and audits), the node they are shared with or, with ``own``, the unit's own, and the
    owner's products by SKU (the first one where two share an SKU), which learns the
    products created."""

    actor: User
    node: OrgNode
    own: bool
    existing: dict[str, Asset]

    @classmethod
    def of(cls, actor: User, node: OrgNode, *, own: bool) -> Library:
        unit_path, _shared_path = owner_paths(actor, node, own=own)  # PermissionDenied
        products = Asset.objects.filter(kind=Asset.Kind.PRODUCT, unit_path=unit_path)
        existing: dict[str, Asset] = {}
        for asset in products.order_by("pk"):
            existing.setdefault(str(asset.data.get("sku") or ""), asset)
        return cls(actor, node, own, existing)

    def write(self, rows: Iterable[CheckedRow], mapped: Iterable[str], dry_run: bool) -> Counter:
        """Create each checked row's product, or update the fields the file maps
        (``mapped``); how many were created, updated, unchanged."""
        fields = set(FIELDS) & set(mapped)
        counts: Counter[str] = Counter(created=0, updated=0, unchanged=0)
        for data in (row.data for row in rows if row.data is not None):
            asset = self.existing.get(data["sku"])
            if asset is None:
                counts["created"] += 1
                if not dry_run:
                    self.existing[data["sku"]] = asset_create(
                        actor=self.actor,
                        node=self.node,
                        own=self.own,
                        kind=Asset.Kind.PRODUCT,
                        name=data["name"],
                        data=data,
                    )
                continue
            merged = {**asset.data, **{k: v for k, v in data.items() if k in fields}}
            if merged == asset.data and asset.name == data["name"]:
                counts["unchanged"] += 1
                continue
            counts["updated"] += 1
            if not dry_run:
                asset_update(actor=self.actor, asset=asset, name=data["name"], data=merged)
        return counts


def missing_fields(mapping: dict[str, str]) -> list[str]:
    """The fields every catalogue file must have a column for, and this mapping has not."""
    return [f for f in REQUIRED if f not in mapping.values()]


def catalogue_import(
    *,
    actor: User,
    node: OrgNode,
    own: bool,
    file_name: str,
    content: bytes,
    dry_run: bool = False,
) -> CatalogueResult:
    """Create or update the owner's products by SKU (HQ's shared with ``node``'s subtree,
    or, with ``own``, the unit's own), in this process, columns found by their names;
    report bad rows. The command line's and the demo's way; the page queues
    ``commerce.catalogue_importer`` for the worker."""
    library = Library.of(actor, node, own=own)
    try:
        text = decode_upload(content, file_name)
    except NotText as exc:
        raise ValidationError({"file": str(exc)}) from None
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".csv", newline="") as handle:
        handle.write(text)
        handle.flush()
        header, rows = read_rows(handle.name)
        mapping = guess_mapping(header)
        missing = missing_fields(mapping)
        if missing:
            raise ValidationError(
                {
                    "file": _("No column for: %(fields)s (the first line names the columns).")
                    % {"fields": ", ".join(missing)}
                }
            )
        rows_list = list(rows)
    if len(rows_list) > MAX_ROWS:
        raise ValidationError(
            {"file": _("More than %(n)s rows: split the file.") % {"n": f"{MAX_ROWS:,}"}}
        )
    checked = check_rows(header, rows_list, mapping)
    counts = library.write(checked, mapping.values(), dry_run)
    return CatalogueResult(
        created=counts["created"],
        updated=counts["updated"],
        unchanged=counts["unchanged"],
        errors=[problem for row in checked for problem in row.problems],
    )
