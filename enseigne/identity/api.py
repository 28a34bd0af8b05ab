"""The customer base over the JSON API: HQ tokens only (anyone else gets 404, as in the UI)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from ninja import Query, Router, Schema

from enseigne.api.paging import PageParams, page_of
from enseigne.network.access import AuthenticatedRequest

from . import selectors

router = Router(tags=["people"])


class PersonSummaryOut(Schema):
    id: uuid.UUID
    name: str
    records: list[uuid.UUID]
    units: list[uuid.UUID]
    created_at: dt.datetime


class LinkedRecordOut(Schema):
    id: uuid.UUID
    unit: uuid.UUID
    method: str
    score: float | None
    linked_at: dt.datetime
    matched_on: list[str]
    email_consent: str
    sms_consent: str


class GoldenFieldOut(Schema):
    value: Any
    rule: str
    source_record: uuid.UUID | None
    source_unit: uuid.UUID | None


class PersonOut(Schema):
    id: uuid.UUID
    created_at: dt.datetime
    records: list[LinkedRecordOut]
    golden: dict[str, GoldenFieldOut]
    last_activity: dt.datetime | None


@router.get("/people", response=page_of(PersonSummaryOut))
def list_people(request: AuthenticatedRequest, page: Query[PageParams], q: str = ""):
    """People of the network (HQ only), newest first; ``q`` searches names, e-mails and
    phones of their records, accents and case ignored."""
    people = selectors.people_search(request.user, query=q)
    rows = list(people[page.offset : page.offset + page.limit])
    records = selectors.people_records_ids(request.user, rows)
    return {
        "count": people.count(),
        "results": [
            PersonSummaryOut(
                id=p.public_id,
                name=records[p.pk]["name"],
                records=records[p.pk]["records"],
                units=records[p.pk]["units"],
                created_at=p.created_at,
            )
            for p in rows
        ],
    }


@router.get("/people/{person_id}", response=PersonOut)
def get_person(request: AuthenticatedRequest, person_id: uuid.UUID):
    """One person: its records and why each is linked, and the golden record with each
    field's rule and source."""
    person = selectors.get_person_for_user(request.user, person_id)
    card = selectors.person_card(request.user, person)
    return PersonOut(
        id=person.public_id,
        created_at=person.created_at,
        records=[
            LinkedRecordOut(
                id=r.public_id,
                unit=r.unit.public_id,
                method=r.link.method,  # type: ignore[attr-defined]
                score=r.link.score,  # type: ignore[attr-defined]
                linked_at=r.link.linked_at,  # type: ignore[attr-defined]
                matched_on=r.matched_kinds,  # type: ignore[attr-defined]
                email_consent=r.email_consent,
                sms_consent=r.sms_consent,
            )
            for r in card.records
        ],
        golden={
            f.name: GoldenFieldOut(
                value=f.value.isoformat() if isinstance(f.value, dt.date) else f.value,
                rule=f.rule.key,
                source_record=f.source.public_id if f.source else None,
                source_unit=f.source.unit.public_id if f.source else None,
            )
            for f in card.golden
        },
        last_activity=card.last_activity,
    )
