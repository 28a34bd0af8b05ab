"""Scoped reads of the purchases' pages: who may record a unit's sales sees its imports;
who manages the library's assets under a node sees the catalogue imports shared there."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from enseigne.commerce.models import CatalogueImport, OrderImport
from enseigne.lib.ids import parse_uuid
from enseigne.network.access import access_for, path_filter
from enseigne.network.capabilities import Capability
from enseigne.network.models import User


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
