"""Library items as the data a zone shows: resolved on the server, never typed by a unit.

A unit picks an item (its id travels in the form); what the template prints — image
address, offer title, price, link — comes from the library, so a unit cannot slip an
address of its own into an image or button.
"""

from __future__ import annotations

import datetime as dt

from django.utils.translation import gettext as _

from enseigne.brand.models import Asset
from enseigne.lib.addresses import absolute_url


def public_url(field) -> str:
    """An absolute address for a stored file (e-mail images must load from anywhere)."""
    return absolute_url(field.url) if field else ""


def stored_url(field) -> str:
    """A file's address as zone data keeps it: the path alone for files this server serves
    (made absolute when a message is rendered, with the address it answers on then), so a
    demo moved to another port or a renamed host does not send broken pictures."""
    return field.url if field else ""


def _date(value: str) -> str:
    try:
        return dt.date.fromisoformat(value).strftime("%d/%m/%Y")
    except ValueError:
        return value


def offer_ended(asset: Asset, today: dt.date | None = None) -> bool:
    until = (asset.data or {}).get("valid_until")
    try:
        return bool(until) and dt.date.fromisoformat(until) < (today or dt.date.today())
    except ValueError:
        return False


def zone_data(asset: Asset, alt: str = "") -> dict[str, str]:
    """What an image, offer or product zone prints for this item (empty parts left out: in
    Liquid an empty string is true, a missing key is not)."""
    return {key: value for key, value in _zone_data(asset, alt).items() if value}


def _zone_data(asset: Asset, alt: str) -> dict[str, str]:
    data = asset.data or {}
    if asset.kind in (Asset.Kind.IMAGE, Asset.Kind.LOGO):
        return {
            "asset": str(asset.public_id),
            "src": stored_url(asset.email_rendition),
            "alt": (alt or asset.name)[:200],
        }
    if asset.kind == Asset.Kind.OFFER:
        legal = data.get("legal", "")
        if data.get("valid_from") and data.get("valid_until"):
            period = _("Offer valid from %(start)s to %(end)s.") % {
                "start": _date(data["valid_from"]),
                "end": _date(data["valid_until"]),
            }
            legal = f"{period} {legal}".strip()
        return {
            "asset": str(asset.public_id),
            "title": data.get("title", ""),
            "text": data.get("text", ""),
            "price": data.get("price", ""),
            "legal": legal,
            "url": data.get("url", ""),
            "cta": data.get("cta") or _("See the offer"),
            "image": stored_url(asset.email_rendition),
        }
    if asset.kind == Asset.Kind.PRODUCT:
        return {
            "asset": str(asset.public_id),
            "title": data.get("name", ""),
            "text": _("Ref. %(sku)s") % {"sku": data["sku"]} if data.get("sku") else "",
            "price": data.get("price", ""),
            "legal": "",
            "url": data.get("url", ""),
            "cta": data.get("cta") or _("See the product"),
            "image": stored_url(asset.email_rendition),
        }
    return {"asset": str(asset.public_id)}


ZONE_KINDS = {
    "image": (Asset.Kind.IMAGE, Asset.Kind.LOGO),
    "offer": (Asset.Kind.OFFER,),
    "product": (Asset.Kind.PRODUCT,),
}
