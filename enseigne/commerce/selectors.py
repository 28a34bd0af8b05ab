"""Scoped reads of the purchases' pages: who may record a unit's sales sees its imports."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from enseigne.commerce.models import OrderImport
from enseigne.lib.ids import parse_uuid
from enseigne.network.access import access_for, path_filter
from enseigne.network.capabilities import Capability
from enseigne.network.models import User


def order_imports_for_user(user: User) -> QuerySet[OrderImport]:
    paths = access_for(user).paths_with(Capability.RECORD_CONVERSIONS)
    return OrderImport.objects.filter(path_filter(paths)).select_related("unit", "created_by")


def get_order_import_for_user(user: User, public_id) -> OrderImport:
    wanted = parse_uuid(public_id)
    found = (
        None if wanted is None else order_imports_for_user(user).filter(public_id=wanted).first()
    )
    if found is None:
        # Another unit's import, or a role that may not record sales: as if none existed.
        raise Http404("No such import.")
    return found
