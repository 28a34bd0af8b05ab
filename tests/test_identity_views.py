"""HQ's mother base pages and what a store sees of the person, in both modes (issue 20)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from enseigne.commerce.models import Order
from enseigne.contacts import services as contacts
from enseigne.identity import services
from enseigne.identity.models import (
    IdentityChange,
    IdentityPolicy,
    KeptApart,
    MatchCandidate,
    RecordLink,
)
from enseigne.tracking.models import Conversion
from tests.factories import PASSWORD, ContactFactory

pytestmark = pytest.mark.django_db


def login(client, user):
    assert client.login(username=user.email, password=PASSWORD)


def set_mode(world, mode):
    IdentityPolicy.objects.update_or_create(network=world.root.network, defaults={"mode": mode})


@pytest.fixture
def helene(world):
    """One woman, three stores: accents and case differ between her records."""
    lyon = ContactFactory(
        unit=world.unit_a,
        email="helene.leroux@orange.fr",
        first_name="Hélène",
        last_name="Le Roux",
        birthday=dt.date(1985, 4, 2),
    )
    lyon2 = ContactFactory(
        unit=world.unit_a2,
        email="helene.leroux@orange.fr",
        phone="+33611223344",
        first_name="Helene",
        last_name="Le Roux",
    )
    lille = ContactFactory(
        unit=world.unit_b,
        email=None,
        phone="+33611223344",
        first_name="Hélène",
        last_name="LE ROUX",
    )
    assert len({RecordLink.objects.get(contact=c).person_id for c in (lyon, lyon2, lille)}) == 1
    return lyon, lyon2, lille


@pytest.mark.parametrize("query", ["helene", "HÉLÈNE le", "le roux", "helene.leroux@", "11223344"])
def test_hq_finds_a_person_accents_and_case_ignored(client, world, helene, query):
    ContactFactory(unit=world.unit_b, email="autre@orange.fr", first_name="Paul")
    login(client, world.hq_admin)
    response = client.get("/hq/people/", {"q": query})
    assert response.status_code == 200
    html = response.content.decode()
    person = RecordLink.objects.get(contact=helene[0]).person
    assert html.count('name="people"') == 1
    assert str(person.public_id) in html
    assert "Paul" not in html


def test_the_card_shows_records_golden_fields_consent_purchases(client, world, helene):
    lyon, lyon2, lille = helene
    contacts.consent_record(
        actor=world.manager_b,
        contact=lille,
        channel="sms",
        status="granted",
        source="in_store",
        wording_version="v3",
    )
    Order.objects.create(
        external_id="L-1",
        unit=world.unit_b,
        unit_path=world.unit_b.path,
        contact=lille,
        total="42.00",
        occurred_at=timezone.now(),
        source="api",
    )
    Conversion.objects.create(  # credited to a campaign only: not one of the store's orders
        order_id="CONV-ONLY",
        unit=world.unit_b,
        unit_path=world.unit_b.path,
        contact=lille,
        amount="7.00",
        occurred_at=timezone.now(),
        source="api",
    )
    person = RecordLink.objects.get(contact=lyon).person
    login(client, world.hq_marketer)
    response = client.get(f"/hq/people/{person.public_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    for unit in (world.unit_a, world.unit_a2, world.unit_b):
        assert unit.name in html
    golden = html[html.index('id="golden"') : html.index("</table>", html.index('id="golden"'))]
    # Most frequent first name (two "Hélène" to one "Helene").
    assert re.search(r"First name</th><td>Hélène</td>", golden)
    # Phone from the store with the last purchase (Lille).
    assert re.search(r"Phone</th><td>\+33611223344</td>\s*<td>" + world.unit_b.name, golden)
    assert "L-1" in html and "42.00\u202f€" in html
    assert "CONV-ONLY" not in html
    assert "v3" in html  # the consent's proof: its wording version
    assert "Same e-mail address" in html and "Same phone number" in html


def test_stores_and_regions_never_reach_the_mother_base(client, world, helene):
    person = RecordLink.objects.get(contact=helene[0]).person
    for persona in ("region_manager", "manager_a", "staff_a", "manager_b"):
        client.logout()
        login(client, world.persona(persona))
        for url in (
            "/hq/people/",
            f"/hq/people/{person.public_id}/",
            "/hq/people/review/",
            "/hq/people/history/",
            "/hq/people/settings/",
        ):
            assert client.get(url).status_code == 404, (persona, url)
        assert "/hq/people/" not in client.get("/contacts/").content.decode()


@pytest.mark.parametrize(
    ("mode", "shown"),
    [(IdentityPolicy.Mode.ONE_CONTROLLER, True), (IdentityPolicy.Mode.SEPARATE_CONTROLLERS, False)],
)
def test_store_sees_a_count_only_in_one_controller_mode(client, world, helene, mode, shown):
    set_mode(world, mode)
    lyon, _lyon2, lille = helene
    login(client, world.manager_b)
    html = client.get(f"/contacts/{lille.public_id}/").content.decode()
    assert ('id="other-stores"' in html) is shown
    if shown:
        assert "Also a customer of 2 other stores" in html
    # Never the other stores' names or addresses, in either mode.
    for secret in (world.unit_a.name, world.unit_a2.name, "helene.leroux@orange.fr"):
        assert secret not in html
    assert client.get(f"/contacts/{lyon.public_id}/").status_code == 404


def test_one_click_merge_from_the_review_queue_and_undo(client, world):
    a = ContactFactory(unit=world.unit_a, email="anne@orange.fr", phone=None, first_name="Anne")
    b = ContactFactory(unit=world.unit_a2, email=None, phone="+33698765432", first_name="Anne")
    ContactFactory(unit=world.unit_b, email="anne@orange.fr", phone="+33698765432")
    candidate = MatchCandidate.objects.get(status=MatchCandidate.Status.OPEN)
    login(client, world.hq_admin)
    page = client.get("/hq/people/review/").content.decode()
    assert f'id="candidate-{candidate.pk}"' in page
    assert "anne@orange.fr" in page and "+33698765432" in page
    response = client.post(f"/hq/people/review/{candidate.pk}/", {"decision": "merge"})
    assert response.status_code == 302
    link_a, link_b = (RecordLink.objects.get(contact=c) for c in (a, b))
    assert link_a.person_id == link_b.person_id
    assert "Nothing to review" in client.get("/hq/people/review/").content.decode()
    change = IdentityChange.objects.get()
    history = client.get("/hq/people/history/").content.decode()
    assert f'action="/hq/people/history/{change.pk}/undo/"' in history
    assert client.post(f"/hq/people/history/{change.pk}/undo/").status_code == 302
    assert (
        RecordLink.objects.get(contact=a).person_id != RecordLink.objects.get(contact=b).person_id
    )
    assert "undone" in client.get("/hq/people/history/").content.decode()


def test_keep_apart_and_split_from_the_pages(client, world):
    a = ContactFactory(unit=world.unit_a, email="jean@laposte.net")
    b = ContactFactory(unit=world.unit_b, email="jean@laposte.net")
    person = RecordLink.objects.get(contact=a).person
    login(client, world.hq_admin)
    response = client.post(
        f"/hq/people/{person.public_id}/split/", {"records": [str(b.public_id)], "reason": "x"}
    )
    assert response.status_code == 302
    assert KeptApart.objects.count() == 1
    assert RecordLink.objects.get(contact=b).person_id != person.pk
    # Splitting every record is refused with a message, nothing changes.
    person_b = RecordLink.objects.get(contact=b).person
    before = list(RecordLink.objects.values_list("contact_id", "person_id"))
    response = client.post(
        f"/hq/people/{person_b.public_id}/split/", {"records": [str(b.public_id)]}, follow=True
    )
    assert "Leave at least one record" in response.content.decode()
    assert list(RecordLink.objects.values_list("contact_id", "person_id")) == before


def test_merge_from_search_refuses_contradictions_with_a_message(client, world):
    a = ContactFactory(unit=world.unit_a, email="mere@orange.fr", birthday=dt.date(1960, 3, 1))
    b = ContactFactory(unit=world.unit_b, email="fille@orange.fr", birthday=dt.date(1992, 7, 9))
    people = [RecordLink.objects.get(contact=c).person.public_id for c in (a, b)]
    login(client, world.hq_admin)
    response = client.post(
        "/hq/people/merge/",
        {
            "people": [str(p) for p in people],
            "confirmed": "1",
            "reason": "Même cliente",
            "q": "mere",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/hq/people/?q=mere"
    page = client.get(response["Location"]).content.decode()
    assert "different e-mail addresses and different birthdays" in page
    assert not IdentityChange.objects.exists()


def test_a_merge_from_search_is_confirmed_with_a_reason(client, world):
    a = ContactFactory(unit=world.unit_a, email="claire.martin@orange.fr", first_name="Claire")
    b = ContactFactory(unit=world.unit_a, email="c.martin@free.fr", first_name="Claire")
    c = ContactFactory(unit=world.unit_b, email="claire.m@laposte.net", first_name="Claire")
    people = [str(RecordLink.objects.get(contact=r).person.public_id) for r in (a, b, c)]
    login(client, world.hq_admin)
    # First the summary: nothing merged yet; two records of one store are pointed out.
    page = client.post("/hq/people/merge/", {"people": people}).content.decode()
    assert 'id="merge-summary"' in page and "Merge 3 people into one?" in page
    assert 'id="merge-same-store"' in page and world.unit_a.name in page
    assert not IdentityChange.objects.exists()
    # Confirmed without a reason: asked again, still nothing merged.
    page = client.post(
        "/hq/people/merge/", {"people": people, "confirmed": "1", "reason": "  "}
    ).content.decode()
    assert "Say why these people are one" in page and not IdentityChange.objects.exists()
    # With a reason: one person, the reason in the history.
    response = client.post(
        "/hq/people/merge/", {"people": people, "confirmed": "1", "reason": "Même carte fidélité"}
    )
    assert response.status_code == 302
    assert len({RecordLink.objects.get(contact=r).person_id for r in (a, b, c)}) == 1
    assert IdentityChange.objects.get().reason == "Même carte fidélité"


def test_a_merge_needs_two_people(client, world):
    a = ContactFactory(unit=world.unit_a, email="seule@orange.fr")
    login(client, world.hq_admin)
    person = str(RecordLink.objects.get(contact=a).person.public_id)
    response = client.post("/hq/people/merge/", {"people": [person]}, follow=True)
    assert "Choose at least two people to merge." in response.content.decode()


def test_settings_page_explains_modes_and_rekeys(client, world):
    a = ContactFactory(unit=world.unit_a, email="marie.dupont@gmail.com")
    b = ContactFactory(unit=world.unit_b, email="mariedupont+lille@gmail.com")
    login(client, world.hq_admin)
    page = client.get("/hq/people/settings/").content.decode()
    assert "Separate controllers (franchise)" in page
    response = client.post(
        "/hq/people/settings/", {"mode": "one_controller", "gmail_rules": "on"}, follow=True
    )
    assert "2 e-mail keys were recomputed." in response.content.decode()
    assert (
        RecordLink.objects.get(contact=a).person_id == RecordLink.objects.get(contact=b).person_id
    )


def test_settings_rekey_goes_to_the_worker_for_a_large_base(client, world, settings):
    settings.ENSEIGNE_IDENTITY_REKEY_INLINE_MAX = 1
    ContactFactory(unit=world.unit_a, email="marie.dupont@gmail.com")
    ContactFactory(unit=world.unit_b, email="mariedupont+lille@gmail.com")
    login(client, world.hq_admin)
    response = client.post(
        "/hq/people/settings/", {"mode": "separate_controllers", "gmail_rules": "on"}, follow=True
    )
    assert "being recomputed in the background" in response.content.decode()
    policy = IdentityPolicy.objects.get()
    assert policy.mode == "separate_controllers" and policy.gmail_rules


def test_hq_menu_shows_the_customer_base(client, world):
    login(client, world.hq_admin)
    assert 'href="/hq/people/"' in client.get("/contacts/").content.decode()
    services.policy_update(actor=world.hq_admin, mode="one_controller", gmail_rules=False)


def _pages_of_a_store(client, world, record) -> list[str]:
    """What manager B reads about its own record, csrf tokens and timings taken out."""
    pages = []
    for url in (
        f"/contacts/{record.public_id}/",
        "/contacts/",
        f"/contacts/?q={record.first_name}",
        f"/units/{world.unit_b.public_id}/",
        f"/contacts/{record.public_id}/data.json",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        # A CSRF token is 64 random letters and digits, new on every page.
        pages.append(re.sub(r"\b[A-Za-z0-9]{64}\b", "", response.content.decode()))
    return pages


@pytest.mark.parametrize(
    ("mode", "learns"),
    [(IdentityPolicy.Mode.SEPARATE_CONTROLLERS, False), (IdentityPolicy.Mode.ONE_CONTROLLER, True)],
)
def test_a_store_learns_nothing_of_another_stores_record_in_separate_mode(
    client, world, mode, learns
):
    """Byte for byte, a store's pages on its record are the same whether or not another
    store holds a record of the same person (separate controllers); in one-controller mode
    the count shows, which proves the comparison can fail."""
    set_mode(world, mode)
    mine = ContactFactory(unit=world.unit_b, email="claire@orange.fr", first_name="Claire")
    login(client, world.manager_b)
    before = _pages_of_a_store(client, world, mine)
    ContactFactory(unit=world.unit_a, email="claire@orange.fr", first_name="Claire")
    assert RecordLink.objects.values("person_id").distinct().count() == 1
    after = _pages_of_a_store(client, world, mine)
    assert (before != after) is learns
    if learns:
        assert [b == a for b, a in zip(before, after, strict=True)] == [
            False,
            True,
            True,
            True,
            True,
        ]
