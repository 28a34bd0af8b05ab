"""A person's GDPR rights across the network: one export file, one erasure (HQ only).

A store exports and erases its own record as before (contacts). HQ, holding the right at
the network root, acts for the person: the export gathers every linked record through the
same per-record export the stores use (``contacts.selectors.contact_data_export``, which
includes the later apps' sections: purchases, messages); the erasure erases each record
through the stores' own erasure service (``contacts.services.contact_erase``: the hashed
suppression of each unit and the audit line of each record stay exactly as they are),
then removes the person, which has become empty. In *separate controllers* mode this is
still HQ's act under its own role: nothing of it is shown to a store.
"""

from __future__ import annotations

from django.db import transaction
from django.http import Http404
from django.utils import timezone

from enseigne.contacts import services as contact_services
from enseigne.contacts.models import Contact
from enseigne.contacts.selectors import contact_data_export
from enseigne.network.access import access_for
from enseigne.network.models import OrgNode, User
from enseigne.network.services import audit

from .models import Person, RecordLink
from .public_ids import pk_of

FORMAT = "enseigne.person.v1"


def hq_roots_with(user: User, capability: str) -> list[str]:
    """The network roots where ``user`` holds ``capability`` (HQ): empty for any store user."""
    access = access_for(user)
    roots = OrgNode.objects.filter(
        path__in=[p for p in access.paths_with(capability) if len(p) == OrgNode.steplen]
    )
    return [root.path for root in roots if access.can(capability, root)]


def get_person_for_hq(user: User, public_id, capability: str) -> tuple[Person, str]:
    """The person and its network root, or 404: for anyone not HQ of that person's network.

    A store user, even one holding the capability on its own unit, gets 404 like a missing
    person: the per-person rights are HQ's, and the answer says nothing of other stores.
    """
    pk = pk_of(public_id)
    roots = hq_roots_with(user, capability)
    if pk is None or not roots:
        raise Http404("No such person.")
    person = Person.objects.filter(pk=pk).first()
    if person is None:
        raise Http404("No such person.")
    paths = list(RecordLink.objects.filter(person=person).values_list("unit_path", flat=True))
    root = next((r for r in roots if paths and all(p.startswith(r) for p in paths)), None)
    if root is None:
        raise Http404("No such person.")
    return person, root


def person_records(person: Person) -> list[Contact]:
    """The person's records, oldest first, with their unit."""
    return list(
        Contact.objects.filter(identity_link__person=person)
        .select_related("unit")
        .prefetch_related("tags")
        .order_by("created_at", "id")
    )


def person_data_export(person: Person) -> dict:
    """Everything held about the person: each linked record as its store would export it,
    and why it is linked to the person (how, with what score, when)."""
    records = person_records(person)
    links = {link.contact_id: link for link in RecordLink.objects.filter(contact__in=records)}
    return {
        "format": FORMAT,
        "person": str(person.public_id),
        "exported_at": timezone.now().isoformat(),
        "records": [
            {**contact_data_export(contact), "link": _link_export(links.get(contact.pk))}
            for contact in records
        ],
    }


def _link_export(link: RecordLink | None) -> dict | None:
    if link is None:
        return None
    return {
        "method": link.method,
        "score": link.score,
        "linked_at": link.linked_at.isoformat(),
    }


def person_export(*, actor: User, person: Person, root: str) -> dict:
    """The export file's content, audited: one line for the person, one per record."""
    data = person_data_export(person)
    records = person_records(person)
    for contact in records:
        contact_services.export_recorded(actor=actor, count=1, contact=contact)
    audit(
        actor=actor,
        action="person.export",
        target=person,
        node_path=root,
        changes={"records": len(records)},
    )
    return data


@transaction.atomic
def person_erase(*, actor: User, person: Person, root: str) -> int:
    """Erase every record of the person, then the person; returns how many records went.

    The person's row is locked first: a record written meanwhile for this person (an
    import, the API) waits, then fails on the removed person rather than joining a person
    being erased. Any record the actor may not erase refuses the whole erasure.
    """
    person = Person.objects.select_for_update().get(pk=person.pk)
    records = person_records(person)
    for contact in records:
        contact_services.contact_erase(actor=actor, contact=contact)
    public_id = person.public_id
    person.delete()
    audit(
        actor=actor,
        action="person.erase",
        target_type="person",
        target_id=str(public_id),
        node_path=root,
        changes={"records": len(records)},
    )
    return len(records)
