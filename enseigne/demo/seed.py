"""The demo network "Maison Lumière": a fictional home-decor chain in real French towns."""

from __future__ import annotations

import datetime as dt
import random
import unicodedata

from django.db import connection, transaction
from django.utils import timezone

from enseigne.analytics.models import (
    CampaignReach,
    CrossShopping,
    DailyStat,
    NetworkPeople,
    RollupState,
    UnitDay,
)
from enseigne.analytics.people import count_people
from enseigne.brand.models import Asset, Guardrails, LocalVersion, Template
from enseigne.campaigns.models import (
    Budget,
    Campaign,
    PressureRule,
    Recipient,
    Relay,
    SendingPolicy,
)
from enseigne.commerce.models import Order, OrderImport
from enseigne.contacts.models import (
    ConsentEvent,
    ConsentStatus,
    Contact,
    ContactImport,
    ContactTagging,
    CustomAttribute,
    Segment,
    Suppression,
    Tag,
)
from enseigne.contacts.records import record_of, records_written
from enseigne.contacts.services import segment_save, tags_get_or_create
from enseigne.delivery.models import Bounce, Event, Link, OutboxMessage
from enseigne.demo.brand_kit import seed_brand_kit
from enseigne.demo.campaigns import seed_campaigns
from enseigne.demo.journeys import seed_journeys
from enseigne.demo.people import seed_people
from enseigne.demo.purchases import seed_purchases
from enseigne.demo.results import seed_results
from enseigne.identity.models import (
    IdentityChange,
    IdentityPolicy,
    KeptApart,
    MatchCandidate,
    Person,
)
from enseigne.journeys.models import (
    Enrollment,
    EnrollmentStep,
    JourneyRun,
    JourneySend,
    JourneyTemplate,
    JourneyVersion,
)
from enseigne.network import services as network
from enseigne.network.models import AuditEvent, CapabilityRule, OrgNode, Role, UnitVariable, User
from enseigne.rfm.models import CutPoints, PendingBuyer, PersonScore, RecordScore
from enseigne.tracking.models import Conversion

PASSWORD = "enseigne-demo"  # noqa: S105 (the documented demo password)
DOMAIN = "maison-lumiere.test"

REGIONS = {
    "Nord": [
        ("Lille", "lille", "12 rue Esquermoise", "59000", "+33320000101"),
        ("Rouen", "rouen", "8 rue du Gros-Horloge", "76000", "+33235000102"),
    ],
    "Sud-Est": [
        ("Lyon", "lyon", "24 rue de la République", "69002", "+33478000103"),
        ("Marseille", "marseille", "5 rue Paradis", "13001", "+33491000104"),
        ("Grenoble", "grenoble", "3 place Grenette", "38000", "+33476000105"),
    ],
    "Atlantique": [
        ("Nantes", "nantes", "17 rue Crébillon", "44000", "+33240000106"),
        ("Bordeaux", "bordeaux", "41 rue Sainte-Catherine", "33000", "+33556000107"),
        ("Rennes", "rennes", "9 rue Le Bastard", "35000", "+33299000108"),
    ],
}
# The units' own texts, as a French store writes them (the profile is data, not UI wording).
OPENING_HOURS = "Du lundi au samedi, de 10 h à 19 h\nFermé le dimanche"
LOYALTY_TIERS = ["bronze", "argent", "or"]
MANAGERS = [
    "Claire Martin",
    "Julien Bernard",
    "Sophie Laurent",
    "Karim Haddad",
    "Élodie Roux",
    "Thomas Girard",
    "Nadia Benali",
    "Hugo Lefèvre",
]
FIRST_NAMES = [
    "Camille",
    "Léa",
    "Manon",
    "Chloé",
    "Emma",
    "Inès",
    "Sarah",
    "Louise",
    "Jade",
    "Alice",
    "Lucas",
    "Hugo",
    "Louis",
    "Gabriel",
    "Arthur",
    "Jules",
    "Nathan",
    "Théo",
    "Paul",
    "Adam",
    "Marie",
    "Nathalie",
    "Isabelle",
    "Sylvie",
    "Catherine",
    "Philippe",
    "Nicolas",
    "Pierre",
    "Laurent",
    "Stéphane",
    "Amélie",
    "Julie",
    "Margaux",
    "Yasmine",
    "Mehdi",
    "Rayan",
    "Zoé",
    "Maël",
    "Clémence",
    "Anaïs",
]
LAST_NAMES = [
    "Martin",
    "Bernard",
    "Thomas",
    "Petit",
    "Robert",
    "Richard",
    "Durand",
    "Dubois",
    "Moreau",
    "Laurent",
    "Simon",
    "Michel",
    "Lefèvre",
    "Leroy",
    "Roux",
    "David",
    "Bertrand",
    "Morel",
    "Fournier",
    "Girard",
    "Bonnet",
    "Dupont",
    "Lambert",
    "Fontaine",
    "Rousseau",
    "Vincent",
    "Muller",
    "Lefebvre",
    "Faure",
    "André",
    "Mercier",
    "Blanc",
    "Guérin",
    "Boyer",
    "Garnier",
    "Chevalier",
    "François",
    "Legrand",
    "Gauthier",
    "Garcia",
    "Perrin",
    "Robin",
    "Clément",
    "Morin",
    "Nicolas",
    "Henry",
    "Roussel",
    "Mathieu",
    "Gautier",
    "Masson",
]
MAIL_DOMAINS = ["example.com", "example.net", "example.org"]
CONTACT_TAGS = ["vip", "client-fidele", "salon-deco-2026", "cuisine", "luminaires", "textile"]

DEMO_USERS = [
    ("siege@" + DOMAIN, "Hélène", "Marchand", "hq_admin", None),
    ("marketing@" + DOMAIN, "Bastien", "Caron", "hq_marketer", None),
    ("region.sud-est@" + DOMAIN, "Farid", "Amrani", "region_manager", "sud-est"),
    ("lyon@" + DOMAIN, "Sophie", "Laurent", "unit_manager", "lyon"),
    ("vendeur.lyon@" + DOMAIN, "Maxime", "Perret", "unit_staff", "lyon"),
    ("lille@" + DOMAIN, "Claire", "Martin", "unit_manager", "lille"),
]


def demo_exists() -> bool:
    return OrgNode.objects.filter(code="maison-lumiere").exists()


def reset() -> None:
    """Remove everything the demo (or anyone) put in this database's domain tables."""
    with transaction.atomic():
        for model in (DailyStat, UnitDay, RollupState, Event, Conversion, Link):
            model.objects.all().delete()
        # Purchases and their scores (orders hold their unit: they go before the network).
        for model in (PendingBuyer, PersonScore, RecordScore, CutPoints, OrderImport, Order):
            model.objects.all().delete()
        # The journeys hold their stores, their versions and their ledger campaigns.
        for model in (EnrollmentStep, Enrollment, JourneySend, JourneyRun):
            model.objects.all().delete()
        JourneyTemplate.objects.update(live_version=None)
        for model in (JourneyVersion, JourneyTemplate):
            model.objects.all().delete()
        for model in (
            OutboxMessage,
            Bounce,
            Recipient,
            Relay,
            Campaign,
            Budget,
            PressureRule,
            SendingPolicy,
        ):
            model.objects.all().delete()
        for model in (LocalVersion, Template, Guardrails):
            model.objects.all().delete()
        for asset in Asset.objects.all():
            for stored in asset.stored_files():
                stored.storage.delete(stored.name)
            asset.delete()
        for model in (ContactTagging, ConsentEvent, Segment, Suppression):
            model.objects.all().delete()
        Contact.objects.all().delete()
        # The persons and HQ's identity history, empty once their records are gone.
        for model in (MatchCandidate, KeptApart, IdentityChange, Person):
            model.objects.all().delete()
        for model in (NetworkPeople, CrossShopping, CampaignReach):
            model.objects.all().delete()
        ContactImport.objects.all().delete()
        CapabilityRule.objects.all().delete()
        AuditEvent.objects.all().delete()
        User.objects.all().delete()
        OrgNode.objects.all().delete()
        for model in (Tag, CustomAttribute, UnitVariable, Role):
            model.objects.all().delete()


@transaction.atomic
def seed(contacts_total: int = 20_000, random_seed: int = 42, purchases: bool = True) -> dict:
    """The demo network; ``purchases=False`` leaves out the year of orders and RFM's run
    (tests of the other stages skip their cost: most of it is RFM's full run)."""
    rng = random.Random(random_seed)
    roles = network.builtin_roles_ensure()
    root = network.network_create(
        actor=None,
        name="Maison Lumière",
        code="maison-lumiere",
        legal_name="Maison Lumière SAS",
        sending_domain="news.maison-lumiere.test",
    )
    network.unit_variable_declare(
        actor=None, key="parking", label="Parking", help_text="Où les clients se garent"
    )
    network.unit_variable_declare(
        actor=None, key="click_collect", label="Horaires du retrait en magasin (click & collect)"
    )
    CustomAttribute.objects.get_or_create(
        key="loyalty_tier",
        defaults={
            "label": "Niveau de fidélité",
            "kind": CustomAttribute.Kind.CHOICE,
            "choices": LOYALTY_TIERS,
        },
    )
    CustomAttribute.objects.get_or_create(
        key="favourite_room",
        defaults={"label": "Pièce préférée", "kind": CustomAttribute.Kind.TEXT},
    )
    # The demo's network folds Gmail's dots and +suffixes (its people include such addresses).
    IdentityPolicy.objects.create(network=root.network, gmail_rules=True)
    units: dict[str, OrgNode] = {}
    index = 0
    for region_name, towns in REGIONS.items():
        region = network.node_create(
            actor=None, parent=root, kind="region", name=region_name, code=region_name.lower()
        )
        for name, code, street, postal, phone in towns:
            unit = network.node_create(
                actor=None,
                parent=region,
                kind="unit",
                name=f"Maison Lumière {name}",
                code=code,
                profile={
                    "address_line": street,
                    "postal_code": postal,
                    "city": name,
                    "phone": phone,
                    "email": f"{code}@{DOMAIN}",
                    "website": f"https://www.{DOMAIN}/magasins/{code}",
                    "manager_name": MANAGERS[index],
                    "opening_hours": OPENING_HOURS,
                    "variables": {
                        "parking": f"Parking {name} Centre, à 2 minutes à pied",
                        "click_collect": "Du lundi au samedi, de 11 h à 18 h 30",
                    },
                },
                tags=["pilot"] if code in {"lyon", "nantes"} else [],
            )
            units[code] = unit
            index += 1
    # HQ lets pilot units send SMS even where their role would not (the permission tree).
    users = {}
    for email, first, last, role_key, node_code in DEMO_USERS:
        user = network.user_create(
            actor=None, email=email, first_name=first, last_name=last, password=PASSWORD
        )
        node = root if node_code is None else OrgNode.objects.get(code=node_code)
        network.membership_grant(actor=None, user=user, node=node, role=roles[role_key])
        users[email] = user
    CapabilityRule.objects.create(
        node=root,
        capability="send_sms",
        effect="allow",
        role=roles["unit_manager"],
        unit_tag=units["lyon"].tags.first(),
    )
    _contacts(rng, list(units.values()), contacts_total)
    lyon = units["lyon"]
    segment_save(
        actor=users["lyon@" + DOMAIN],
        owner=lyon,
        name="Clients fidèles joignables par email",
        description="Clients existants ayant donné leur consentement e-mail",
        rules={
            "match": "all",
            "rules": [
                {"field": "consent_email", "op": "is_valid"},
                {"field": "is_customer", "op": "is_true"},
            ],
        },
    )
    segment_save(
        actor=users["siege@" + DOMAIN],
        owner=root,
        name="VIP du réseau (SMS)",
        rules={
            "match": "all",
            "rules": [
                {"field": "tag", "op": "has", "value": "vip"},
                {"field": "consent_sms", "op": "is_valid"},
            ],
        },
    )
    brand = seed_brand_kit(root, units, users, DOMAIN)
    campaigns = seed_campaigns(root, units, users, DOMAIN)
    results = seed_results(units, users, DOMAIN)
    # People with records in two or three stores (issue 20), after the year of results so
    # that year draws what it drew before; the pass's people figures are counted again.
    shared = seed_people(
        units,
        FIRST_NAMES,
        LAST_NAMES,
        count=max(40, min(300, contacts_total // 20)),
        seed=random_seed,
    )
    count_people(timezone.now())
    # A year of purchases with lines, then RFM's full run (issue 21): last, so the stages
    # above draw what they drew before, and every record, shared ones included, may buy.
    bought = (
        seed_purchases(root, units, users["marketing@" + DOMAIN], random_seed) if purchases else {}
    )
    # The welcome, birthday and win-back journeys and their year (issue 22): after the
    # purchases, whose lapses and returns they read.
    journeys = seed_journeys(root, units, users, DOMAIN) if purchases else {}
    return {
        "units": len(units),
        "contacts": Contact.objects.count(),
        "users": len(users),
        **brand,
        **campaigns,
        **results,
        **shared,
        **bought,
        **journeys,
    }


def _contacts(rng: random.Random, units: list[OrgNode], total: int) -> None:
    now = timezone.now()
    tags = {t.name: t for t in tags_get_or_create(CONTACT_TAGS)}
    weights = [1.6 if u.code == "lyon" else 1.0 for u in units]
    contacts: list[Contact] = []
    seen: set[tuple[int, str]] = set()
    counter = 0
    while len(contacts) < total:
        unit = rng.choices(units, weights)[0]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        counter += 1
        local = f"{_ascii(first)}.{_ascii(last)}{counter % 997}".lower()
        email = f"{local}@{rng.choice(MAIL_DOMAINS)}" if rng.random() < 0.92 else None
        phone = (
            f"+33{rng.choice((61, 62, 64, 65, 66, 67, 68, 76, 77, 78))}{rng.randrange(0, 9_999_999):07d}"
            if rng.random() < 0.7 or email is None
            else None
        )
        # One contact per email and per phone within a unit (both are unique there).
        keys = {(unit.pk, value) for value in (email, phone) if value}
        if keys & seen:
            continue
        seen |= keys
        customer = rng.random() < 0.55
        contacts.append(
            Contact(
                unit=unit,
                unit_path=unit.path,
                email=email,
                phone=phone,
                first_name=first,
                last_name=last,
                birthday=dt.date(rng.randint(1945, 2005), rng.randint(1, 12), rng.randint(1, 28))
                if rng.random() < 0.6
                else None,
                language="fr" if rng.random() < 0.93 else "en",
                is_customer=customer,
                attributes={"loyalty_tier": rng.choice([*LOYALTY_TIERS[:1], *LOYALTY_TIERS])}
                if customer
                else {},
            )
        )
    created = Contact.objects.bulk_create(contacts, batch_size=2000)
    records_written([record_of(c) for c in created])
    # Spread creation dates over two years so growth charts and date rules have data.
    for contact in created:
        contact.created_at = now - dt.timedelta(
            days=rng.randint(0, 730), minutes=rng.randint(0, 1440)
        )
    events, taggings = [], []
    for contact in created:
        for channel, field, rate in (("email", "email", 0.72), ("sms", "phone", 0.4)):
            if not getattr(contact, field):
                continue
            roll = rng.random()
            if roll < rate:
                status = ConsentStatus.GRANTED
            elif roll < rate + 0.12 and contact.is_customer:
                status = ConsentStatus.SOFT_OPT_IN
            else:
                continue
            at = contact.created_at + dt.timedelta(minutes=5)
            events.append(
                ConsentEvent(
                    contact=contact,
                    unit_path=contact.unit_path,
                    channel=channel,
                    status=status,
                    occurred_at=at,
                    source=rng.choice(["in_store", "form", "in_store"]),
                    wording_version="formulaire-magasin-v1",
                    ip_address=None,
                )
            )
            if rng.random() < 0.05:
                status = ConsentStatus.WITHDRAWN
                events.append(
                    ConsentEvent(
                        contact=contact,
                        unit_path=contact.unit_path,
                        channel=channel,
                        status=status,
                        occurred_at=at + dt.timedelta(days=rng.randint(1, 300)),
                        source="unsubscribe",
                    )
                )
            setattr(contact, f"{channel}_consent", status)
        for name in rng.sample(CONTACT_TAGS, rng.choice([0, 0, 1, 1, 2])):
            taggings.append(
                ContactTagging(contact=contact, tag=tags[name], unit_path=contact.unit_path)
            )
    ConsentEvent.objects.bulk_create(events, batch_size=5000)
    ContactTagging.objects.bulk_create(taggings, batch_size=5000)
    # One prepared UPDATE per contact (bulk_update's CASE expressions took most of the seeding time).
    fields = [
        Contact._meta.get_field(name) for name in ("created_at", "email_consent", "sms_consent")
    ]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {Contact._meta.db_table} SET created_at = %s, email_consent = %s, sms_consent = %s "  # noqa: S608
            "WHERE id = %s",
            [
                [f.get_db_prep_save(getattr(c, f.attname), connection) for f in fields] + [c.pk]
                for c in created
            ],
        )


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
