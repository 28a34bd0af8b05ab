"""A record being erased leaves HQ's review queue and its kept-apart pairs.

Those rows are HQ's ('' unit path, row-level security shows them to the network root's
scope only), so a store erasing its own record cannot see them, and Django's cascade,
which reads before it deletes, would leave them pointing at a deleted record: on
PostgreSQL the erasure then failed at commit. The erasure tells identity through the
contacts' record hooks (``records_erased``), and identity removes them as
system work in the same transaction, with the record's link and keys (HQ-only rows too).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Q

from enseigne.lib.rowsecurity import ALL, db_scope

from .models import KeptApart, MatchCandidate, RecordLink


def forget_erased_records(contact_ids: Sequence[int]) -> None:
    ids = list(contact_ids)
    with db_scope(ALL):
        for model in (MatchCandidate, KeptApart):
            model.objects.filter(Q(left_id__in=ids) | Q(right_id__in=ids)).delete()
        # Out of a store's sight too (HQ-only rows): its keys must not outlive the record.
        RecordLink.objects.filter(contact_id__in=ids).delete()
