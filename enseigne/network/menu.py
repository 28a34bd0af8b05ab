"""The main menu: grouped as a marketer thinks of the work, and only what the role can open.

Each entry says who sees it with the same capability its page checks, so a link never
leads to a 403 page. A group with one entry is a plain link; the others open a list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from enseigne.network.access import Access
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode


def _everyone(access: Access) -> bool:
    return bool(access.grants)


def _sees_several_units(access: Access) -> bool:
    return access.is_hq or len(access.paths) > 1


def _hq_admin(access: Access) -> bool:
    return access.is_hq_admin


def _manages_identity(access: Access) -> bool:
    """HQ with manage_identity at the network root: the mother base is HQ's alone."""
    return any(
        len(g.path) == OrgNode.steplen
        and g.role_level == "hq"
        and Capability.MANAGE_IDENTITY in g.capabilities
        for g in access.grants
    )


def _designs_journeys(access: Access) -> bool:
    """HQ with create_national_campaigns at the network root (journeys.services)."""
    return any(
        len(g.path) == OrgNode.steplen
        and g.role_level == "hq"
        and Capability.CREATE_NATIONAL_CAMPAIGNS in g.capabilities
        for g in access.grants
    )


def _may(capability: str) -> Callable[[Access], bool]:
    def shown(access: Access) -> bool:
        return access.can_anywhere(capability)

    return shown


@dataclass(frozen=True)
class Entry:
    label: str | Promise
    url_name: str
    shown: Callable[[Access], bool] = _everyone


@dataclass(frozen=True)
class Group:
    key: str
    label: str | Promise
    entries: tuple[Entry, ...]


MENU: tuple[Group, ...] = (
    Group(
        "network",
        _("Network"),
        (
            Entry(_("Overview"), "hq_home", _sees_several_units),
            Entry(_("Users"), "users", _hq_admin),
            Entry(_("Roles"), "roles", _hq_admin),
            Entry(_("Audit log"), "audit_log", _hq_admin),
        ),
    ),
    Group(
        "audience",
        _("Audience"),
        (
            Entry(_("Contacts"), "contact_list"),
            Entry(_("Imports"), "import_list", _may(Capability.IMPORT_CONTACTS)),
            Entry(_("Sales imports"), "order_import_list", _may(Capability.RECORD_CONVERSIONS)),
            Entry(_("Segments"), "segment_list"),
            Entry(_("Customer base"), "person_search", _manages_identity),
            Entry(_("Personas"), "persona_overview"),
            Entry(_("RFM groups"), "rfm_overview"),
        ),
    ),
    Group(
        "content",
        _("Content"),
        (
            Entry(_("Templates"), "template_list"),
            Entry(_("Library"), "asset_library"),
            Entry(_("Best practices"), "gallery"),
        ),
    ),
    Group(
        "campaigns",
        _("Campaigns"),
        (
            Entry(_("Campaigns"), "campaign_list"),
            Entry(_("Calendar"), "campaign_calendar"),
            Entry(_("Journeys"), "journey_list"),
            Entry(_("Journey designs"), "hq_journeys", _designs_journeys),
            Entry(_("Outbox"), "outbox"),
        ),
    ),
    Group("results", _("Results"), (Entry(_("Results"), "results"),)),
)


@dataclass(frozen=True)
class Link:
    label: str | Promise
    url: str


@dataclass(frozen=True)
class Shown:
    key: str
    label: str | Promise
    links: tuple[Link, ...]


def menu_for(access: Access) -> list[Shown]:
    """The groups and links this person may open (a group left empty is not shown)."""
    shown = []
    for group in MENU:
        links = tuple(
            Link(entry.label, reverse(entry.url_name))
            for entry in group.entries
            if entry.shown(access)
        )
        if links:
            shown.append(Shown(group.key, group.label, links))
    return shown
