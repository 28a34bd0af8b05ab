"""Contacts, consent and imports over the JSON API; same selectors and services as the UI."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, File, Form, Query, Router, Schema
from ninja.files import UploadedFile
from ninja.responses import Status

from enseigne.api.bounds import fits, max_length_of, text_of
from enseigne.api.paging import PageParams, page_of, paginate
from enseigne.contacts import selectors, services
from enseigne.contacts.import_services import import_prepare, import_start
from enseigne.contacts.models import ConsentEvent, Contact, ContactImport, Segment, Tag
from enseigne.contacts.records import person_id_for
from enseigne.contacts.segments import segment_count
from enseigne.network import selectors as network_selectors
from enseigne.network.capabilities import Capability

router = Router(tags=["contacts"])


class ContactOut(Schema):
    id: uuid.UUID
    unit: uuid.UUID
    email: str | None
    phone: str | None
    first_name: str
    last_name: str
    birthday: dt.date | None
    language: str
    is_customer: bool
    attributes: dict
    tags: list[str]
    email_consent: str
    sms_consent: str
    created_at: dt.datetime

    @staticmethod
    def from_contact(contact: Contact) -> ContactOut:
        return ContactOut(
            id=contact.public_id,
            unit=contact.unit.public_id,
            email=contact.email,
            phone=contact.phone,
            first_name=contact.first_name,
            last_name=contact.last_name,
            birthday=contact.birthday,
            language=contact.language,
            is_customer=contact.is_customer,
            attributes=contact.attributes,
            tags=sorted(t.name for t in contact.tags.all()),
            email_consent=contact.email_consent,
            sms_consent=contact.sms_consent,
            created_at=contact.created_at,
        )


TagName = text_of(Tag, "name")


class ContactIn(Schema):
    unit: uuid.UUID
    email: str | None = fits(Contact, "email", None)
    phone: str | None = fits(Contact, "phone", None)
    first_name: str = fits(Contact, "first_name", "")
    last_name: str = fits(Contact, "last_name", "")
    birthday: dt.date | None = None
    language: str = fits(Contact, "language", "")
    is_customer: bool = False
    attributes: dict = {}
    tags: list[TagName] = []


class ContactPatch(Schema):
    email: str | None = fits(Contact, "email", None)
    phone: str | None = fits(Contact, "phone", None)
    first_name: str | None = fits(Contact, "first_name", None)
    last_name: str | None = fits(Contact, "last_name", None)
    birthday: dt.date | None = None
    language: str | None = fits(Contact, "language", None)
    is_customer: bool | None = None
    attributes: dict | None = None
    tags: list[TagName] | None = None


class ConsentIn(Schema):
    channel: str = fits(ConsentEvent, "channel")
    status: str = fits(ConsentEvent, "status")
    source: str = fits(ConsentEvent, "source", "api")
    occurred_at: dt.datetime | None = None
    wording_version: str = fits(ConsentEvent, "wording_version", "")
    ip_address: str | None = Field(None, max_length=45)  # the longest IPv6 text form
    user_agent: str = fits(ConsentEvent, "user_agent", "")
    confirmed_at: dt.datetime | None = None


class ConsentOut(Schema):
    channel: str
    purpose: str
    status: str
    occurred_at: dt.datetime
    source: str
    source_ref: str
    wording_version: str
    confirmed_at: dt.datetime | None


class ImportOut(Schema):
    id: uuid.UUID
    unit: uuid.UUID
    file_name: str
    status: str
    columns: list[str]
    mapping: dict
    total_rows: int | None
    processed_rows: int
    created_count: int
    updated_count: int
    unchanged_count: int
    rejected_count: int
    error: str

    @staticmethod
    def from_import(imp: ContactImport) -> ImportOut:
        return ImportOut(
            id=imp.public_id,
            unit=imp.unit.public_id,
            file_name=imp.file_name,
            status=imp.status,
            columns=imp.columns,
            mapping=imp.mapping,
            total_rows=imp.total_rows,
            processed_rows=imp.processed_rows,
            created_count=imp.created_count,
            updated_count=imp.updated_count,
            unchanged_count=imp.unchanged_count,
            rejected_count=imp.rejected_count,
            error=imp.error,
        )


class RejectionOut(Schema):
    row: int
    field: str
    value: str
    reason: str
    # refused: the row was not imported; skipped: imported without this value;
    # duplicate: imported, the phone number left to the contact that has it.
    kind: str


class CountIn(Schema):
    rules: dict


class CountOut(Schema):
    count: int


@router.get("/contacts", response=page_of(ContactOut))
def list_contacts(
    request: HttpRequest,
    page: Query[PageParams],
    q: str = "",
    unit: uuid.UUID | None = None,
    tag: str = "",
    consent: str = "",
):
    node = network_selectors.get_node_for_user(request.user, unit) if unit else None
    contacts = selectors.contact_search(request.user, query=q, unit=node, tag=tag, consent=consent)
    return paginate(contacts.prefetch_related("tags"), page, ContactOut.from_contact)


class ContactCreatedOut(ContactOut):
    person_id: uuid.UUID | None = Field(
        None,
        description="The person this record joined (HQ tokens, one-controller networks only; "
        "absent otherwise).",
    )


@router.post("/contacts", response={201: ContactCreatedOut}, exclude_unset=True)
def create_contact(request: HttpRequest, payload: ContactIn):
    unit = network_selectors.get_unit_for_user(request.user, payload.unit, Capability.EDIT_CONTACTS)
    data = payload.dict(exclude={"unit", "tags"})
    contact = services.contact_create(actor=request.user, unit=unit, data=data, tags=payload.tags)
    created = ContactCreatedOut(**ContactOut.from_contact(contact).dict())
    person_id = person_id_for(request.user, contact)
    if person_id is not None:
        created.person_id = person_id
    return Status(201, created)


@router.get("/contacts/{contact_id}", response=ContactOut)
def get_contact(request: HttpRequest, contact_id: uuid.UUID):
    return ContactOut.from_contact(selectors.get_contact_for_user(request.user, contact_id))


@router.patch("/contacts/{contact_id}", response=ContactOut)
def patch_contact(request: HttpRequest, contact_id: uuid.UUID, payload: ContactPatch):
    contact = selectors.get_contact_for_user(request.user, contact_id, Capability.EDIT_CONTACTS)
    data = payload.dict(exclude_unset=True)
    tags = data.pop("tags", None)
    contact = services.contact_update(actor=request.user, contact=contact, data=data, tags=tags)
    return ContactOut.from_contact(contact)


@router.delete("/contacts/{contact_id}", response={204: None})
def erase_contact(request: HttpRequest, contact_id: uuid.UUID):
    contact = selectors.get_contact_for_user(request.user, contact_id, Capability.ERASE_CONTACTS)
    services.contact_erase(actor=request.user, contact=contact)
    return Status(204, None)


@router.get("/contacts/{contact_id}/consent-events", response=list[ConsentOut])
def list_consent(request: HttpRequest, contact_id: uuid.UUID):
    contact = selectors.get_contact_for_user(request.user, contact_id)
    return list(contact.consent_events.all())


@router.post("/contacts/{contact_id}/consent-events", response={201: ConsentOut})
def record_consent(request: HttpRequest, contact_id: uuid.UUID, payload: ConsentIn):
    contact = selectors.get_contact_for_user(request.user, contact_id, Capability.EDIT_CONTACTS)
    event = services.consent_record(
        actor=request.user,
        contact=contact,
        source_ref=f"api-user:{request.user.public_id}",
        **payload.dict(),
    )
    return Status(201, event)


@router.get("/imports", response=page_of(ImportOut))
def list_imports(request: HttpRequest, page: Query[PageParams], status: str = ""):
    imports = selectors.imports_for_user(request.user)
    if status:
        imports = imports.filter(status=status)
    return paginate(imports, page, ImportOut.from_import)


@router.post("/imports", response={201: ImportOut})
def create_import(
    request: HttpRequest,
    file: File[UploadedFile],
    unit: Form[uuid.UUID],
    mapping: str = Form("", max_length=20_000),
    consent_channels: str = Form("", max_length=40),
    consent_wording: str = Form("", max_length=max_length_of(ContactImport, "consent_wording")),
    tags: str = Form("", max_length=2_000),
):
    """Upload a CSV. With ``mapping`` (JSON: column → field) the import starts at once;
    without it, the import waits and proposes a mapping in ``mapping``."""
    node = network_selectors.get_unit_for_user(request.user, unit, Capability.IMPORT_CONTACTS)
    imp = import_prepare(
        actor=request.user, unit=node, file_name=file.name or "upload.csv", content=file.read()
    )
    if mapping:
        try:
            chosen = json.loads(mapping)
        except ValueError:
            chosen = None
        if not isinstance(chosen, dict):
            raise ValidationError({"mapping": _("mapping must be a JSON object: column → field.")})
        imp = import_start(
            actor=request.user,
            contact_import=imp,
            mapping=chosen,
            consent_channels=[c for c in consent_channels.split(",") if c],
            consent_wording=consent_wording,
            tags=tags.split(","),
        )
    return Status(201, ImportOut.from_import(imp))


@router.get("/imports/{import_id}", response=ImportOut)
def get_import(request: HttpRequest, import_id: uuid.UUID):
    return ImportOut.from_import(selectors.get_import_for_user(request.user, import_id))


@router.get("/imports/{import_id}/rejections", response=page_of(RejectionOut))
def get_import_rejections(request: HttpRequest, import_id: uuid.UUID, page: Query[PageParams]):
    imp = selectors.get_import_for_user(request.user, import_id)
    return paginate(
        imp.rejections.all(),
        page,
        lambda r: RejectionOut(
            row=r.row_number, field=r.field, value=r.value, reason=r.reason_text, kind=r.kind
        ),
    )


@router.post("/segments/count", response=CountOut)
def count_segment(request: HttpRequest, payload: CountIn):
    return {"count": segment_count(request.user, payload.rules)}


class SegmentOut(Schema):
    id: uuid.UUID
    owner: uuid.UUID
    name: str
    description: str
    rules: dict
    updated_at: dt.datetime

    @staticmethod
    def from_segment(segment: Segment) -> SegmentOut:
        return SegmentOut(
            id=segment.public_id,
            owner=segment.owner.public_id,
            name=segment.name,
            description=segment.description,
            rules=segment.rules,
            updated_at=segment.updated_at,
        )


@router.get("/segments", response=page_of(SegmentOut))
def list_segments(request: HttpRequest, page: Query[PageParams]):
    return paginate(selectors.segments_for_user(request.user), page, SegmentOut.from_segment)


@router.get("/segments/{segment_id}", response=SegmentOut)
def get_segment(request: HttpRequest, segment_id: uuid.UUID):
    return SegmentOut.from_segment(selectors.get_segment_for_user(request.user, segment_id))
