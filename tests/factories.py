"""Factories and the named personas every test uses."""

from __future__ import annotations

from dataclasses import dataclass

import factory

from enseigne.contacts.models import Contact
from enseigne.contacts.records import record_of, records_written
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network import services as network
from enseigne.network.models import OrgNode, User

PASSWORD = "a-long-test-password"


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact
        skip_postgeneration_save = True

    unit = None
    unit_path = factory.LazyAttribute(lambda o: o.unit.path)
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    phone = None
    first_name = factory.Sequence(lambda n: f"Prénom{n}")
    last_name = factory.Sequence(lambda n: f"Nom{n}")

    @factory.post_generation
    def person(obj, create, extracted, **kwargs):  # noqa: N805 (factory_boy's hook)
        """Like every writer of records, the factory tells identity (its person link)."""
        if create:
            records_written([record_of(obj)])


@dataclass
class World:
    root: OrgNode
    region_a: OrgNode
    region_b: OrgNode
    unit_a: OrgNode
    unit_a2: OrgNode
    unit_b: OrgNode
    hq_admin: User
    hq_marketer: User
    region_manager: User
    manager_a: User
    staff_a: User
    manager_b: User

    def persona(self, name: str) -> User:
        return getattr(self, name)


PERSONAS = ("hq_admin", "region_manager", "manager_a", "staff_a", "manager_b")


def build_world() -> World:
    # The system builds the world: the audit log it writes is unit-owned (row-level security),
    # and a live-server or browser test's fresh connection has no scope of its own.
    with db_scope(ALL):
        return _build_world()


def _build_world() -> World:
    roles = network.builtin_roles_ensure()
    root = network.network_create(
        actor=None,
        name="Maison Test",
        code="maison-test",
        legal_name="Maison Test SAS",
        sending_domain="news.example.com",
    )
    region_a = network.node_create(
        actor=None, parent=root, kind="region", name="Sud-Est", code="sud-est"
    )
    region_b = network.node_create(actor=None, parent=root, kind="region", name="Nord", code="nord")
    unit_a = network.node_create(
        actor=None,
        parent=region_a,
        kind="unit",
        name="Lyon",
        code="lyon",
        profile={"city": "Lyon"},
        tags=["pilot"],
    )
    unit_a2 = network.node_create(
        actor=None,
        parent=region_a,
        kind="unit",
        name="Grenoble",
        code="grenoble",
        profile={"city": "Grenoble"},
    )
    unit_b = network.node_create(
        actor=None,
        parent=region_b,
        kind="unit",
        name="Lille",
        code="lille",
        profile={"city": "Lille"},
    )

    def person(email, role, node):
        user = network.user_create(actor=None, email=email, password=PASSWORD)
        network.membership_grant(actor=None, user=user, node=node, role=roles[role])
        return user

    return World(
        root=root,
        region_a=region_a,
        region_b=region_b,
        unit_a=unit_a,
        unit_a2=unit_a2,
        unit_b=unit_b,
        hq_admin=person("hq@example.com", "hq_admin", root),
        hq_marketer=person("marketing@example.com", "hq_marketer", root),
        region_manager=person("region@example.com", "region_manager", region_a),
        manager_a=person("manager.a@example.com", "unit_manager", unit_a),
        staff_a=person("staff.a@example.com", "unit_staff", unit_a),
        manager_b=person("manager.b@example.com", "unit_manager", unit_b),
    )
