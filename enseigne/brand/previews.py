"""The data a template is rendered with: the unit's profile, a contact, the brand, links."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from liquid.exceptions import LiquidError, ResourceLimitError

from enseigne.brand.library import public_url
from enseigne.brand.models import Asset, TemplateVersion
from enseigne.brand.rendering import (
    Compiled,
    Personaliser,
    ZoneData,
    html_template,
    render_subject,
    text_template,
    zone_context,
)
from enseigne.brand.zones import Zone
from enseigne.network.models import OrgNode
from enseigne.network.selectors import root_of

SAMPLE_CONTACT = {
    "first_name": "Camille",
    "last_name": "Martin",
    "email": "camille.martin@example.com",
    "phone": "+33612345678",
    "language": "fr",
    "attributes": {},
}


def unit_context(unit: OrgNode) -> dict:
    profile = getattr(unit, "profile", None)
    if profile is None:
        return {"name": unit.name, "code": unit.code, "vars": {}}
    address = ", ".join(
        p for p in (profile.address_line, f"{profile.postal_code} {profile.city}".strip()) if p
    )
    return {
        "name": unit.name,
        "code": unit.code,
        "address": address,
        "city": profile.city,
        "phone": profile.phone,
        "email": profile.email,
        "website": profile.website,
        "manager": profile.manager_name,
        "hours": profile.opening_hours,
        "vars": dict(profile.variables or {}),
    }


def brand_logos(root: OrgNode) -> dict[str, str]:
    """The network's logos from the library: ``logo_url`` (colour), ``logo_white_url``, ``logo_square_url``."""
    logos: dict[str, str] = {}
    for logo in Asset.objects.filter(
        unit_path="", shared_path=root.path, kind=Asset.Kind.LOGO
    ).order_by("created_at"):
        key = f"logo_{logo.variant}_url" if logo.variant in ("white", "square") else "logo_url"
        logos.setdefault(key, public_url(logo.email_rendition))
    return {"logo_url": "", "logo_white_url": "", "logo_square_url": "", **logos}


def brand_context(unit: OrgNode) -> dict:
    root = root_of(unit)
    network = getattr(root, "network", None)
    legal = network.legal_name if network else root.name
    return {
        "name": root.name,
        **brand_logos(root),
        "sms_sender": root.name[:11],
        "legal_footer": _("%(legal)s — you receive this e-mail as a customer of %(unit)s.")
        % {"legal": legal, "unit": unit.name},
    }


def preview_links() -> dict:
    return {
        "unsubscribe": "#unsubscribe",
        "preferences": "#preferences",
        "view_online": "#view-online",
    }


def _not_rendered(exc: LiquidError) -> ValidationError:
    # A limit of liquid_bounds (or a merge tag that fails on the sample data): the reason,
    # never a server error.
    return ValidationError(
        _("The message cannot be rendered: %(reason)s") % {"reason": str(exc).splitlines()[0]}
    )


def check_within_limits(
    *, html: str, text: str, zones: tuple[Zone, ...], subject: str = ""
) -> None:
    """Render a new version once with the sample contact and the zones' defaults, so a
    template that breaks a render limit (output, filters, ranges, time, the subject's
    length) is refused when saved, not found out recipient by recipient."""
    data = {"contact": SAMPLE_CONTACT, "unit": {}, "brand": {}, "links": preview_links()}
    text_zones = zone_context(zones, {}, for_text=True)
    try:
        if html:
            html_template(html).render(**data, zones=zone_context(zones, {}))
        text_template(text).render(**data, zones=text_zones)
        if subject:
            render_subject(text_template(subject), **data, zones=text_zones)
    except ResourceLimitError as exc:
        raise _not_rendered(exc) from None
    except LiquidError:
        pass  # data-dependent merge-tag errors are the preview's to show, with real data


def email_preview(
    version: TemplateVersion,
    values: dict,
    unit: OrgNode,
    contact: dict | None = None,
    persona: str | None = None,
):
    """``persona``: as a recipient of that persona sees it (head office's variants)."""
    compiled = Compiled(
        html=version.compiled_html,
        text=version.compiled_text,
        zones=tuple(Zone.from_dict(z) for z in version.zones),
    )
    try:
        return Personaliser(compiled, values, version.variants).render(
            contact=contact or SAMPLE_CONTACT,
            unit=unit_context(unit),
            brand=brand_context(unit),
            links=preview_links(),
            persona=persona,
        )
    except LiquidError as exc:
        raise _not_rendered(exc) from None


def sms_preview(
    version: TemplateVersion,
    values: dict,
    unit: OrgNode,
    contact: dict | None = None,
    persona: str | None = None,
) -> str:
    """Sender + body + STOP mention: the two locked ends are always there, whole."""
    zones = tuple(Zone.from_dict(z) for z in version.zones)
    brand = brand_context(unit)
    try:
        body = (
            text_template(version.compiled_text)
            .render(
                contact=contact or SAMPLE_CONTACT,
                unit=unit_context(unit),
                brand=brand,
                links=preview_links(),
                zones=ZoneData(zones, values, version.variants).text(persona),
            )
            .strip()
        )
    except LiquidError as exc:
        raise _not_rendered(exc) from None
    return f"{brand['sms_sender']}: {body} {version.sms_stop}"
