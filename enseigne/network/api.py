from __future__ import annotations

import uuid

from django.http import HttpRequest
from ninja import Query, Router, Schema

from enseigne.api.paging import PageParams, page_of, paginate
from enseigne.network import selectors

router = Router(tags=["network"])


class UnitOut(Schema):
    id: uuid.UUID
    code: str
    name: str
    path: str
    city: str
    postal_code: str
    address_line: str
    phone: str
    email: str
    website: str
    manager_name: str
    opening_hours: str
    time_zone: str
    variables: dict
    tags: list[str]


def _unit_out(u) -> UnitOut:
    p = u.profile
    return UnitOut(
        id=u.public_id,
        code=u.code,
        name=u.name,
        path=u.path,
        city=p.city,
        postal_code=p.postal_code,
        address_line=p.address_line,
        phone=p.phone,
        email=p.email,
        website=p.website,
        manager_name=p.manager_name,
        opening_hours=p.opening_hours,
        time_zone=p.time_zone,
        variables=p.variables,
        tags=sorted(t.name for t in u.tags.all()),
    )


@router.get("/units", response=page_of(UnitOut))
def list_units(request: HttpRequest, page: Query[PageParams]):
    units = selectors.units_for_user(request.user).select_related("profile")
    return paginate(units.prefetch_related("tags"), page, _unit_out)


@router.get("/units/{unit_id}", response=UnitOut)
def get_unit(request: HttpRequest, unit_id: uuid.UUID):
    return _unit_out(selectors.get_unit_for_user(request.user, unit_id))
