"""Scoped reads of tracking data."""

from __future__ import annotations

from django.db.models import QuerySet

from enseigne.network.access import access_for, path_filter
from enseigne.network.models import User
from enseigne.tracking.models import Conversion


def conversions_for_user(user: User) -> QuerySet[Conversion]:
    """Orders of the units in the user's scope (the sales pages read the same)."""
    return (
        Conversion.objects.filter(path_filter(access_for(user).paths))
        .select_related("unit", "contact")
        .order_by("-occurred_at")
    )
