"""Contact bases as the rollups keep them: what the HQ home shows for every unit.

Counting a million contacts per unit on every visit of the HQ home read the whole table
(0.2 s of database time at 1,000,000 contacts, most of a core). Each rollup pass (every
five minutes, ``rollups.snapshot_bases``) already counts every unit's base: the page reads
those rows and says when they were counted. A unit the last pass did not see (created
since, or no pass yet on a new installation) is counted live: that one is small.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from enseigne.analytics import rollups
from enseigne.analytics.models import UnitDay
from enseigne.contacts.selectors import unit_contact_counts
from enseigne.network.access import access_for, path_filter
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode, User


def kept_contact_counts(
    user: User, units: list[OrgNode]
) -> tuple[dict[int, int], dt.datetime | None]:
    """Contacts per unit id for ``units`` within the user's scope, and when they were counted
    (None when every figure is live)."""
    counted_at = rollups.refreshed_at()
    counts: dict[int, int] = {}
    if counted_at is not None:
        # The last pass wrote every unit's base under its own day (network time zone).
        paths = access_for(user).paths_with(Capability.VIEW_CONTACTS)
        counts = dict(
            UnitDay.objects.filter(
                path_filter(paths),
                day=timezone.localtime(counted_at).date(),
                unit_id__in=[u.pk for u in units],
            ).values_list("unit_id", "contacts")
        )
    missing = [u for u in units if u.pk not in counts]
    if missing:
        counts.update(unit_contact_counts(user, missing))
    return counts, (counted_at if len(missing) < len(units) else None)
