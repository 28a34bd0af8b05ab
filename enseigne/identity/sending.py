"""Sending by person: what campaigns need to know of persons, as SQL they can join.

A national campaign sends one message a person (per channel), from one of the person's
records: the one HQ's rule (``IdentityPolicy.sending_store``) ranks first among the records
that pass every gate themselves. Marketing pressure and brand-wide suppressions apply to
the person: a message to any record of the person counts against their caps, and an
address suppressed brand-wide stops every record of its person.

A record with no link (written before identity, or by a raw insert) is its own person:
its person key is minus its contact id, which no person id can equal.

These are SQL fragments and querysets, not Python loops: a national audience classifies a
whole network's contacts in one statement (campaigns/audience.py).
"""

from __future__ import annotations

from django.apps import apps
from django.db import connection
from django.db.models import Exists, Q, QuerySet
from django.db.models.expressions import RawSQL

from enseigne.contacts.models import Channel, ConsentEvent, Contact, Suppression

from . import keys
from .linking import policy_for
from .models import IdentityPolicy, RecordLink

LINKS = RecordLink._meta.db_table
CONTACTS = Contact._meta.db_table
Rule = IdentityPolicy.SendingStore


def sending_store_rule(root_path: str) -> str:
    """The network's rule for choosing the sending store of a person (read only)."""
    return policy_for(root_path).sending_store


def separate_controllers(root_path: str) -> bool:
    return policy_for(root_path).mode == IdentityPolicy.Mode.SEPARATE_CONTROLLERS


def shared_links_sql(handoff: str | None = None) -> tuple[str, list]:
    """SQL for ``(contact_id, person_id)`` of the records whose person has other records:
    the only ones a campaign needs a person for (most people have one record, and a record
    alone is its own person). ``handoff``: placeholders for a hand-off's contact ids (the
    caller passes them after the returned parameters); then the links of those contacts'
    persons, all of them, found by index."""
    if handoff is not None:
        return (
            f"SELECT o.contact_id, o.person_id FROM {LINKS} o WHERE o.person_id IN "  # noqa: S608
            f"(SELECT m.person_id FROM {LINKS} m WHERE m.contact_id IN ({handoff}))",
            [],
        )
    # ORDER BY: the persons are counted in the order of the links' person index (a group
    # aggregate over an index-only scan) rather than in a hash table of every person: the
    # audience's statement disables sorts, so the index is the only ordered path. Measured
    # on 200,000 links (a fifth shared): 74–144 ms against 182–331 ms on a loaded machine.
    return (
        f"SELECT o.contact_id, o.person_id FROM {LINKS} o WHERE o.person_id IN "  # noqa: S608
        f"(SELECT m.person_id FROM {LINKS} m GROUP BY m.person_id HAVING COUNT(*) > 1 "
        "ORDER BY m.person_id)",
        [],
    )


def ranking(rule: str, alias: str) -> str:
    """ORDER BY terms ranking records ``alias`` (with ``id`` and ``created_at``) of one
    person, the sending record first.

    - last purchase: the record's latest order reported by its store (tracking's
      conversions, read by table name through the app registry: tracking comes after
      campaigns and identity in the dependency order, and the rule only reads it);
    - last interaction: the record's latest consent event (given in store, by a form, the
      API, a confirmation, an unsubscribe): the customer's own act with that store. Opens
      and clicks are left out: the event log carries no contact (recipient ids only, not
      indexed for this), and opens are mostly machines and privacy proxies;
    - then the oldest record (the store that registered the person first), then the
      smallest id, so the choice is the same at every count.
    """
    purchases = apps.get_model("tracking", "Conversion")._meta.db_table
    consents = ConsentEvent._meta.db_table
    terms = []
    if rule == Rule.LAST_PURCHASE:
        terms.append(
            f"(SELECT MAX(p.occurred_at) FROM {purchases} p WHERE p.contact_id = {alias}.id) "  # noqa: S608
            "DESC NULLS LAST"
        )
    if rule in (Rule.LAST_PURCHASE, Rule.LAST_INTERACTION):
        terms.append(
            f"(SELECT MAX(e.occurred_at) FROM {consents} e WHERE e.contact_id = {alias}.id) "  # noqa: S608
            "DESC NULLS LAST"
        )
    terms += [f"{alias}.created_at ASC", f"{alias}.id ASC"]
    return ", ".join(terms)


def brand_wide_suppressed_records(
    channel: str, root_path: str, *, among: list[int] | None = None
) -> QuerySet:
    """The records of the persons one of whose records has an address suppressed brand-wide
    on ``channel`` (a hard bounce, a complaint, a brand-wide STOP): their other records, even
    under another address, get nothing either, and so does a record that joins the person
    later (it is read through the person's links at every count, freeze and hand-off).

    A person is found two ways, both through the records' links:

    - by the matching keys (indexed by hash): a key is the hash of the network and the
      address's own hash, so the suppression list's hashes give the keys directly;
    - by the suppressed record itself, where its key is not its address's hash: with the
      Gmail rules on, ``c.laire+promo@gmail.com`` has the key of ``claire@gmail.com``, which
      no suppression's hash gives. The record's own address hash (``Contact.email_hash``)
      is matched instead, and its link names the person. Only a record whose address is a
      key (not a placeholder, which identifies nobody) speaks for its person.

    ``among``: only the persons of these records (a hand-off's few contacts), found by index;
    None: the whole network's (an audience)."""
    kind = "email" if channel == Channel.EMAIL else "phone"
    column = f"{kind}_key"
    suppressions = Suppression._meta.db_table
    # Table names and placeholders only are formatted in.
    key = keys.salted_key_sql("%s", "s.value_hash", connection.vendor)
    hashes = RawSQL(  # noqa: S611
        f"SELECT {key} FROM {suppressions} s "  # noqa: S608
        "WHERE s.unit_path = '' AND s.channel = %s",
        [root_path, channel],
    )
    links = RecordLink.objects.all()
    if among is not None:
        links = links.filter(
            person__in=RecordLink.objects.filter(contact__in=among).values("person")
        )
    found = Q(**{f"{column}__in": hashes})
    if not keys.keys_are_address_hashes(kind, gmail_rules=True):
        # Only where the network's Gmail rules are on (read in the same statement: the
        # hand-off counts its queries): elsewhere every key is its address's hash.
        suppressed = Suppression.objects.filter(unit_path="", channel=channel).values("value_hash")
        gmail_rules = IdentityPolicy.objects.filter(network__node__path=root_path, gmail_rules=True)
        found |= Q(
            Exists(gmail_rules),
            **{f"{column}__isnull": False, f"contact__{kind}_hash__in": suppressed},
            unit_path__startswith=root_path,
        )
    persons = links.filter(found).values("person")
    return RecordLink.objects.filter(person__in=persons).values("contact")
