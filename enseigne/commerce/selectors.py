"""Scoped reads of the purchases' pages: who may record a unit's sales sees its imports;
who manages the library's assets under a node sees the catalogue imports shared there."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404

from enseigne.commerce.models import CatalogueImport, Order, OrderImport
from enseigne.lib.ids import parse_uuid
from enseigne.network.access import access_for, path_filter
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode, User


def order_imports_for_user(user: User) -> QuerySet[OrderImport]:
    paths = access_for(user).paths_with(Capability.RECORD_CONVERSIONS)
    return OrderImport.objects.filter(path_filter(paths)).select_related("unit", "created_by")


def _one_or_404(imports: QuerySet, public_id):
    wanted = parse_uuid(public_id)
    found = None if wanted is None else imports.filter(public_id=wanted).first()
    if found is None:
        # Another unit's import, or a role that may not see it: as if none existed.
        raise Http404("No such import.")
    return found


def get_order_import_for_user(user: User, public_id) -> OrderImport:
    return _one_or_404(order_imports_for_user(user), public_id)


def catalogue_imports_for_user(user: User) -> QuerySet[CatalogueImport]:
    paths = access_for(user).paths_with(Capability.MANAGE_ASSETS)
    return CatalogueImport.objects.filter(path_filter(paths)).select_related("node", "created_by")


def get_catalogue_import_for_user(user: User, public_id) -> CatalogueImport:
    return _one_or_404(catalogue_imports_for_user(user), public_id)


# -- the stores' own sales, for the results pages ------------------------------------------------


@dataclass(frozen=True)
class StoreSales:
    """A store's orders over a period as its tills and shops reported them (every order, credited
    to a campaign or not): sales are orders with a total ≥ 0, returns orders with a negative
    total (made of return lines); ``revenue`` is the sum of every total, so returns are
    deducted."""

    orders: int = 0
    returns: int = 0
    revenue: Decimal = Decimal("0.00")
    returned: Decimal = Decimal("0.00")  # the returns' amount, ≤ 0, already in ``revenue``

    def __add__(self, other: StoreSales) -> StoreSales:
        return StoreSales(
            self.orders + other.orders,
            self.returns + other.returns,
            self.revenue + other.revenue,
            self.returned + other.returned,
        )


CENT = Decimal("0.01")


def store_sales(
    units: Iterable[OrgNode], since: dt.datetime, until: dt.datetime | None = None
) -> dict[int, StoreSales]:
    """``{unit id: StoreSales}`` for ``units`` (already authorized by the caller) over
    [since, until), in one grouped query on the (unit, time) index; a unit without an order
    is absent."""
    ids = [unit.pk for unit in units]
    if not ids:
        return {}
    rows = Order.objects.filter(unit_id__in=ids, occurred_at__gte=since)
    if until is not None:
        rows = rows.filter(occurred_at__lt=until)
    refund = Q(total__lt=0)
    return {
        row["unit_id"]: StoreSales(
            orders=row["orders"],
            returns=row["returns"],
            revenue=(row["revenue"] or Decimal(0)).quantize(CENT),
            returned=(row["returned"] or Decimal(0)).quantize(CENT),
        )
        for row in rows.values("unit_id")
        .annotate(
            orders=Count("id", filter=~refund),
            returns=Count("id", filter=refund),
            revenue=Sum("total"),
            returned=Sum("total", filter=refund),
        )
        .order_by()
    }


def latest_orders(units: Iterable[OrgNode], limit: int = 50) -> list[Order]:
    """The latest orders of ``units`` (already authorized by the caller), newest first."""
    ids = [unit.pk for unit in units]
    return list(
        Order.objects.filter(unit_id__in=ids)
        .select_related("unit")
        .order_by("-occurred_at", "-id")[:limit]
    )
