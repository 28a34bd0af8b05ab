"""Zone variants per persona (issue 21): head office writes, on a zone of its template, the
content some personas receive instead of the zone's usual content.

A version keeps its variants beside its zones (``TemplateVersion.variants``)::

    {"headline": [{"persona": "<persona public id>", "value": "Merci, fidèle client"}, …]}

in head office's order (the personas' own order when written from the editor). Only text,
rich-text and choice zones take variants: a variant is a zone *value* like a unit's, so it
is cleaned the same way (rich text through nh3), checked by the same zone rules and the
network's guardrails (``checks.zone_problems``), and passed to Liquid as data, never as
template source. A zone without a variant for a recipient's persona — or a recipient with
no persona, or whose persona was deleted — gets the usual content: the unit's value where
its local version has one, else head office's default. A unit cannot change a variant; what
it writes in the zone reaches everyone else.

``brand`` comes before ``personas`` in the dependency order: the personas' names are read by
the table's registered name (``network_personas``), never imported; the renderer only
compares a recipient's persona id with the ids written here.
"""

from __future__ import annotations

from django.apps import apps
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from enseigne.brand import checks
from enseigne.brand.zones import Zone
from enseigne.lib.ids import parse_uuid
from enseigne.network.models import OrgNode

KINDS = ("text", "rich", "choice")


def network_personas(path: str) -> dict[str, str]:
    """The personas of the network at or above ``path``, public id → name, in HQ's order
    (empty where the personas app is not installed)."""
    if not apps.is_installed("enseigne.personas"):
        return {}
    persona = apps.get_model("personas", "Persona")
    rows = (
        persona.objects.filter(network__node__path=path[: OrgNode.steplen])
        .order_by("position", "pk")
        .values_list("public_id", "name")
    )
    return {str(public_id): name for public_id, name in rows}


def varied_zones(zones: list[Zone]) -> list[Zone]:
    """The zones that may take variants."""
    return [zone for zone in zones if zone.kind in KINDS]


def _label(zone: Zone, persona: str) -> str:
    return _("%(zone)s, variant for “%(persona)s”") % {"zone": zone.label, "persona": persona}


def clean(
    zones: list[Zone],
    variants: dict,
    *,
    personas: dict[str, str],
    guardrails,
    keep_unknown: bool = False,
) -> dict:
    """``variants`` as a version stores them: only zones that take variants, one variant per
    persona, empty ones left out, values cleaned like a unit's. Raises ValidationError with
    every problem, each naming the zone, the persona and the rule. ``keep_unknown``: a variant
    for a persona that no longer exists is dropped (a version carried forward) rather than
    refused (what head office just wrote)."""
    by_name = {zone.name: zone for zone in varied_zones(zones)}
    cleaned: dict[str, list[dict]] = {}
    problems: list[str] = []
    for name, entries in (variants or {}).items():
        zone = by_name.get(name)
        if zone is None or not isinstance(entries, list):
            continue  # head office removed the zone (or made it an image): nothing to render
        kept: list[dict] = []
        seen: set[str] = set()
        for entry in entries:
            persona = str(parse_uuid(entry.get("persona")) or "") if isinstance(entry, dict) else ""
            value = entry.get("value") if isinstance(entry, dict) else None
            if value is None or not str(value).strip():
                continue
            if persona not in personas:
                if keep_unknown:
                    continue
                problems.append(
                    _("Zone “%(zone)s”: a variant names a persona this network does not have.")
                    % {"zone": zone.label}
                )
                continue
            if persona in seen:
                problems.append(
                    _("Zone “%(zone)s” has two variants for the persona “%(persona)s”.")
                    % {"zone": zone.label, "persona": personas[persona]}
                )
                continue
            seen.add(persona)
            value = checks.clean_values([zone], {name: value})[name]
            problems.extend(
                checks.zone_problems(
                    zone, value, label=_label(zone, personas[persona]), guardrails=guardrails
                )
            )
            kept.append({"persona": persona, "value": value})
        if kept:
            cleaned[name] = kept
    if problems:
        raise ValidationError(problems)
    return cleaned


def described(zones: list[Zone], variants: dict, personas: dict[str, str]) -> dict[str, list[str]]:
    """Zone name → the names of the personas head office wrote a variant for (for the unit's
    form: what it cannot change). A deleted persona is named as such."""
    gone = _("(deleted persona)")
    return {
        zone.name: [personas.get(e["persona"], gone) for e in variants.get(zone.name, [])]
        for zone in zones
        if variants.get(zone.name)
    }


def varied_personas(variants: dict, path: str) -> dict[str, str]:
    """The network's personas (at or above ``path``) that some zone has a variant for, public
    id → name, in HQ's order: the choices of a preview "as a customer of…"."""
    named = {entry["persona"] for entries in variants.values() for entry in entries}
    if not named:
        return {}
    return {key: name for key, name in network_personas(path).items() if key in named}
