"""People, not records (issue 20): the figures HQ reads, counted by each rollup pass.

- the network's base in records and in people (distinct persons of its records);
- the cross-shopping matrix: persons who are customers (a record marked an existing
  customer) of two units, for every pair of units, and of each unit alone on the diagonal;
- the distinct persons each campaign's sent messages reached.

Each is one set-based query over the links (``identity_recordlink``) run by the pass as
system work; the pages read the few rows it writes. Every row is filed under the network
root's path: row-level security keeps them to HQ's scope, in both network modes (in
*separate controllers* mode HQ reads them as its own controller; no store ever does).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.conf import settings
from django.db import connection

from enseigne.analytics.models import CampaignReach, CrossShopping, NetworkPeople
from enseigne.campaigns.models import Recipient
from enseigne.contacts.models import Contact
from enseigne.identity.models import RecordLink
from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode
from enseigne.network.selectors import network_root

STEP = OrgNode.steplen


def small_count_threshold() -> int:
    """Cells of the cross-shopping matrix under this are shown as "fewer than" it."""
    return int(getattr(settings, "ENSEIGNE_SMALL_COUNT_THRESHOLD", 5))


def _rows(sql: str, params: Iterable = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return list(cursor.fetchall())


def count_people(now: dt.datetime, campaign_ids: Iterable[int] = ()) -> int:
    """Rewrite the network figures and the matrix; count the reach of ``campaign_ids``."""
    contact, link = Contact._meta.db_table, RecordLink._meta.db_table
    # Records per root; persons per root (a record without a link counts as one person).
    base = _rows(
        f"SELECT substr(c.unit_path, 1, {STEP}), COUNT(*), "  # noqa: S608 (table names, constants)
        "COUNT(DISTINCT l.person_id), SUM(CASE WHEN l.person_id IS NULL THEN 1 ELSE 0 END) "
        f"FROM {contact} c LEFT JOIN {link} l ON l.contact_id = c.id GROUP BY 1"
    )
    # Per person: in how many units it has records, and in how many it is a customer.
    spread = _rows(
        "SELECT root, SUM(CASE WHEN units > 1 THEN 1 ELSE 0 END), "  # noqa: S608 (table names, constants)
        "SUM(CASE WHEN customer_units > 1 THEN 1 ELSE 0 END) FROM ("
        f"  SELECT MIN(substr(l.unit_path, 1, {STEP})) AS root, "
        "   COUNT(DISTINCT c.unit_id) AS units, "
        "   COUNT(DISTINCT CASE WHEN c.is_customer THEN c.unit_id END) AS customer_units "
        f"  FROM {link} l JOIN {contact} c ON c.id = l.contact_id "
        "  GROUP BY l.person_id HAVING COUNT(*) > 1"
        ") AS persons GROUP BY root"
    )
    shared = {root: (int(s or 0), int(x or 0)) for root, s, x in spread}
    NetworkPeople.objects.all().delete()
    NetworkPeople.objects.bulk_create(
        [
            NetworkPeople(
                unit_path=root,
                records=records,
                people=int(people) + int(unlinked or 0),
                shared=shared.get(root, (0, 0))[0],
                cross_customers=shared.get(root, (0, 0))[1],
                counted_at=now,
            )
            for root, records, people, unlinked in base
        ]
    )
    # Customers per unit (the diagonal) and per pair of units: one pass over the links of
    # customers' records; the pair join only sees persons who are customers in two units.
    customers = (
        f"SELECT DISTINCT l.person_id, c.unit_id, substr(c.unit_path, 1, {STEP}) AS root "  # noqa: S608 (table names, constants)
        f"FROM {link} l JOIN {contact} c ON c.id = l.contact_id WHERE c.is_customer"
    )
    pairs = _rows(
        f"WITH cust AS ({customers}), "  # noqa: S608 (table names, constants)
        "multi AS (SELECT person_id FROM cust GROUP BY person_id HAVING COUNT(*) > 1) "
        "SELECT a.root, a.unit_id, b.unit_id, COUNT(*), 0 FROM cust a "
        "JOIN cust b ON b.person_id = a.person_id AND a.unit_id < b.unit_id "
        "WHERE a.person_id IN (SELECT person_id FROM multi) GROUP BY 1, 2, 3 "
        "UNION ALL "
        "SELECT root, unit_id, unit_id, COUNT(*), "
        "SUM(CASE WHEN person_id IN (SELECT person_id FROM multi) THEN 1 ELSE 0 END) "
        "FROM cust GROUP BY 1, 2, 3"
    )
    CrossShopping.objects.all().delete()
    CrossShopping.objects.bulk_create(
        [
            CrossShopping(
                unit_path=root, left_unit_id=left, right_unit_id=right, people=n, elsewhere=other
            )
            for root, left, right, n, other in pairs
        ],
        batch_size=2000,
    )
    return count_reach(now, campaign_ids)


def count_reach(now: dt.datetime, campaign_ids: Iterable[int]) -> int:
    """Distinct persons reached by each campaign's sent messages (an erased or unlinked
    record's message counts as one person)."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return 0
    recipient, link = Recipient._meta.db_table, RecordLink._meta.db_table
    rows = _rows(
        f"SELECT r.campaign_id, MIN(substr(r.unit_path, 1, {STEP})), COUNT(*), "  # noqa: S608 (table names, constants)
        "COUNT(DISTINCT l.person_id) + SUM(CASE WHEN l.person_id IS NULL THEN 1 ELSE 0 END) "
        f"FROM {recipient} r LEFT JOIN {link} l ON l.contact_id = r.contact_id "
        f"WHERE r.status = %s AND r.campaign_id IN ({', '.join(['%s'] * len(ids))}) "
        "GROUP BY r.campaign_id",
        [Recipient.Status.SENT, *ids],
    )
    CampaignReach.objects.filter(campaign_id__in=ids).delete()
    CampaignReach.objects.bulk_create(
        [
            CampaignReach(
                campaign_id=campaign,
                unit_path=root,
                sent=sent,
                people=int(people),
                counted_at=now,
            )
            for campaign, root, sent, people in rows
        ]
    )
    return len(rows)


# -- reading (HQ only) ---------------------------------------------------------------------------


def network_people(root_path: str) -> NetworkPeople | None:
    return NetworkPeople.objects.filter(unit_path=root_path).first()


def campaign_reach(campaign_id: int) -> CampaignReach | None:
    return CampaignReach.objects.filter(campaign_id=campaign_id).first()


def cross_shopping(root_path: str) -> dict:
    """The matrix HQ reads: units (with customers) × units, small cells flagged.

    Each cell is {"n", "small"} (the diagonal is None: a unit's own customers are its
    row's total). ``small`` cells (fewer than the threshold, not zero) are shown as
    "fewer than N", not their exact count: one or two people shared by two stores point
    at someone. ``elsewhere`` is the row's customers who are customers of any other unit
    (a person in three stores counts once there, twice in the row's cells).
    """
    threshold = small_count_threshold()
    cells: dict[tuple[int, int], int] = {}
    elsewhere: dict[int, int] = {}
    for left, right, n, other in CrossShopping.objects.filter(unit_path=root_path).values_list(
        "left_unit_id", "right_unit_id", "people", "elsewhere"
    ):
        cells[(left, right)] = cells[(right, left)] = n
        if left == right:
            elsewhere[left] = other
    units = {
        u.pk: u
        for u in OrgNode.objects.filter(pk__in={left for left, _r in cells}).only(
            "pk", "name", "path"
        )
    }
    order = sorted(units, key=lambda pk: (units[pk].name, pk))

    def cell(n: int) -> dict:
        return {"n": n, "small": 0 < n < threshold}

    rows = [
        {
            "unit": units[left],
            "customers": cell(cells.get((left, left), 0)),
            "elsewhere": cell(elsewhere.get(left, 0)),
            "cells": [
                cell(cells.get((left, right), 0)) if right != left else None for right in order
            ],
        }
        for left in order
    ]
    return {"units": [units[pk] for pk in order], "rows": rows, "threshold": threshold}


def hq_root_for(user, root: OrgNode | None = None) -> OrgNode | None:
    """The network root whose people figures ``user`` may read: HQ's analytics at the root
    (a store or region user, whatever its rights below, gets None, without a query)."""
    access = access_for(user)
    roots = [p for p in access.paths_with(Capability.VIEW_NETWORK_ANALYTICS) if len(p) == STEP]
    if not roots:
        return None
    root = root or network_root()
    if root is None or root.path not in roots:
        return None
    return root if access.can(Capability.VIEW_NETWORK_ANALYTICS, root) else None
