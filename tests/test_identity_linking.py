"""Deterministic matching at write time (issue 20): a new record joins its person."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from enseigne.contacts import services as contacts
from enseigne.contacts.models import Contact
from enseigne.contacts.records import Record, record_of
from enseigne.identity import keys
from enseigne.identity.linking import link_new_records, link_unlinked
from enseigne.identity.models import (
    IdentityChange,
    IdentityPolicy,
    LinkMethod,
    MatchCandidate,
    RecordLink,
)
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def person_of(contact: Contact) -> int:
    return RecordLink.objects.get(contact=contact).person_id


@pytest.mark.parametrize(
    "email",
    [
        "test@test.fr",
        "aucun@aucun.fr",
        "AUCUN@orange.fr",
        "noemail@gmail.com",
        "x@x.x",
        "xxxx@free.fr",
        "pas.de.mail@laposte.net",
        "someone@example.com",
        "a@yopmail.com",
        "no-reply@wanadoo.fr",
    ],
)
def test_placeholder_emails_give_no_key(email):
    assert keys.email_key(email) is None


@pytest.mark.parametrize(
    ("email", "gmail", "expected"),
    [
        ("Marie.Dupont@Orange.FR", False, "marie.dupont@orange.fr"),
        (" marie.dupont@orange.fr ", False, "marie.dupont@orange.fr"),
        ("marie.dupont+promo@gmail.com", False, "marie.dupont+promo@gmail.com"),
        ("marie.dupont+promo@gmail.com", True, "mariedupont@gmail.com"),
        ("Marie.Dupont@googlemail.com", True, "mariedupont@gmail.com"),
        ("marie.dupont+x@orange.fr", True, "marie.dupont+x@orange.fr"),
        ("", False, None),
        (None, False, None),
        ("no-at-sign", False, None),
    ],
)
def test_email_key_normalises(email, gmail, expected):
    assert keys.email_key(email, gmail_rules=gmail) == expected


@pytest.mark.parametrize("phone", ["+33600000000", "+33611111111", "0612345678", "", None])
def test_placeholder_or_unnormalised_phones_give_no_key(phone):
    assert keys.phone_key(phone) is None


def test_same_email_in_two_units_is_one_person(world):
    lyon = ContactFactory(unit=world.unit_a, email="marie@orange.fr")
    lille = ContactFactory(unit=world.unit_b, email="MARIE@orange.fr ".strip().lower())
    assert person_of(lyon) == person_of(lille)
    assert RecordLink.objects.get(contact=lille).method == LinkMethod.EMAIL
    assert RecordLink.objects.get(contact=lyon).method == LinkMethod.ALONE


def test_same_phone_joins_when_no_email(world):
    lyon = ContactFactory(unit=world.unit_a, email=None, phone="+33612345678")
    lille = ContactFactory(unit=world.unit_b, email="paul@free.fr", phone="+33612345678")
    assert person_of(lyon) == person_of(lille)
    assert RecordLink.objects.get(contact=lille).method == LinkMethod.PHONE


def test_different_people_stay_apart(world):
    a = ContactFactory(unit=world.unit_a, email="a.martin@orange.fr")
    b = ContactFactory(unit=world.unit_b, email="b.martin@orange.fr")
    assert person_of(a) != person_of(b)


def test_placeholder_email_never_merges(world):
    a = ContactFactory(unit=world.unit_a, email="test@test.fr", phone="+33612345601")
    b = ContactFactory(unit=world.unit_b, email="test@test.fr", phone="+33612345602")
    assert person_of(a) != person_of(b)


def test_gmail_rules_only_where_the_network_opts_in(world):
    a = ContactFactory(unit=world.unit_a, email="marie.dupont@gmail.com")
    b = ContactFactory(unit=world.unit_b, email="mariedupont+lille@gmail.com")
    assert person_of(a) != person_of(b)
    IdentityPolicy.objects.create(network=world.root.network, gmail_rules=True)
    c = ContactFactory(unit=world.unit_a, email="jeanne.roux@googlemail.com")
    d = ContactFactory(unit=world.unit_b, email="jeanneroux+promo@gmail.com")
    assert person_of(c) == person_of(d)


def test_contradicting_phone_match_is_refused(world):
    """Same phone, different e-mails and different birthdays: two people (a family phone)."""
    mother = ContactFactory(
        unit=world.unit_a,
        email="mere@orange.fr",
        phone="+33612345678",
        birthday=dt.date(1960, 3, 1),
    )
    daughter = ContactFactory(
        unit=world.unit_b,
        email="fille@orange.fr",
        phone="+33612345678",
        birthday=dt.date(1992, 7, 9),
    )
    assert person_of(mother) != person_of(daughter)
    refusal = MatchCandidate.objects.get()
    assert refusal.reason == MatchCandidate.Reason.CONTRADICTION
    assert refusal.status == MatchCandidate.Status.REFUSED


def test_email_and_phone_pointing_to_two_people_waits_for_review(world):
    a = ContactFactory(unit=world.unit_a, email="anne@orange.fr", phone=None)
    b = ContactFactory(unit=world.unit_a2, email=None, phone="+33698765432")
    c = ContactFactory(unit=world.unit_b, email="anne@orange.fr", phone="+33698765432")
    assert person_of(c) == person_of(a) != person_of(b)
    candidate = MatchCandidate.objects.get()
    assert candidate.reason == MatchCandidate.Reason.CONFLICT
    assert candidate.status == MatchCandidate.Status.OPEN
    assert {candidate.left_id, candidate.right_id} == {a.pk, b.pk}


def test_a_key_past_the_cap_links_nobody_more_and_alerts_once(world, settings):
    """Up to the cap a mobile joins records (one person may shop in a few stores); past it the
    key is a shared one: the record goes alone, HQ gets one alert for the key, not one per
    newcomer, and the records the key alone had joined are detached again."""
    from enseigne.network import services as network

    settings.ENSEIGNE_IDENTITY_SHARED_KEY_CAP = 2
    shared = "+33678123456"
    a = ContactFactory(unit=world.unit_a, email=None, phone=shared)
    b = ContactFactory(unit=world.unit_a2, email=None, phone=shared)
    assert person_of(a) == person_of(b)
    c = ContactFactory(unit=world.unit_b, email=None, phone=shared)
    extra = network.node_create(
        actor=None, parent=world.region_b, kind="unit", name="Lens", code="lens"
    )
    d = ContactFactory(unit=extra, email=None, phone=shared)
    assert len({person_of(a), person_of(b), person_of(c), person_of(d)}) == 4
    alert = MatchCandidate.objects.get(reason=MatchCandidate.Reason.SHARED_KEY)
    assert alert.detail["kind"] == "phone" and alert.detail["records"] == 3
    assert c.pk in {alert.left_id, alert.right_id}
    detached = IdentityChange.objects.get()
    assert detached.kind == IdentityChange.Kind.SPLIT and detached.made_by is None
    assert [m["contact"] for m in detached.moves] == [b.pk]
    assert RecordLink.objects.get(contact=b).method == LinkMethod.ALONE


def other_unit(world, code: str):
    from enseigne.network import services as network

    return network.node_create(
        actor=None, parent=world.region_b, kind="unit", name=code.title(), code=code
    )


def shared_phone_network(world, settings, *, cap: int = 2):
    """Cards in Lyon and Grenoble carry the shop's mobile; Anne's Grenoble card and her Lille
    card also share her e-mail (one woman, two cards)."""
    settings.ENSEIGNE_IDENTITY_SHARED_KEY_CAP = cap
    shop = "+33611223344"
    anne = ContactFactory(unit=world.unit_a, email=None, phone=shop, first_name="Anne")
    anne2 = ContactFactory(
        unit=world.unit_a2, email="anne.roux@orange.fr", phone=shop, first_name="Anne"
    )
    anne3 = ContactFactory(unit=world.unit_b, email="anne.roux@orange.fr", phone=None)
    assert len({person_of(r) for r in (anne, anne2, anne3)}) == 1
    return shop, anne, anne2, anne3


def test_a_key_found_shared_splits_what_it_alone_joined(world, settings):
    """Records the shared key alone held together leave; records joined by another key stay
    together; one automatic, audited change."""
    shop, anne, anne2, anne3 = shared_phone_network(world, settings)
    louis = ContactFactory(unit=other_unit(world, "lens"), email=None, phone=shop)
    assert person_of(louis) not in {person_of(anne), person_of(anne2)}
    auto = IdentityChange.objects.get(reason=IdentityChange.SHARED_KEY_REASON)
    assert auto.made_by is None and auto.unit_path == world.root.path
    assert auto.kind == IdentityChange.Kind.SPLIT
    # The oldest card keeps the person; the two cards that share an e-mail leave together.
    assert person_of(anne2) == person_of(anne3) != person_of(anne)
    assert RecordLink.objects.get(contact=anne2).method == LinkMethod.EMAIL
    assert sorted(m["contact"] for m in auto.moves) == sorted([anne2.pk, anne3.pk])
    # A second newcomer with the shop's phone changes nothing more.
    ContactFactory(unit=other_unit(world, "arras"), email=None, phone=shop)
    assert IdentityChange.objects.filter(reason=IdentityChange.SHARED_KEY_REASON).count() == 1


def test_two_keys_found_shared_together_split_what_they_joined(world, settings):
    """The shop's e-mail and the shop's phone typed on the same cards: both cross the cap in
    one batch; neither may hold the cards together while the other is detached."""
    settings.ENSEIGNE_IDENTITY_SHARED_KEY_CAP = 2
    email, phone = "magasin.lyon.centre@orange.fr", "+33611223355"
    a = ContactFactory(unit=world.unit_a, email=email, phone=phone)
    b = ContactFactory(unit=world.unit_a2, email=email, phone=phone)
    assert person_of(a) == person_of(b)
    c = ContactFactory(unit=world.unit_b, email=email, phone=phone)
    assert len({person_of(a), person_of(b), person_of(c)}) == 3
    auto = IdentityChange.objects.get(reason=IdentityChange.SHARED_KEY_REASON)
    assert [m["contact"] for m in auto.moves] == [b.pk]
    # A key HQ was told of earlier does not join anyone either: a fourth card sharing only
    # the phone with the first stays alone.
    d = ContactFactory(unit=other_unit(world, "lens"), email=None, phone=phone)
    assert person_of(d) not in {person_of(a), person_of(b), person_of(c)}


def test_what_hq_merged_by_hand_stays_when_a_key_is_found_shared(world, settings):
    from enseigne.identity import services

    shop, anne, anne2, anne3 = shared_phone_network(world, settings)
    paul = ContactFactory(unit=world.unit_b, email="paul.martin@free.fr")
    services.merge(actor=world.hq_admin, records=[anne, paul], reason="same household card")
    ContactFactory(unit=other_unit(world, "lens"), email=None, phone=shop)
    assert len({person_of(r) for r in (anne, anne2, anne3, paul)}) == 1
    assert not IdentityChange.objects.filter(reason=IdentityChange.SHARED_KEY_REASON).exists()
    assert MatchCandidate.objects.filter(reason=MatchCandidate.Reason.SHARED_KEY).count() == 1


def test_hq_reads_the_automatic_split_and_may_undo_it(world, settings, client):
    from enseigne.identity import services

    shop, anne, anne2, anne3 = shared_phone_network(world, settings)
    ContactFactory(unit=other_unit(world, "lens"), email=None, phone=shop)
    auto = IdentityChange.objects.get(reason=IdentityChange.SHARED_KEY_REASON)
    client.force_login(world.hq_admin)
    page = client.get("/hq/people/history/")
    assert page.status_code == 200
    assert f'id="change-{auto.pk}"' in page.content.decode()
    assert "Enseigne" in page.content.decode()
    services.undo(actor=world.hq_admin, change=auto, reason="it is her shop phone, but one woman")
    assert len({person_of(r) for r in (anne, anne2, anne3)}) == 1


def test_another_networks_hq_does_not_see_the_automatic_split(world, settings, client):
    from enseigne.network import services as network
    from tests.factories import PASSWORD

    shop, *_ = shared_phone_network(world, settings)
    ContactFactory(unit=other_unit(world, "lens"), email=None, phone=shop)
    auto = IdentityChange.objects.get(reason=IdentityChange.SHARED_KEY_REASON)
    other = network.network_create(
        actor=None, name="Autre", code="autre", legal_name="Autre SAS", sending_domain="a.example"
    )
    their_hq = network.user_create(actor=None, email="hq@autre.example", password=PASSWORD)
    network.membership_grant(
        actor=None, user=their_hq, node=other, role=network.builtin_roles_ensure()["hq_admin"]
    )
    client.force_login(their_hq)
    page = client.get("/hq/people/history/")
    assert f'id="change-{auto.pk}"' not in page.content.decode()
    assert client.post(f"/hq/people/history/{auto.pk}/undo/").status_code == 404


def test_a_landline_is_a_households_and_waits_for_review(world):
    husband = ContactFactory(unit=world.unit_a, email=None, phone="+33478123456")
    wife = ContactFactory(
        unit=world.unit_b,
        email="anne.roux@orange.fr",
        phone="+33478123456",
        birthday=dt.date(1970, 1, 2),
    )
    assert person_of(husband) != person_of(wife)
    review = MatchCandidate.objects.get()
    assert review.reason == MatchCandidate.Reason.LANDLINE
    assert review.status == MatchCandidate.Status.OPEN


def test_a_contradiction_within_one_batch_is_refused_too(world):
    mother = Contact.objects.create(
        unit=world.unit_a,
        unit_path=world.unit_a.path,
        email="mere@orange.fr",
        phone="+33612345678",
        birthday=dt.date(1960, 3, 1),
    )
    daughter = Contact.objects.create(
        unit=world.unit_b,
        unit_path=world.unit_b.path,
        email="fille@orange.fr",
        phone="+33612345678",
        birthday=dt.date(1992, 7, 9),
    )
    link_new_records([record_of(mother), record_of(daughter)])
    assert person_of(mother) != person_of(daughter)
    assert MatchCandidate.objects.get().reason == MatchCandidate.Reason.CONTRADICTION


def test_an_edit_cannot_join_through_a_contradicting_phone(world):
    mother = ContactFactory(
        unit=world.unit_a,
        email="mere2@orange.fr",
        phone="+33612345670",
        birthday=dt.date(1960, 3, 1),
    )
    daughter = ContactFactory(
        unit=world.unit_b, email="fille2@orange.fr", phone=None, birthday=dt.date(1992, 7, 9)
    )
    contacts.contact_update(actor=world.manager_b, contact=daughter, data={"phone": "+33612345670"})
    assert person_of(mother) != person_of(daughter)
    assert MatchCandidate.objects.get().reason == MatchCandidate.Reason.CONTRADICTION


@pytest.mark.parametrize(
    "email",
    [
        "mail@famille-martin.fr",
        "j@orange.fr",
        "a.martin@free.fr",
        "sans.souci@laposte.net",
        "na.li@sfr.fr",
    ],
)
def test_real_addresses_give_a_key(email):
    assert keys.email_key(email) == email


@pytest.mark.parametrize(
    "email",
    [
        "test1@orange.fr",
        "testtest@free.fr",
        "pasdemail123@sfr.fr",
        "123456@orange.fr",
        "no.name@free.fr",
        "contact@x.fr",
    ],
)
def test_more_placeholders_give_no_key(email):
    assert keys.email_key(email) is None


def test_case_of_an_address_does_not_matter(world):
    lyon = ContactFactory(unit=world.unit_a, email="marie.curie@orange.fr")
    other = Contact.objects.create(
        unit=world.unit_b, unit_path=world.unit_b.path, email="Marie.Curie@Orange.FR"
    )
    link_new_records([record_of(other)])
    assert person_of(lyon) == person_of(other)


def test_a_store_reads_no_link_not_even_its_own(world):
    """Separate controllers: a link's method says another store holds the address. Row-level
    security shows links to HQ and the system only (PostgreSQL; selectors are the wall on
    SQLite)."""
    from django.db import connection

    from enseigne.lib.rowsecurity import db_scope

    if connection.vendor != "postgresql":
        pytest.skip("row-level security exists only on PostgreSQL; CI runs this file on both")
    mine = ContactFactory(unit=world.unit_b, email="suzanne@orange.fr")
    ContactFactory(unit=world.unit_a, email="suzanne@orange.fr")
    with db_scope([world.unit_b.path]):
        assert not RecordLink.objects.filter(contact=mine).exists()
        assert RecordLink.objects.count() == 0
    with db_scope([world.root.path]):
        assert RecordLink.objects.filter(contact=mine).exists()


def test_a_store_erasing_its_record_leaves_no_key_behind(world):
    """Erased through the product's own service, under the store's scope: the link (an HQ-only
    row) goes too, so the address finds nobody afterwards."""
    from enseigne.lib.rowsecurity import db_scope

    record = ContactFactory(unit=world.unit_b, email="oubli@orange.fr")
    ContactFactory(unit=world.unit_a2, email="autre@orange.fr")
    with db_scope([world.unit_b.path]):
        contacts.contact_erase(actor=world.manager_b, contact=record)
    assert not RecordLink.objects.filter(contact_id=record.pk).exists()
    again = ContactFactory(unit=world.unit_a, email="oubli@orange.fr")
    assert RecordLink.objects.get(contact=again).method == LinkMethod.ALONE


def test_batch_records_sharing_a_key_are_one_person(world):
    made = [
        Contact.objects.create(unit=u, unit_path=u.path, email="jean@laposte.net")
        for u in (world.unit_a, world.unit_a2, world.unit_b)
    ]
    link_new_records([Record(c.pk, c.unit_path, c.email, None) for c in made])
    assert len({person_of(c) for c in made}) == 1


def test_two_networks_never_share_a_person(world):
    from enseigne.network import services as network

    other = network.network_create(
        actor=None, name="Autre", code="autre", legal_name="Autre SAS", sending_domain="a.example"
    )
    shop = network.node_create(actor=None, parent=other, kind="unit", name="Nice", code="nice")
    a = ContactFactory(unit=world.unit_a, email="claire@orange.fr")
    b = ContactFactory(unit=shop, email="claire@orange.fr")
    assert person_of(a) != person_of(b)


def test_service_and_unlinked_records_get_a_person(world):
    created = contacts.contact_create(
        actor=world.manager_b, unit=world.unit_b, data={"email": "zoe@orange.fr"}
    )
    assert RecordLink.objects.filter(contact=created).exists()
    bare = Contact.objects.create(
        unit=world.unit_a, unit_path=world.unit_a.path, email="zoe@orange.fr"
    )
    assert link_unlinked() == 1
    assert person_of(bare) == person_of(created)


def test_erasing_a_record_removes_its_link_and_keys(world):
    record = ContactFactory(unit=world.unit_a, email="efface@orange.fr", phone="+33655443322")
    link = RecordLink.objects.get(contact=record)
    assert link.email_key and link.phone_key
    record.delete()
    assert not RecordLink.objects.filter(contact_id=record.pk).exists()
    # A record written after the erasure finds nobody through the erased keys.
    again = ContactFactory(unit=world.unit_b, email="efface@orange.fr")
    assert RecordLink.objects.get(contact=again).method == LinkMethod.ALONE


def test_a_record_alone_joins_the_person_its_new_email_leads_to(world):
    lille = ContactFactory(unit=world.unit_b, email="claire.m@orange.fr")
    lyon = ContactFactory(unit=world.unit_a, email=None, phone="+33611223344")
    assert person_of(lyon) != person_of(lille)
    contacts.contact_update(
        actor=world.manager_a, contact=lyon, data={"email": "claire.m@orange.fr"}
    )
    assert person_of(lyon) == person_of(lille)
    assert RecordLink.objects.get(contact=lyon).method == LinkMethod.EMAIL


def test_a_record_with_company_stays_and_the_new_key_waits_for_review(world):
    a = ContactFactory(unit=world.unit_a, email="luc@free.fr")
    b = ContactFactory(unit=world.unit_b, email="luc@free.fr")
    other = ContactFactory(unit=world.unit_a2, email=None, phone="+33655667788")
    contacts.contact_update(actor=world.manager_a, contact=a, data={"phone": "+33655667788"})
    assert person_of(a) == person_of(b) != person_of(other)
    assert MatchCandidate.objects.filter(reason=MatchCandidate.Reason.CONFLICT).count() == 1
    link = RecordLink.objects.get(contact=a)
    assert link.phone_key is not None  # the keys follow the record


def test_imports_link_new_records_and_relink_completed_ones(
    world, django_capture_on_commit_callbacks
):
    """Both import paths: a fresh row meets the person another store knows; a row giving an
    existing contact its first phone makes that record meet the phone's person."""
    from tests.test_import import run

    lille = ContactFactory(unit=world.unit_b, email="ines.roy@orange.fr")
    lille_phone = ContactFactory(unit=world.unit_b, email=None, phone="+33677889900")
    lyon = ContactFactory(unit=world.unit_a, email="paul.roy@orange.fr")
    imp = run(
        world,
        "prenom;nom;email;mobile\n"
        "Inès;Roy;ines.roy@orange.fr;\n"
        "Paul;Roy;paul.roy@orange.fr;06 77 88 99 00\n"
        "Nina;Roy;nina.roy@orange.fr;\n",
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )
    assert imp.created_count == 2 and imp.updated_count == 1
    ines = Contact.objects.get(unit=world.unit_a, email="ines.roy@orange.fr")
    nina = Contact.objects.get(unit=world.unit_a, email="nina.roy@orange.fr")
    assert person_of(ines) == person_of(lille)
    assert person_of(nina) not in {person_of(lille), person_of(lille_phone)}
    lyon.refresh_from_db()
    assert lyon.phone == "+33677889900"
    assert person_of(lyon) == person_of(lille_phone)


def test_link_people_links_records_that_existed_before_identity(world):
    from io import StringIO

    from django.core.management import call_command

    newer = ContactFactory(unit=world.unit_b, email="ancienne@orange.fr")
    older = Contact.objects.create(
        unit=world.unit_a, unit_path=world.unit_a.path, email="ancienne@orange.fr"
    )
    assert not RecordLink.objects.filter(contact=older).exists()
    out = StringIO()
    call_command("link_people", stdout=out)
    assert person_of(older) == person_of(newer)
    assert out.getvalue().startswith("1 records linked")


def test_the_nightly_upkeep_drops_persons_whose_last_record_was_erased(world):
    from enseigne.identity.linking import prune_empty_persons
    from enseigne.identity.models import Person

    kept = ContactFactory(unit=world.unit_a, email="reste@orange.fr")
    gone = ContactFactory(unit=world.unit_b, email="parti@orange.fr")
    gone_person = person_of(gone)
    gone.delete()
    assert prune_empty_persons() == 1
    assert not Person.objects.filter(pk=gone_person).exists()
    assert Person.objects.filter(pk=person_of(kept)).exists()


def test_an_import_computes_the_keys_of_new_people_beside_its_validation(
    world, django_capture_on_commit_callbacks, monkeypatch
):
    """The keys of an import's new people come from its helper thread (off the writer's
    critical path), and they are the keys the writer would have computed."""
    import threading

    from enseigne.identity import linking
    from tests.test_import import run

    threads = []
    original = linking.record_keys

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(linking, "record_keys", spy)
    lille = ContactFactory(unit=world.unit_b, email="ines.roy@orange.fr")
    threads.clear()
    run(
        world,
        "prenom;nom;email;mobile\n"
        "Inès;Roy;ines.roy@orange.fr;06 11 22 33 44\n"
        "Nina;Roy;nina.roy@orange.fr;06 11 22 33 55\n"
        "Léa;Roy;;06 11 22 33 66\n",
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
    )
    assert len(threads) == 3
    assert all(name.startswith("import-validate") for name in threads)
    made = Contact.objects.filter(unit=world.unit_a)
    assert made.count() == 3
    root = world.root.path
    for contact in made:
        link = RecordLink.objects.get(contact=contact)
        email_key, phone_key = keys.record_keys(
            root, contact.email, contact.phone, gmail_rules=False
        )
        assert (linking._hex(link.email_key), linking._hex(link.phone_key)) == (
            email_key,
            phone_key,
        )
    assert person_of(made.get(email="ines.roy@orange.fr")) == person_of(lille)


def test_prepared_keys_count_only_where_they_still_hold(world):
    """Keys prepared before the write are computed again when the Gmail rule changed
    meanwhile, or when the record's addresses are not the ones prepared."""
    from enseigne.identity.linking import key_preparer

    lille = ContactFactory(unit=world.unit_b, email="mariedupont@gmail.com")
    other = ContactFactory(unit=world.unit_b, email="jeanne.roux@orange.fr")
    prepare = key_preparer(world.unit_a.path)  # Gmail rules off
    stale_rule, wrong_address = prepare(
        [("marie.dupont@gmail.com", None), ("someone.else@orange.fr", None)]
    )
    IdentityPolicy.objects.create(network=world.root.network, gmail_rules=True)
    made = [
        Contact.objects.create(unit=world.unit_a, unit_path=world.unit_a.path, email=email)
        for email in ("marie.dupont@gmail.com", "jeanne.roux@orange.fr")
    ]
    link_new_records([record_of(c) for c in made], [stale_rule, wrong_address])
    assert person_of(made[0]) == person_of(lille)
    assert person_of(made[1]) == person_of(other)


def test_new_people_link_in_one_statement_seen_like_any_other(world):
    """The fresh-record statement sends its columns beside its text (PostgreSQL's extended
    protocol): each new person gets a person of their own and a link holding their keys,
    and the statement still goes through Django's query log (its execute wrappers too)."""
    from django.test.utils import CaptureQueriesContext

    from enseigne.identity.linking import network_root

    made = [
        Contact.objects.create(
            unit=world.unit_a,
            unit_path=world.unit_a.path,
            email=f"nouvelle.{i}@orange.fr" if i != 2 else None,
            phone=f"+33612345{i:03d}" if i != 1 else None,
        )
        for i in range(4)
    ]
    with CaptureQueriesContext(connection) as captured:
        link_new_records([record_of(c) for c in made])
    links = {link.contact_id: link for link in RecordLink.objects.filter(contact__in=made)}
    assert len({link.person_id for link in links.values()}) == 4
    root = network_root(world.unit_a.path)
    for contact in made:
        link = links[contact.pk]
        email_key, phone_key = keys.record_keys(
            root, contact.email, contact.phone, gmail_rules=False
        )
        assert (link.email_key and link.email_key.hex, link.phone_key and link.phone_key.hex) == (
            email_key,
            phone_key,
        )
        assert link.method == LinkMethod.ALONE
    if connection.vendor == "postgresql":
        statements = [q["sql"] for q in captured.captured_queries if "string_to_array" in q["sql"]]
        assert len(statements) == 1
        assert "nouvelle" not in statements[0]  # addresses never reach the database: keys only


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="two writers at once need two connections to one server (SQLite: one writer)",
)
@pytest.mark.django_db(transaction=True)
def test_two_stores_importing_the_same_new_customer_at_once_make_one_person(monkeypatch):
    """Two imports in two stores, each holding the same new customer, write their records
    in two transactions at once; both records are written before either links, and each
    transaction stays open a second after linking. The network's lock makes the second
    linker wait for the first to commit: one person (without it, two)."""
    import threading
    import time
    from unittest import mock

    from enseigne.contacts.import_services import import_prepare, import_start
    from enseigne.contacts.importer import run_import
    from enseigne.identity import linking
    from enseigne.lib.rowsecurity import ALL, db_scope
    from tests.factories import build_world

    world = build_world()
    imports = []
    for actor, unit, other in (
        (world.manager_a, world.unit_a, "jeanne.a@orange.fr"),
        (world.manager_b, world.unit_b, "paul.b@free.fr"),
    ):
        content = f"email;mobile\nlea.commune@orange.fr;\n{other};\n".encode()
        imp = import_prepare(actor=actor, unit=unit, file_name="c.csv", content=content)
        with mock.patch("django.db.transaction.on_commit"):  # run below, both at once
            imports.append(
                import_start(
                    actor=actor, contact_import=imp, mapping=imp.mapping, consent_channels=[]
                )
            )
    both_written = threading.Barrier(2, timeout=30)
    waited: list[int] = []
    original = linking._Hooks.written

    def written_then_wait(records, prepared=None):
        both_written.wait()  # each store's records are in its open transaction
        waited.append(len(records))
        linked = original(records, prepared)
        time.sleep(1)  # the transaction stays open: the other store links meanwhile
        return linked

    monkeypatch.setattr(linking._Hooks, "written", staticmethod(written_then_wait))
    failures = []

    def run(import_id):
        try:
            run_import(import_id)
        except Exception as error:  # reported below, in the test's thread
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(imp.pk,)) for imp in imports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures
    assert waited == [2, 2]  # each import linked its two records, both written first
    with db_scope(ALL):
        shared = Contact.objects.filter(email="lea.commune@orange.fr")
        assert sorted(shared.values_list("unit_path", flat=True)) == sorted(
            [world.unit_a.path, world.unit_b.path]
        )
        persons = set(
            RecordLink.objects.filter(contact__in=shared).values_list("person", flat=True)
        )
        assert len(persons) == 1
        others = RecordLink.objects.filter(
            contact__email__in=["jeanne.a@orange.fr", "paul.b@free.fr"]
        ).values_list("person", flat=True)
        assert len({*others, *persons}) == 3  # the two others are people of their own
