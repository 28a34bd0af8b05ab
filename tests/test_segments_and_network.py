"""Segment rules compile to exact ORM filters; the permission tree resolves as documented."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from enseigne.contacts import services
from enseigne.contacts.models import CustomAttribute
from enseigne.contacts.segments import segment_contacts, segment_count, segment_sizes
from enseigne.network import services as network
from enseigne.network.access import access_for
from enseigne.network.models import AuditEvent, Role
from tests.factories import ContactFactory


@pytest.fixture
def people(world):
    CustomAttribute.objects.create(
        key="tier", label="Tier", kind="choice", choices=["bronze", "gold"]
    )
    CustomAttribute.objects.create(key="spend", label="Spend", kind="number")
    a1 = ContactFactory(
        unit=world.unit_a,
        email="a1@example.com",
        is_customer=True,
        birthday=dt.date(1990, 5, 1),
        attributes={"tier": "gold", "spend": 120},
    )
    a2 = ContactFactory(
        unit=world.unit_a,
        email="a2@example.com",
        phone="+33612345678",
        attributes={"tier": "bronze", "spend": 40},
    )
    a3 = ContactFactory(unit=world.unit_a2, email="a3@example.com", is_customer=True)
    b1 = ContactFactory(
        unit=world.unit_b,
        email="b1@example.com",
        is_customer=True,
        attributes={"tier": "gold", "spend": 500},
    )
    for contact in (a1, a3, b1):
        services.consent_record(
            actor=None, contact=contact, channel="email", status="granted", source="form"
        )
    services.consent_record(actor=None, contact=a2, channel="sms", status="granted", source="form")
    services.contact_set_tags(contact=a1, tags=["vip"])
    services.contact_set_tags(contact=b1, tags=["vip"])
    return {"a1": a1, "a2": a2, "a3": a3, "b1": b1}


def names(user, rules):
    return sorted(c.email.split("@")[0] for c in segment_contacts(user, rules))


def all_of(*conditions):
    return {"match": "all", "rules": list(conditions)}


def test_conditions_and_groups(world, people):
    hq = world.hq_admin
    assert names(hq, all_of({"field": "consent_email", "op": "is_valid"})) == ["a1", "a3", "b1"]
    assert names(
        hq,
        all_of(
            {"field": "tag", "op": "has", "value": "vip"}, {"field": "is_customer", "op": "is_true"}
        ),
    ) == ["a1", "b1"]
    assert names(hq, all_of({"field": "tag", "op": "has_not", "value": "vip"})) == ["a2", "a3"]
    assert names(
        hq,
        {
            "match": "any",
            "rules": [
                {"field": "consent_sms", "op": "is_valid"},
                all_of(
                    {"field": "attributes.tier", "op": "equals", "value": "gold"},
                    {"field": "attributes.spend", "op": "greater_than", "value": "200"},
                ),
            ],
        },
    ) == ["a2", "b1"]
    assert names(hq, all_of({"field": "birthday", "op": "month_is", "value": 5})) == ["a1"]
    assert names(hq, all_of({"field": "created_at", "op": "in_last_days", "value": 1})) == [
        "a1",
        "a2",
        "a3",
        "b1",
    ]
    assert names(
        hq, all_of({"field": "unit", "op": "in_subtree", "value": str(world.region_a.public_id)})
    ) == ["a1", "a2", "a3"]
    assert names(hq, all_of({"field": "email", "op": "starts_with", "value": "B"})) == ["b1"]


def test_segment_results_never_leave_the_users_scope(world, people):
    everyone = all_of()
    assert names(world.manager_a, everyone) == ["a1", "a2"]
    assert names(world.region_manager, everyone) == ["a1", "a2", "a3"]
    assert names(world.manager_b, everyone) == ["b1"]
    # Naming another unit's subtree is refused like an unknown unit, not answered with 0.
    with pytest.raises(ValidationError, match="unknown unit or region"):
        segment_count(
            world.manager_a,
            all_of({"field": "unit", "op": "in_subtree", "value": str(world.unit_b.public_id)}),
        )


def test_segment_sizes_are_each_segments_count_in_one_query(world, people):
    legacy = CustomAttribute.objects.create(key="legacy", label="Legacy", kind="text")

    def saved(owner, rules):
        return services.segment_save(
            actor=world.hq_admin, owner=owner, name=f"S{owner.pk}", rules=rules
        )

    everyone = saved(world.root, all_of())
    emailable_south = saved(world.region_a, all_of({"field": "consent_email", "op": "is_valid"}))
    vip_lille = saved(world.unit_b, all_of({"field": "tag", "op": "has", "value": "vip"}))
    not_vip_lyon = saved(world.unit_a, all_of({"field": "tag", "op": "has_not", "value": "vip"}))
    sms_or_big_gold = saved(
        world.root,
        {
            "match": "any",
            "rules": [
                {"field": "consent_sms", "op": "is_valid"},
                all_of(
                    {"field": "attributes.tier", "op": "equals", "value": "gold"},
                    {"field": "attributes.spend", "op": "greater_than", "value": "200"},
                ),
            ],
        },
    )
    in_south = saved(
        world.root,
        all_of({"field": "unit", "op": "in_subtree", "value": str(world.region_a.public_id)}),
    )
    broken = saved(world.root, all_of({"field": "attributes.legacy", "op": "equals", "value": "x"}))
    legacy.delete()  # HQ removed the attribute the segment still names
    segments = [everyone, emailable_south, vip_lille, not_vip_lyon, sms_or_big_gold, in_south]

    with CaptureQueriesContext(connection) as captured:
        sizes = segment_sizes(world.hq_admin, [*segments, broken])
    # HQ's attributes, the region the "unit" rule names, then every size in one statement
    assert len(captured.captured_queries) == 3
    assert [sizes[s.pk] for s in segments] == [4, 2, 1, 1, 2, 3]
    assert sizes[broken.pk] is None

    for persona in ("region_manager", "manager_a", "manager_b"):
        user = world.persona(persona)
        expected = {s.pk: segment_count(user, s.rules, s.owner) for s in segments[:5]}
        assert segment_sizes(user, segments[:5]) == expected
    assert segment_sizes(world.manager_a, segments[:5]) == {
        everyone.pk: 2,
        emailable_south.pk: 1,
        vip_lille.pk: 0,
        not_vip_lyon.pk: 1,
        sms_or_big_gold.pk: 1,
    }
    assert segment_sizes(world.manager_a, []) == {}


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"match": "both", "rules": []}, "rule: a group needs match 'all' or 'any'."),
        (
            all_of({"field": "salary", "op": "equals", "value": 1}),
            "rule 1: unknown field 'salary'.",
        ),
        (
            all_of({"field": "email", "op": "greater_than", "value": 1}),
            "rule 1: “Email” cannot use the operator 'greater_than'.",
        ),
        (
            all_of({"field": "email", "op": "equals", "value": ""}),
            "rule 1: “Email is” needs a value.",
        ),
        (
            all_of(all_of({"field": "birthday", "op": "on", "value": "12/05"})),
            "rule 1.1: '12/05' is not a date (YYYY-MM-DD).",
        ),
        (
            all_of({"field": "attributes.unknown", "op": "equals", "value": "x"}),
            "rule 1: HQ has not declared the attribute 'unknown'.",
        ),
        (
            all_of(all_of(all_of(all_of()))),
            "rule 1.1.1: groups can be nested 3 levels deep at most.",
        ),
    ],
)
def test_validation_names_the_rule(world, people, rules, message):
    with pytest.raises(ValidationError) as exc:
        segment_count(world.hq_admin, rules)
    assert exc.value.messages == [message]


def test_live_count_endpoint(world, people, client):
    client.force_login(world.manager_a)
    response = client.post(
        "/segments/count/",
        {"rules": '{"match": "all", "rules": [{"field": "consent_email", "op": "is_valid"}]}'},
    )
    assert '<span class="stat" id="segment-count">1</span>' in response.content.decode()
    response = client.post("/segments/count/", {"rules": "{"})
    assert "not valid JSON" in response.content.decode()


def test_capabilities_inherit_and_hq_rules_narrow_or_widen(world):
    access = access_for(world.region_manager)
    assert access.can("approve_campaigns", world.unit_a)
    assert not access.can("approve_campaigns", world.unit_b)
    assert not access_for(world.manager_a).can("send_sms", world.unit_a)
    # Widen for pilot-tagged units (Lyon is tagged pilot, Grenoble is not).
    network.capability_rule_add(
        actor=world.hq_admin,
        node=world.root,
        capability="send_sms",
        effect="allow",
        unit_tag="pilot",
    )
    world.manager_a = type(world.manager_a).objects.get(pk=world.manager_a.pk)
    assert access_for(world.manager_a).can("send_sms", world.unit_a)
    region = type(world.region_manager).objects.get(pk=world.region_manager.pk)
    assert access_for(region).can("send_sms", world.unit_a)
    assert not access_for(region).can("send_sms", world.unit_a2)
    # Narrow: the Sud-Est region may not export, even for unit managers.
    network.capability_rule_add(
        actor=world.hq_admin, node=world.region_a, capability="export_contacts", effect="deny"
    )
    manager = type(world.manager_a).objects.get(pk=world.manager_a.pk)
    assert not access_for(manager).can("export_contacts", world.unit_a)
    manager_b = type(world.manager_b).objects.get(pk=world.manager_b.pk)
    assert access_for(manager_b).can("export_contacts", world.unit_b)


def test_only_hq_admins_manage_users_and_roles_and_it_is_audited(world):
    with pytest.raises(PermissionDenied):
        network.user_create(actor=world.hq_marketer, email="x@example.com")
    with pytest.raises(PermissionDenied):
        network.role_create(
            actor=world.region_manager, key="x", name="X", level="unit", capabilities=[]
        )
    role = network.role_create(
        actor=world.hq_admin,
        key="franchisee",
        name="Franchisee",
        level="unit",
        capabilities=["view_contacts", "send_sms"],
    )
    assert sorted(role.grants.values_list("capability", flat=True)) == ["send_sms", "view_contacts"]
    event = AuditEvent.objects.filter(action="role.create").get()
    assert (event.actor, event.target_id, event.changes) == (
        world.hq_admin,
        str(role.pk),
        {"capabilities": ["send_sms", "view_contacts"]},
    )
    with pytest.raises(ValidationError):
        network.role_set_capabilities(
            actor=world.hq_admin, role=Role.objects.get(key="hq_admin"), capabilities=[]
        )
    with pytest.raises(ValidationError, match="held at a unit"):
        network.membership_grant(
            actor=world.hq_admin, user=world.staff_a, node=world.region_a, role=role
        )


def test_unit_profile_update_is_audited_without_losing_fields(world):
    network.unit_variable_declare(actor=world.hq_admin, key="parking", label="Parking")
    network.unit_profile_update(
        actor=world.hq_admin,
        unit=world.unit_a,
        data={"phone": "+33478000000", "variables": {"parking": "P1"}},
        tags=["pilot", "mall"],
    )
    world.unit_a.profile.refresh_from_db()
    assert (world.unit_a.profile.city, world.unit_a.profile.variables) == (
        "Lyon",
        {"parking": "P1"},
    )
    event = AuditEvent.objects.get(action="unit.update")
    assert event.changes["tags"] == {"from": ["pilot"], "to": ["mall", "pilot"]}
    with pytest.raises(ValidationError, match="HQ has not declared"):
        network.unit_profile_update(
            actor=world.hq_admin, unit=world.unit_a, data={"variables": {"wifi": "x"}}
        )
