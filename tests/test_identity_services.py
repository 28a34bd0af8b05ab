"""HQ's merges, splits, keep-apart decisions and undos (issue 20): audited, reversible, and
never undone by a later matching run."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from enseigne.contacts.models import Contact
from enseigne.identity import services
from enseigne.identity.linking import link_unlinked, rekey_network
from enseigne.identity.models import (
    IdentityChange,
    IdentityPolicy,
    KeptApart,
    LinkMethod,
    MatchCandidate,
    RecordLink,
)
from enseigne.identity.selectors import other_units_count
from enseigne.network.models import AuditEvent
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def person_of(contact: Contact) -> int:
    return RecordLink.objects.get(contact=contact).person_id


def links() -> list[tuple]:
    return sorted(
        RecordLink.objects.values_list(
            "contact_id", "person_id", "method", "score", "linked_at", "linked_by_id"
        )
    )


def keys() -> list[tuple]:
    return sorted(RecordLink.objects.values_list("contact_id", "email_key", "phone_key"))


@pytest.fixture
def lyon_lille(world):
    lyon = ContactFactory(unit=world.unit_a, email="marie.dupont@orange.fr", last_name="Dupont")
    lille = ContactFactory(unit=world.unit_b, email="m.dupont@free.fr", last_name="Dupont")
    return lyon, lille


def test_merge_makes_one_person_by_hand_and_is_audited(world, lyon_lille):
    lyon, lille = lyon_lille
    assert person_of(lyon) != person_of(lille)
    change = services.merge(actor=world.hq_admin, records=[lyon, lille], reason="Même cliente")
    assert person_of(lyon) == person_of(lille) == change.into_id
    assert set(RecordLink.objects.values_list("method", flat=True)) == {LinkMethod.MANUAL}
    assert set(RecordLink.objects.values_list("linked_by", flat=True)) == {world.hq_admin.pk}
    # The keys follow the records, so a new record with either address joins the person.
    newcomer = ContactFactory(unit=world.unit_a2, email="m.dupont@free.fr")
    assert person_of(newcomer) == change.into_id
    assert change.kind == IdentityChange.Kind.MERGE
    event = AuditEvent.objects.get(action="identity.merge")
    assert event.changes == {"records": 2, "persons": 2}
    text = json.dumps(event.changes) + event.target_id
    assert "@" not in text and "Dupont" not in text


def test_merge_by_persons(world, lyon_lille):
    lyon, lille = lyon_lille
    from enseigne.identity.models import Person

    persons = list(Person.objects.filter(pk__in=[person_of(lyon), person_of(lille)]))
    change = services.merge(actor=world.hq_marketer, persons=persons)
    assert person_of(lyon) == person_of(lille) == change.into_id


@pytest.mark.parametrize("persona", ["region_manager", "manager_a", "staff_a", "manager_b"])
def test_only_hq_merges_or_splits(world, lyon_lille, persona):
    lyon, lille = lyon_lille
    before = links()
    with pytest.raises(PermissionDenied):
        services.merge(actor=world.persona(persona), records=[lyon, lille])
    with pytest.raises(PermissionDenied):
        services.split(actor=world.persona(persona), records=[lyon])
    assert links() == before
    assert not IdentityChange.objects.exists()


def test_merge_of_contradicting_records_is_refused(world):
    mother = ContactFactory(unit=world.unit_a, email="mere@orange.fr", birthday=dt.date(1960, 3, 1))
    daughter = ContactFactory(
        unit=world.unit_b, email="fille@orange.fr", birthday=dt.date(1992, 7, 9)
    )
    before = links()
    with pytest.raises(ValidationError, match="different e-mail addresses and different birthdays"):
        services.merge(actor=world.hq_admin, records=[mother, daughter])
    assert links() == before
    assert not IdentityChange.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="identity.").exists()


@pytest.mark.parametrize(
    ("birthday_a", "birthday_b", "email_b"),
    [
        (dt.date(1960, 3, 1), dt.date(1960, 3, 1), "other@orange.fr"),  # same birthday
        (dt.date(1960, 3, 1), None, "other@orange.fr"),  # one birthday unknown
        (dt.date(1960, 3, 1), dt.date(1992, 7, 9), "test@test.fr"),  # placeholder: no key
    ],
)
def test_merge_allowed_when_identifiers_do_not_contradict(world, birthday_a, birthday_b, email_b):
    a = ContactFactory(unit=world.unit_a, email="mere@orange.fr", birthday=birthday_a)
    b = ContactFactory(unit=world.unit_b, email=email_b, birthday=birthday_b)
    services.merge(actor=world.hq_admin, records=[a, b])
    assert person_of(a) == person_of(b)


def test_merge_needs_two_people(world, lyon_lille):
    lyon, _ = lyon_lille
    with pytest.raises(ValidationError):
        services.merge(actor=world.hq_admin, records=[lyon])


def test_split_keeps_records_apart_and_a_rerun_never_joins_them(world):
    a = ContactFactory(unit=world.unit_a, email="jean@laposte.net")
    b = ContactFactory(unit=world.unit_b, email="jean@laposte.net")
    c = ContactFactory(unit=world.unit_a2, email="jean@laposte.net")
    assert person_of(a) == person_of(b) == person_of(c)
    change = services.split(actor=world.hq_admin, records=[c], reason="Homonyme")
    assert person_of(c) == change.into_id != person_of(a)
    assert RecordLink.objects.get(contact=c).method == LinkMethod.MANUAL
    assert sorted(KeptApart.objects.values_list("left_id", "right_id")) == sorted(
        [tuple(sorted((c.pk, a.pk))), tuple(sorted((c.pk, b.pk)))]
    )
    # A matching run that repairs c's link (say it was lost) does not join it again.
    RecordLink.objects.filter(contact=c).delete()
    assert link_unlinked() == 1
    assert person_of(c) != person_of(a)
    assert person_of(a) == person_of(b)


def test_split_refuses_all_records_or_two_people(world, lyon_lille):
    lyon, lille = lyon_lille
    with pytest.raises(ValidationError):
        services.split(actor=world.hq_admin, records=[lyon])  # its only record
    with pytest.raises(ValidationError):
        services.split(actor=world.hq_admin, records=[lyon, lille])  # two people
    assert not IdentityChange.objects.exists()


def test_undo_merge_restores_exactly_and_is_audited(world, lyon_lille):
    lyon, lille = lyon_lille
    ContactFactory(unit=world.unit_a2, email="marie.dupont@orange.fr")
    before_links, before_keys = links(), keys()
    change = services.merge(actor=world.hq_admin, records=[lyon, lille])
    assert links() != before_links
    reversal = services.undo(actor=world.hq_admin, change=change)
    assert links() == before_links
    assert keys() == before_keys
    assert reversal.reverses == change
    assert AuditEvent.objects.filter(action="identity.undo").count() == 1
    with pytest.raises(ValidationError, match="already undone"):
        services.undo(actor=world.hq_admin, change=change)
    # Undoing the undo merges again.
    services.undo(actor=world.hq_admin, change=reversal)
    assert person_of(lyon) == person_of(lille)


def test_undo_split_restores_and_releases_the_pairs(world):
    a = ContactFactory(unit=world.unit_a, email="jean@laposte.net")
    b = ContactFactory(unit=world.unit_b, email="jean@laposte.net")
    before = links()
    change = services.split(actor=world.hq_admin, records=[b])
    assert KeptApart.objects.count() == 1
    services.undo(actor=world.hq_admin, change=change)
    assert links() == before
    assert not KeptApart.objects.exists()
    assert person_of(a) == person_of(b)


def test_undo_is_refused_after_a_later_change_moved_the_records(world):
    a = ContactFactory(unit=world.unit_a, email="jean@laposte.net")
    b = ContactFactory(unit=world.unit_b, email="jean@laposte.net")
    c = ContactFactory(unit=world.unit_a2, email="paul@laposte.net")
    split = services.split(actor=world.hq_admin, records=[b])
    services.merge(actor=world.hq_admin, records=[b, c])
    before = links()
    with pytest.raises(ValidationError, match="Later changes"):
        services.undo(actor=world.hq_admin, change=split)
    assert links() == before
    assert person_of(a) != person_of(b)


def test_undo_of_merge_restores_the_kept_apart_pairs_it_released(world):
    a = ContactFactory(unit=world.unit_a, email="jean@laposte.net")
    b = ContactFactory(unit=world.unit_b, email="jean@laposte.net")
    services.split(actor=world.hq_admin, records=[b])
    merge = services.merge(actor=world.hq_admin, records=[a, b])
    assert not KeptApart.objects.exists()
    services.undo(actor=world.hq_admin, change=merge)
    assert list(KeptApart.objects.values_list("left_id", "right_id")) == [
        tuple(sorted((a.pk, b.pk)))
    ]
    assert person_of(a) != person_of(b)


def conflict(world):
    a = ContactFactory(unit=world.unit_a, email="anne@orange.fr", phone=None)
    b = ContactFactory(unit=world.unit_a2, email=None, phone="+33698765432")
    ContactFactory(unit=world.unit_b, email="anne@orange.fr", phone="+33698765432")
    return a, b, MatchCandidate.objects.get(status=MatchCandidate.Status.OPEN)


def test_decide_merge_closes_the_candidate(world):
    a, b, candidate = conflict(world)
    change = services.decide(actor=world.hq_admin, candidate=candidate, decision="merge")
    candidate.refresh_from_db()
    assert candidate.status == MatchCandidate.Status.MERGED
    assert candidate.decided_by == world.hq_admin
    assert person_of(a) == person_of(b) == change.into_id
    with pytest.raises(ValidationError, match="already decided"):
        services.decide(actor=world.hq_admin, candidate=candidate, decision="keep_apart")
    # Undo reopens it for review.
    services.undo(actor=world.hq_admin, change=change)
    candidate.refresh_from_db()
    assert candidate.status == MatchCandidate.Status.OPEN
    assert person_of(a) != person_of(b)


def test_decide_keep_apart_remembers_the_pair(world):
    a, b, candidate = conflict(world)
    before = links()
    change = services.decide(actor=world.hq_admin, candidate=candidate, decision="keep_apart")
    candidate.refresh_from_db()
    assert candidate.status == MatchCandidate.Status.REJECTED
    assert links() == before
    assert KeptApart.objects.get().change == change
    services.undo(actor=world.hq_admin, change=change)
    assert not KeptApart.objects.exists()
    candidate.refresh_from_db()
    assert candidate.status == MatchCandidate.Status.OPEN


def test_decide_is_hq_only(world):
    _a, _b, candidate = conflict(world)
    with pytest.raises(PermissionDenied):
        services.decide(actor=world.manager_a, candidate=candidate, decision="merge")
    candidate.refresh_from_db()
    assert candidate.status == MatchCandidate.Status.OPEN


def test_manual_links_survive_a_rekey(world):
    a = ContactFactory(unit=world.unit_a, email="marie.dupont@gmail.com")
    b = ContactFactory(unit=world.unit_b, email="mariedupont+lille@gmail.com")
    c = ContactFactory(unit=world.unit_a2, email="jeanne.roux@gmail.com")
    d = ContactFactory(unit=world.unit_b, email="jeanneroux@gmail.com", phone="+33612000002")
    e = ContactFactory(unit=world.unit_a, email="autre@orange.fr")
    services.merge(actor=world.hq_admin, records=[c, e])  # c is now linked by hand
    assert person_of(a) != person_of(b)
    policy, rekey = services.policy_update(
        actor=world.hq_admin, mode=IdentityPolicy.Mode.ONE_CONTROLLER, gmail_rules=True
    )
    assert rekey and policy.gmail_rules
    assert rekey_network(world.root.path) == 3  # d has no dot: its key is unchanged
    assert person_of(a) == person_of(b)  # joined as a new record would be
    assert person_of(c) == person_of(e) != person_of(d)  # the hand-made link stays
    assert RecordLink.objects.get(contact=c).method == LinkMethod.MANUAL


def test_other_units_count_only_in_one_controller_mode(world, lyon_lille):
    lyon, lille = lyon_lille
    same = ContactFactory(unit=world.unit_a2, email="marie.dupont@orange.fr")
    assert other_units_count(lyon) == 1
    services.merge(actor=world.hq_admin, records=[lyon, lille])
    assert other_units_count(lyon) == 2
    assert other_units_count(same) == 2
    services.policy_update(
        actor=world.hq_admin, mode=IdentityPolicy.Mode.SEPARATE_CONTROLLERS, gmail_rules=False
    )
    assert other_units_count(lyon) is None


def test_settings_are_hq_only_and_audited(world):
    with pytest.raises(PermissionDenied):
        services.policy_update(
            actor=world.manager_a, mode=IdentityPolicy.Mode.SEPARATE_CONTROLLERS, gmail_rules=True
        )
    with pytest.raises(ValidationError):
        services.policy_update(actor=world.hq_admin, mode="both", gmail_rules=True)
    _policy, rekey = services.policy_update(
        actor=world.hq_admin, mode=IdentityPolicy.Mode.SEPARATE_CONTROLLERS, gmail_rules=False
    )
    assert not rekey
    assert AuditEvent.objects.get(action="identity.settings").changes["after"] == {
        "mode": "separate_controllers",
        "gmail_rules": False,
    }


@pytest.mark.parametrize(
    ("mode", "queries"),
    [(IdentityPolicy.Mode.ONE_CONTROLLER, 2), (IdentityPolicy.Mode.SEPARATE_CONTROLLERS, 1)],
)
def test_the_store_count_costs_few_queries(
    world, lyon_lille, django_assert_num_queries, mode, queries
):
    """The contact page's count: the network's policy, one count (none in separate mode).
    On PostgreSQL the count runs as system work: a savepoint, the scope, the release."""
    from django.db import connection

    IdentityPolicy.objects.create(network=world.root.network, mode=mode)
    lyon, _ = lyon_lille
    if connection.vendor == "postgresql" and mode == IdentityPolicy.Mode.ONE_CONTROLLER:
        queries += 3
    with django_assert_num_queries(queries):
        other_units_count(lyon)
