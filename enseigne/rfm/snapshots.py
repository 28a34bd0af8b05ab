"""Monthly pictures of the RFM groups, for the month-to-month migration between groups.

Taken by the nightly task once the scores are computed (``tasks.rfm_nightly``): the current
month's rows are replaced by the records' scores of the night, so when a month ends its rows
are its last night's groups."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import DateField, Value
from django.utils import timezone

from enseigne.lib.bulk import insert_select

from .models import GroupSnapshot, RecordScore

FIELDS = ("month", "contact", "unit_path", "recency", "frequency", "net", "group")


def month_of(moment: dt.datetime | dt.date) -> dt.date:
    day = timezone.localdate(moment) if isinstance(moment, dt.datetime) else moment
    return day.replace(day=1)


def previous_month(month: dt.date) -> dt.date:
    return (month - dt.timedelta(days=1)).replace(day=1)


@transaction.atomic
def snapshot_month(root: str, as_of: dt.datetime | None = None) -> int:
    """Replace the network's records' snapshot for the month of ``as_of`` (now): the number
    of records written."""
    month = month_of(as_of or timezone.now())
    GroupSnapshot.objects.filter(month=month, unit_path__startswith=root).delete()
    source = RecordScore.objects.filter(unit_path__startswith=root).values_list(
        Value(month, output_field=DateField()),
        "contact_id",
        "unit_path",
        "recency",
        "frequency",
        "net",
        "group",
    )
    return insert_select(GroupSnapshot, FIELDS, source)
