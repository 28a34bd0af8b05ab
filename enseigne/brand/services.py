"""Writes for the brand kit: HQ templates and their versions, units' local versions."""

from __future__ import annotations

import difflib
import re

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from enseigne.brand import checks
from enseigne.brand import variants as zone_variants
from enseigne.brand.library import ZONE_KINDS, zone_data
from enseigne.brand.models import (
    CONTENT_FROZEN_STATUSES,
    Asset,
    Guardrails,
    LocalVersion,
    Template,
    TemplateVersion,
)
from enseigne.brand.previews import check_within_limits, email_preview, sms_preview
from enseigne.brand.rendering import check_subject, compile_email, persona_values
from enseigne.brand.selectors import assets_visible_to_unit
from enseigne.brand.sms import measure
from enseigne.brand.zones import Zone, locked_text, parse
from enseigne.contacts.models import Channel
from enseigne.lib.ids import parse_uuid
from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode, User
from enseigne.network.services import audit


def guardrails_for(path: str) -> Guardrails | None:
    """The network's guardrails, for anything at or under ``path``."""
    return Guardrails.objects.filter(node__path=path[: OrgNode.steplen]).first()


def can_manage_template(user: User, template: Template) -> bool:
    if template.is_free:  # Enseigne's frame: nobody edits it, the unit fills its zones
        return False
    node = OrgNode.objects.get(path=template.shared_path)
    return access_for(user).can(Capability.MANAGE_TEMPLATES, node)


def compiled_version_fields(channel: str, source: str, *, sms_stop: str, subject: str = "") -> dict:
    if channel == Channel.EMAIL:
        compiled = compile_email(source)
        check_within_limits(
            html=compiled.html, text=compiled.text, zones=compiled.zones, subject=subject
        )
        return {
            "zones": [z.as_dict() for z in compiled.zones],
            "compiled_html": compiled.html,
            "compiled_text": compiled.text,
        }
    if not sms_stop.strip():
        raise ValidationError(_("An SMS template needs its STOP mention (e.g. “STOP au 36111”)."))
    parsed = parse(source, channel="sms")
    check_within_limits(html="", text=parsed.source, zones=tuple(parsed.zones))
    return {
        "zones": [z.as_dict() for z in parsed.zones],
        "compiled_html": "",
        "compiled_text": parsed.source,
    }


def template_create(
    *,
    actor: User,
    shared_with: OrgNode,
    channel: str,
    name: str,
    source: str,
    subject: str = "",
    description: str = "",
    sms_stop: str = "",
    max_segments: int = 2,
    variants: dict | None = None,
) -> Template:
    if not access_for(actor).can(Capability.MANAGE_TEMPLATES, shared_with):
        raise PermissionDenied
    check_subject(subject)
    compiled = compiled_version_fields(channel, source, sms_stop=sms_stop, subject=subject)
    compiled["variants"] = _checked_variants(compiled, variants, path=shared_with.path)
    with transaction.atomic():
        template = Template.objects.create(
            channel=channel,
            name=name,
            description=description,
            shared_path=shared_with.path,
        )
        version = TemplateVersion.objects.create(
            template=template,
            number=1,
            source=source,
            subject=subject,
            sms_stop=sms_stop,
            max_segments=max_segments,
            created_by=actor,
            **compiled,
        )
        template.current = version
        template.save(update_fields=["current"])
        _check_sms_variants(version, template)
        _link_assets(version)
        audit(
            actor=actor,
            action="template.create",
            target=template,
            node_path=shared_with.path,
            changes={"name": name, "channel": channel},
        )
    return template


def template_publish(
    *,
    actor: User,
    template: Template,
    source: str,
    subject: str | None = None,
    sms_stop: str | None = None,
    max_segments: int | None = None,
    variants: dict | None = None,
) -> TemplateVersion:
    """A new HQ version; every unit's local version follows it (values kept, re-checked).
    ``variants`` None: the previous version's variants are carried forward (those of zones
    still there that take variants, for personas that still exist), checked again."""
    if not can_manage_template(actor, template):
        raise PermissionDenied
    previous = template.current
    subject = previous.subject if subject is None else subject
    sms_stop = previous.sms_stop if sms_stop is None else sms_stop
    max_segments = previous.max_segments if max_segments is None else max_segments
    check_subject(subject)
    compiled = compiled_version_fields(template.channel, source, sms_stop=sms_stop, subject=subject)
    compiled["variants"] = _checked_variants(
        compiled,
        previous.variants if variants is None else variants,
        path=template.shared_path,
        carried=variants is None,
    )
    with transaction.atomic():
        version = TemplateVersion.objects.create(
            template=template,
            number=previous.number + 1,
            source=source,
            subject=subject,
            sms_stop=sms_stop,
            max_segments=max_segments,
            created_by=actor,
            **compiled,
        )
        _check_sms_variants(version, template)
        Template.objects.filter(pk=template.pk).update(current=version)
        template.current = version
        _link_assets(version)
        guardrails = guardrails_for(template.shared_path)
        followed = 0
        for local in LocalVersion.objects.filter(template=template).select_related("unit"):
            local.previous_version = local.version
            local.version = version
            _recheck(local, guardrails)
            local.save(
                update_fields=[
                    "previous_version",
                    "version",
                    "values",
                    "status",
                    "problems",
                    "updated_at",
                ]
            )
            followed += 1
        audit(
            actor=actor,
            action="template.publish",
            target=template,
            node_path=template.shared_path,
            changes={"version": version.number, "local_versions_followed": followed},
        )
    return version


def _checked_variants(
    compiled: dict, variants: dict | None, *, path: str, carried: bool = False
) -> dict:
    """Head office's variants per persona for a new version, cleaned and checked by the zone
    rules and the network's guardrails (``brand.variants``); ValidationError names the zone,
    the persona and the rule."""
    if not variants:
        return {}
    return zone_variants.clean(
        [Zone.from_dict(z) for z in compiled["zones"]],
        variants,
        personas=zone_variants.network_personas(path),
        guardrails=guardrails_for(path),
        keep_unknown=carried,
    )


def _check_sms_variants(version: TemplateVersion, template: Template) -> None:
    """An SMS variant must fit head office's segment limit with its defaults (measured with
    the sharing node's name; each unit's version is measured again with its own)."""
    if template.channel == Channel.SMS and version.variants:
        node = OrgNode.objects.get(path=template.shared_path)
        problems = variant_sms_problems(version, {}, node)
        if problems:
            raise ValidationError(problems)


_STORED_FILE = re.compile(r"assets/\d{4}/\d{2}/[0-9a-f]{32}")


def _link_assets(version: TemplateVersion) -> None:
    """Remember which library files HQ wrote into the source, for usage counts."""
    used = Q(pk__in=[])
    for path in set(_STORED_FILE.findall(version.source)):  # a file or one of its renditions
        used |= Q(file__startswith=path)
    if (
        "brand.logo" in version.source
    ):  # the network's logos, through {{ brand.logo_url }} and its variants
        used |= Q(shared_path=version.template.shared_path[: OrgNode.steplen], kind=Asset.Kind.LOGO)
    ids = list(Asset.objects.filter(used, unit_path="").values_list("pk", flat=True))
    if ids:
        version.assets.set(ids)


def template_edit(
    *,
    actor: User,
    template: Template,
    name: str,
    description: str,
    source: str,
    subject: str | None = None,
    sms_stop: str | None = None,
    max_segments: int | None = None,
    variants: dict | None = None,
) -> TemplateVersion:
    """Rename freely; a change of content publishes a new version (the current one otherwise).
    ``variants`` None: the current ones are kept."""
    if not can_manage_template(actor, template):
        raise PermissionDenied
    current = template.current
    if variants is not None:  # a zone left without variants is no change
        variants = {zone: entries for zone, entries in variants.items() if entries}
    content_changed = (
        source != current.source
        or (variants is not None and variants != current.variants)
        or (subject is not None and subject != current.subject)
        or (sms_stop is not None and sms_stop != current.sms_stop)
        or (max_segments is not None and max_segments != current.max_segments)
    )
    version = current
    with transaction.atomic():
        if content_changed:
            version = template_publish(
                actor=actor,
                template=template,
                source=source,
                subject=subject,
                sms_stop=sms_stop,
                max_segments=max_segments,
                variants=variants,
            )
        if (name, description) != (template.name, template.description):
            template.name, template.description = name, description
            template.save(update_fields=["name", "description"])
            audit(
                actor=actor,
                action="template.rename",
                target=template,
                node_path=template.shared_path,
                changes={"name": name},
            )
    return version


def zones_of(version: TemplateVersion) -> list[Zone]:
    return [Zone.from_dict(z) for z in version.zones]


def _visible_assets(unit: OrgNode, values: dict) -> dict[str, Asset]:
    ids = [parse_uuid(v.get("asset")) for v in values.values() if isinstance(v, dict)]
    ids = [i for i in ids if i]
    if not ids:
        return {}
    return {str(a.public_id): a for a in assets_visible_to_unit(unit).filter(public_id__in=ids)}


def _resolve(zones: list[Zone], values: dict, assets: dict[str, Asset]) -> dict:
    """Fill each picked item's zone data from the library (what the unit sent is only the pick)."""
    resolved = dict(values)
    for zone in zones:
        value = values.get(zone.name)
        if zone.kind not in ZONE_KINDS or not isinstance(value, dict):
            continue
        asset = assets.get(value.get("asset") or "")
        if asset is not None and asset.kind in ZONE_KINDS[zone.kind]:
            resolved[zone.name] = zone_data(asset, value.get("alt", ""))
        elif value.get("asset"):
            resolved[zone.name] = {"asset": value["asset"]}
    return resolved


def _recheck(local: LocalVersion, guardrails: Guardrails | None) -> list[Asset]:
    """Resolve the picks and re-check the local version; returns the library items it uses."""
    zones = zones_of(local.version)
    assets = _visible_assets(local.unit, local.values)
    local.values = _resolve(zones, local.values, assets)
    problems = checks.check(
        zones,
        local.values,
        source=local.version.source,
        guardrails=guardrails,
        assets=assets,
        channel=local.template.channel,
    )
    problems.extend(checks.removed_zones(zones, local.values))
    if local.template.channel == Channel.SMS:
        problems.extend(sms_problems(local.version, local.values, local.unit))
    local.problems = problems
    local.status = LocalVersion.Status.FLAGGED if problems else LocalVersion.Status.OK
    return list(assets.values())


def sms_problems(version: TemplateVersion, values: dict, unit: OrgNode) -> list[str]:
    length = measure(sms_preview(version, values, unit))
    if length.segments > version.max_segments:
        return [
            _(
                "With its sender and STOP mention this SMS takes %(segments)s segments; head office allows "
                "%(max)s. Shorten your text (the STOP mention is never cut)."
            )
            % {"segments": length.segments, "max": version.max_segments}
        ]
    return variant_sms_problems(version, values, unit)


def variant_sms_problems(version: TemplateVersion, values: dict, unit: OrgNode) -> list[str]:
    """The segment limit for the customers of each persona head office wrote variants for."""
    names = zone_variants.network_personas(unit.path)
    problems = []
    for persona in persona_values(version.variants):
        length = measure(sms_preview(version, values, unit, persona=persona))
        if length.segments > version.max_segments:
            problems.append(
                _(
                    "With head office's variant for the persona “%(persona)s”, this SMS takes "
                    "%(segments)s segments; head office allows %(max)s."
                )
                % {
                    "persona": names.get(persona, persona),
                    "segments": length.segments,
                    "max": version.max_segments,
                }
            )
    return problems


def local_version_save(
    *,
    actor: User,
    unit: OrgNode,
    template: Template,
    values: dict,
    name: str = "",
    local: LocalVersion | None = None,
) -> LocalVersion:
    if unit.kind != OrgNode.Kind.UNIT or not unit.path.startswith(template.shared_path):
        raise PermissionDenied
    if not access_for(actor).can(Capability.PERSONALISE_TEMPLATES, unit):
        raise PermissionDenied
    if template.is_free and not access_for(actor).can(Capability.CREATE_FREE_CAMPAIGNS, unit):
        raise PermissionDenied
    version = template.current
    zones = zones_of(version)
    cleaned = checks.clean_values(zones, values)
    if local is None:
        local = LocalVersion(unit=unit, unit_path=unit.path, template=template, version=version)
    elif local.unit_id != unit.pk or local.template_id != template.pk:
        raise PermissionDenied
    # Values for zones the form did not show (e.g. removed by HQ) are kept as they were.
    shown = {z.name for z in zones}
    local.values = {**{k: v for k, v in local.values.items() if k not in shown}, **cleaned}
    local.version = version
    local.name = (name or local.name or template.name).strip()[:200]
    local.updated_by = actor
    local.previous_version = None  # the unit has seen head office's change
    picked = _recheck(local, guardrails_for(unit.path))
    with transaction.atomic():
        if local.pk is not None:
            # Locked so that an approval taking its snapshot comes wholly before or after.
            LocalVersion.objects.select_for_update().filter(pk=local.pk).first()
            _refuse_if_frozen(local)
        local.save()
        local.assets.set(picked)
    audit(
        actor=actor,
        action="local_version.save",
        target=local,
        node_path=unit.path,
        changes={
            "template": str(template.public_id),
            "version": version.number,
            "problems": len(local.problems),
        },
    )
    return local


def _refuse_if_frozen(local: LocalVersion) -> None:
    """A version sent for approval or approved is what will be sent: editing it is refused,
    naming the campaigns (see docs/decisions.md, "Approved content is frozen")."""
    uses = [
        (campaign, None if campaign.status == "submitted" else campaign.decided_at)
        for campaign in local.campaigns.filter(status__in=CONTENT_FROZEN_STATUSES).order_by("pk")
    ]
    relays = local.relays.filter(campaign__status__in=CONTENT_FROZEN_STATUSES).select_related(
        "campaign"
    )
    uses += [(relay.campaign, relay.decided_at) for relay in relays.order_by("pk")]
    if not uses:
        return
    names = [
        _("the campaign “%(name)s” (%(status)s, approved on %(date)s)")
        % {
            "name": campaign.name,
            "status": campaign.get_status_display().lower(),
            "date": date_format(timezone.localtime(when), "SHORT_DATE_FORMAT"),
        }
        if when
        else _("the campaign “%(name)s” (%(status)s)")
        % {"name": campaign.name, "status": campaign.get_status_display().lower()}
        for campaign, when in uses
    ]
    raise ValidationError(
        _(
            "This version is used by %(campaigns)s: what was approved is what is sent, so it "
            "cannot be changed any more. To send something else, write a new version from the "
            "template."
        )
        % {"campaigns": ", ".join(names)}
    )


def preview_values(version: TemplateVersion, values: dict, unit: OrgNode) -> dict:
    """What a zone form would store, without storing it: cleaned, picks resolved from the library."""
    zones = zones_of(version)
    cleaned = checks.clean_values(zones, values)
    return _resolve(zones, cleaned, _visible_assets(unit, cleaned))


def values_preview(
    *, version: TemplateVersion, unit: OrgNode, values: dict, persona: str | None = None
) -> str:
    """The e-mail HTML (or the whole SMS) a unit's zone values give, with a sample contact
    (``persona``: one of that persona, who gets head office's variants)."""
    resolved = preview_values(version, values, unit)
    if version.template.channel == Channel.SMS:
        return sms_preview(version, resolved, unit, persona=persona)
    return email_preview(version, resolved, unit, persona=persona)[0]


def source_preview(
    *, channel: str, source: str, unit: OrgNode, sms_stop: str = "", as_persona: tuple = (None, {})
) -> str:
    """HQ's unsaved source compiled and rendered with the zones' defaults, or, given
    ``as_persona`` (a persona's public id, the unsaved variants), as a customer of that
    persona sees it (ValidationError on errors)."""
    persona, variants = as_persona
    compiled = compiled_version_fields(channel, source, sms_stop=sms_stop or "STOP")
    if persona and variants:
        compiled["variants"] = _checked_variants(compiled, variants, path=unit.path)
    version = TemplateVersion(source=source, sms_stop=sms_stop, **compiled)
    version.template = Template(channel=channel)
    if channel == Channel.SMS:
        return sms_preview(version, {}, unit, persona=persona)
    return email_preview(version, {}, unit, persona=persona)[0]


def locked_diff(old: TemplateVersion | None, new: TemplateVersion) -> str:
    """What HQ changed in the locked parts between two versions, as a unified diff."""
    if old is None:
        return ""
    return "\n".join(
        difflib.unified_diff(
            locked_text(old.source).splitlines(),
            locked_text(new.source).splitlines(),
            fromfile=f"v{old.number}",
            tofile=f"v{new.number}",
            lineterm="",
        )
    )


@transaction.atomic
def guardrails_update(*, actor: User, node: OrgNode, **fields) -> Guardrails:
    if not node.is_root() or not access_for(actor).can(Capability.MANAGE_TEMPLATES, node):
        raise PermissionDenied
    guardrails, _created = Guardrails.objects.get_or_create(node=node)
    for name, value in fields.items():
        setattr(guardrails, name, value)
    guardrails.save()
    audit(
        actor=actor,
        action="guardrails.update",
        target_type="guardrails",
        target_id=str(node.public_id),
        node_path=node.path,
        changes=dict(fields),
    )
    for local in LocalVersion.objects.filter(unit_path__startswith=node.path).select_related(
        "unit", "template", "version"
    ):
        _recheck(local, guardrails)
        local.save(update_fields=["values", "status", "problems", "updated_at"])
    return guardrails


def local_versions_refresh(asset: Asset) -> int:
    """An item changed in the library: the local versions that picked it show the new content."""
    count = 0
    guardrails = guardrails_for(asset.shared_path)
    for local in asset.local_versions.select_related("unit", "template", "version"):
        _recheck(local, guardrails)
        local.save(update_fields=["values", "status", "problems", "updated_at"])
        count += 1
    return count
