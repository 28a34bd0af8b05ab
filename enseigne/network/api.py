from __future__ import annotations

import uuid

from django.http import HttpRequest
from ninja import Router, Schema

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


@router.get("/units", response=list[UnitOut])
def list_units(request: HttpRequest):
    units = selectors.units_for_user(request.user).prefetch_related("tags")
    return [
        UnitOut(
            id=u.public_id, code=u.code, name=u.name, path=u.path, city=u.profile.city,
            postal_code=u.profile.postal_code, address_line=u.profile.address_line,
            phone=u.profile.phone, email=u.profile.email, website=u.profile.website,
            manager_name=u.profile.manager_name, opening_hours=u.profile.opening_hours,
            time_zone=u.profile.time_zone, variables=u.profile.variables,
            tags=sorted(t.name for t in u.tags.all()),
        )
        for u in units
    ]


@router.get("/units/{unit_id}", response=UnitOut)
def get_unit(request: HttpRequest, unit_id: uuid.UUID):
    u = selectors.get_unit_for_user(request.user, unit_id)
    return UnitOut(
        id=u.public_id, code=u.code, name=u.name, path=u.path, city=u.profile.city,
        postal_code=u.profile.postal_code, address_line=u.profile.address_line,
        phone=u.profile.phone, email=u.profile.email, website=u.profile.website,
        manager_name=u.profile.manager_name, opening_hours=u.profile.opening_hours,
        time_zone=u.profile.time_zone, variables=u.profile.variables,
        tags=sorted(t.name for t in u.tags.all()),
    )
