"""People with records in several stores, as a real network's data has them (issue 20).

A few hundred people shop in two or three of Lyon, Lille and Marseille, and each store
typed them in its own way: the same address in another case, Gmail's dots, a typo in the
first name, a maiden name, a changed phone, first and last names swapped, sometimes no
shared address at all. Records are written store visit by store visit, each visit
telling identity like every writer does, so the links, the review queue and the refused
pairs are the linker's own work. Then the bad input every base holds: couples sharing
one phone, a daughter who gave her mother's phone.

And the woman of issue 20: the same e-mail in Lyon and in Lille (``LYON_LILLE_EMAIL``).

Addresses are on ``.test`` domains (reserved, never delivered) except the few Gmail ones
the Gmail rule needs. Deterministic: its own generator, seeded from the demo's seed, so
the rest of the demo draws exactly what it drew before.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from dataclasses import dataclass, field

from django.db import connection
from django.utils import timezone

from enseigne.contacts.models import ConsentEvent, ConsentStatus, Contact
from enseigne.contacts.records import record_of, records_written
from enseigne.network.models import OrgNode

LYON_LILLE_EMAIL = "amelie.fontaine@orange.test"
LYON_LILLE_NAME = ("Amélie", "Fontaine")
STORES = ("lyon", "lille", "marseille")
STORE_WEIGHTS = (1.4, 1.2, 1.0)
DOMAINS = ("orange.test", "free.test", "sfr.test", "laposte.test", "wanadoo.test", "gmail.com")
DOMAIN_WEIGHTS = (3, 2, 2, 1, 1, 1.5)
# A phone prefix the demo's other contacts never draw (06 3x, 06 9x), so no store has two
# records with one number by chance.
PHONE_PREFIXES = ("63", "69")
VARIATIONS = {
    "same": 3.0,  # the same e-mail, phone and names
    "email_case": 2.0,  # Amelie.Fontaine@Orange.test
    "gmail_dots": 1.5,  # amelie.fontaine@gmail.com / ameliefontaine@gmail.com
    "typo": 2.0,  # Amélie → Amelie, Camille → Camile (same e-mail)
    "maiden": 1.2,  # her maiden name and another e-mail, the same phone
    "changed_phone": 1.5,  # the same e-mail, a new phone
    "swapped": 1.0,  # last name in the first name's box, the same phone, no e-mail
    "no_key": 1.0,  # another e-mail, no phone: only the model can say (birthday, names)
}


@dataclass
class Person:
    first: str
    last: str
    email: str | None
    phone: str | None
    birthday: dt.date | None
    stores: list[str]
    visits: list[dict] = field(default_factory=list)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _typo(rng: random.Random, name: str) -> str:
    plain = _ascii(name)
    if plain != name:
        return plain  # the accent dropped
    if len(name) > 4:
        i = rng.randrange(1, len(name) - 1)
        return name[:i] + name[i + 1 :] if rng.random() < 0.5 else name[:i] + name[i] + name[i:]
    return name.upper()


def _case(rng: random.Random, email: str) -> str:
    local, _, domain = email.partition("@")
    if rng.random() < 0.5:
        return email.upper()
    return ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()


class _Phones:
    def __init__(self, rng: random.Random):
        self.rng, self.used = rng, set()

    def new(self) -> str:
        while True:
            phone = f"+33{self.rng.choice(PHONE_PREFIXES)}{self.rng.randrange(0, 9_999_999):07d}"
            if phone not in self.used:
                self.used.add(phone)
                return phone


def _people(rng: random.Random, count: int, first_names, last_names, phones) -> list[Person]:
    locals_: set[str] = set()
    people = [
        Person(
            LYON_LILLE_NAME[0],
            LYON_LILLE_NAME[1],
            LYON_LILLE_EMAIL,
            phones.new(),
            dt.date(1984, 5, 17),
            ["lyon", "lille"],
        )
    ]
    locals_.add(LYON_LILLE_EMAIL.split("@")[0])
    while len(people) < count:
        first, last = rng.choice(first_names), rng.choice(last_names)
        local = f"{_ascii(first)}.{_ascii(last)}".lower().replace(" ", "")
        n = 2
        while local in locals_:
            local, n = f"{_ascii(first)}.{_ascii(last)}{n}".lower(), n + 1
        locals_.add(local)
        domain = rng.choices(DOMAINS, DOMAIN_WEIGHTS)[0]
        how_many = 3 if rng.random() < 0.3 else 2
        stores: list[str] = []
        while len(stores) < how_many:
            store = rng.choices(STORES, STORE_WEIGHTS)[0]
            if store not in stores:
                stores.append(store)
        people.append(
            Person(
                first,
                last,
                f"{local}@{domain}",
                phones.new() if rng.random() < 0.75 else None,
                dt.date(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28))
                if rng.random() < 0.7
                else None,
                stores,
            )
        )
    # Each visit after the first is typed with one variation.
    kinds, weights = list(VARIATIONS), list(VARIATIONS.values())
    for index, person in enumerate(people):
        for position, store in enumerate(person.stores):
            kind = "same" if position == 0 or index == 0 else rng.choices(kinds, weights)[0]
            person.visits.append(_visit(rng, person, store, kind, phones, last_names))
    return people


def _visit(rng, person: Person, store: str, kind: str, phones: _Phones, last_names) -> dict:
    visit = {
        "store": store,
        "kind": kind,
        "first_name": person.first,
        "last_name": person.last,
        "email": person.email,
        "phone": person.phone,
        "birthday": person.birthday,
    }
    local, _, domain = (person.email or "@").partition("@")
    if kind == "email_case" and person.email:
        visit["email"] = _case(rng, person.email)
    elif kind == "gmail_dots" and domain == "gmail.com" and "." in local:
        visit["email"] = local.replace(".", "") + "@gmail.com"
    elif kind == "gmail_dots":
        visit["email"], visit["kind"] = _case(rng, person.email or ""), "email_case"
    elif kind == "typo":
        visit["first_name"] = _typo(rng, person.first)
    elif kind == "maiden" and person.phone:
        maiden = rng.choice([n for n in last_names if n != person.last])
        visit["last_name"] = maiden
        visit["email"] = (
            f"{_ascii(person.first)}.{_ascii(maiden)}.{rng.randrange(10, 99)}@free.test".lower()
        )
    elif kind == "changed_phone":
        visit["phone"] = phones.new()
    elif kind == "swapped" and person.phone:
        visit["first_name"], visit["last_name"], visit["email"] = person.last, person.first, None
    elif kind in ("no_key", "maiden", "swapped"):
        visit["kind"] = "no_key"
        visit["first_name"], visit["last_name"] = person.last.upper(), person.first
        visit["email"] = (
            f"{_ascii(person.first)[0]}.{_ascii(person.last)}.{rng.randrange(100, 999)}@sfr.test".lower()
        )
        visit["phone"] = None
    return visit


def _couples(rng: random.Random, last_names, phones: _Phones) -> list[dict]:
    """Couples sharing the phone at home, each with an e-mail and a birthday of their own, in
    two stores: two hard identifiers contradict the phone, the linker refuses without review.
    (A shop's phone typed on many cards cannot be shown here: a store holds one record per
    phone, and eight stores stay under the shared-key cap of ten.)"""
    visits = []
    for i in range(3):
        last, phone = rng.choice(last_names), phones.new()
        for store, first, year in (("lyon", "Nathalie", 1968), ("marseille", "Philippe", 1965)):
            visits.append(
                {
                    "store": store,
                    "kind": "couple",
                    "first_name": first,
                    "last_name": last,
                    "email": f"{first}.{_ascii(last)}.{i}@wanadoo.test".lower(),
                    "phone": phone,
                    "birthday": dt.date(year + i, 3 + i, 11),
                }
            )
    return visits


def _write(visits: list[dict], units: dict[str, OrgNode], rng: random.Random) -> list[Contact]:
    made = Contact.objects.bulk_create(
        [
            Contact(
                unit=units[v["store"]],
                unit_path=units[v["store"]].path,
                email=v["email"],
                phone=v["phone"],
                first_name=v["first_name"],
                last_name=v["last_name"],
                birthday=v["birthday"],
                language="fr",
                is_customer=v.get("customer", rng.random() < 0.65),
            )
            for v in visits
        ],
        batch_size=2000,
    )
    records_written([record_of(c) for c in made])
    return made


def seed_people(
    units: dict[str, OrgNode], first_names, last_names, *, count: int, seed: int
) -> dict:
    """Write ``count`` people's records store visit by store visit; returns the figures."""
    rng = random.Random(seed * 1000 + 20)  # its own draws: the rest of the demo is unchanged
    phones = _Phones(rng)
    people = _people(rng, count, first_names, last_names, phones)
    people[0].visits[0]["customer"] = True  # Amélie bought in Lyon, registered in Lille
    people[0].visits[1]["customer"] = False
    created: list[Contact] = []
    rounds = max(len(p.visits) for p in people)
    for position in range(rounds):  # first visits, then second ones…: stores met her in turn
        created += _write(
            [p.visits[position] for p in people if len(p.visits) > position], units, rng
        )
    # A daughter who gave her mother's phone in a store neither had visited: her e-mail
    # says one person, the phone another; the pair waits in HQ's review queue.
    mothers = [p for p in people[1:] if p.phone and len(p.stores) == 2]
    borrowed = []
    for mother, daughter in zip(mothers, reversed(people[1:]), strict=False):
        free = [s for s in STORES if s not in mother.stores and s not in daughter.stores]
        if daughter is mother or not free or daughter.email is None:
            continue
        borrowed.append(
            {
                "store": free[0],
                "kind": "borrowed_phone",
                "first_name": rng.choice(first_names),
                "last_name": mother.last,
                "email": daughter.email,
                "phone": mother.phone,
                "birthday": None,
            }
        )
        if len(borrowed) == 3:
            break
    couples = _couples(rng, last_names, phones)
    # One spouse, then the other, as two stores met them (a batch's records sharing a key
    # are one person by the linker's first rule).
    created += _write(couples[0::2] + borrowed, units, rng)
    created += _write(couples[1::2], units, rng)
    _consent(created, rng)
    return {
        "people_seeded": len(people),
        "people_records": len(created),
        "variations": sorted({v["kind"] for p in people for v in p.visits}),
    }


def _consent(created: list[Contact], rng: random.Random) -> None:
    """Consent as the stores collected it, and creation dates over the last two years."""
    now = timezone.now()
    events = []
    for contact in created:
        contact.created_at = now - dt.timedelta(
            days=rng.randint(0, 730), minutes=rng.randint(0, 1440)
        )
        amelie = contact.email and contact.email.lower() == LYON_LILLE_EMAIL
        for channel, value, rate in (("email", contact.email, 0.78), ("sms", contact.phone, 0.4)):
            if not value or not (amelie or rng.random() < rate):
                continue
            events.append(
                ConsentEvent(
                    contact=contact,
                    unit_path=contact.unit_path,
                    channel=channel,
                    status=ConsentStatus.GRANTED,
                    occurred_at=contact.created_at + dt.timedelta(minutes=5),
                    source=rng.choice(["in_store", "form"]),
                    wording_version="formulaire-magasin-v1",
                )
            )
            setattr(contact, f"{channel}_consent", ConsentStatus.GRANTED)
    ConsentEvent.objects.bulk_create(events, batch_size=5000)
    fields = [Contact._meta.get_field(n) for n in ("created_at", "email_consent", "sms_consent")]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {Contact._meta.db_table} SET created_at = %s, email_consent = %s, "  # noqa: S608
            "sms_consent = %s WHERE id = %s",
            [
                [f.get_db_prep_save(getattr(c, f.attname), connection) for f in fields] + [c.pk]
                for c in created
            ],
        )
