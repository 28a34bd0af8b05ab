"""What a unit put in the zones, checked against the zones and HQ's guardrails.

Each problem is a sentence a store manager understands, naming the zone and the rule.
A local version with problems is kept (nothing typed is lost) but cannot be used to send.
"""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

from enseigne.brand.library import ZONE_KINDS, offer_ended
from enseigne.brand.rendering import rich_to_text, sanitise_rich
from enseigne.brand.zones import Zone

_LOGO = re.compile(r"brand\.logo(_white|_square)?_url")
_KIND_WORDS = {
    "image": lambda: _("an image or logo"),
    "offer": lambda: _("an offer"),
    "product": lambda: _("a product"),
}


def _pattern(rule: str) -> re.Pattern | None:
    rule = rule.strip()
    if not rule:
        return None
    if rule.startswith("re:"):
        try:
            return re.compile(rule[3:], re.IGNORECASE)
        except re.error:
            return None
    return re.compile(rf"(?<!\w){re.escape(rule)}(?!\w)", re.IGNORECASE)


# Characters IDNA 2003 (Python's codec) maps away but browsers (UTS #46) keep: a host
# holding one would be compared as one domain and opened as another.
_IDNA_DEVIATIONS = frozenset("\u00df\u03c2\u200c\u200d")


def _ascii_host(host: str) -> str | None:
    """``host`` lowercased, without its final dot, in its ASCII (punycode) form; None if a
    browser could read it as another host than we do."""
    host = unicodedata.normalize("NFKC", host).lower().rstrip(".")
    if not host or "%" in host or _IDNA_DEVIATIONS & set(host):
        return None
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def link_host(url: str) -> str | None:
    """The host a mail client opens for ``url``, or None when it is not an absolute http(s)
    link. Parsed the way browsers do (tabs and line breaks dropped, a backslash read as a
    slash), so ``https://allowed.example\\@evil.example`` is evil.example here as it is there."""
    url = re.sub(r"[\t\n\r]", "", url).strip("\x00 ").replace("\\", "/")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return _ascii_host(parts.hostname or "")


def _domain_allowed(url: str, domains: list[str]) -> bool:
    host = link_host(url)
    if host is None:
        return False
    allowed = (_ascii_host(d.strip().lstrip(".")) for d in domains if d.strip())
    return any(host == d or host.endswith("." + d) for d in allowed if d)


def _link_problem(label: str, url: str, domains: list[str]) -> str:
    return _("Zone “%(zone)s” links to %(url)s; links may only go to %(domains)s.") % {
        "zone": label,
        "url": url,
        "domains": ", ".join(domains),
    }


def _printable(value) -> str:
    """A NUL byte means nothing in a message and PostgreSQL's JSON refuses it: dropped."""
    return str(value).replace("\x00", "")


def clean_values(zones: list[Zone], values: dict) -> dict:
    """Keep only known zones, with sanitised rich text; nothing else is stored."""
    names = {z.name: z for z in zones}
    cleaned = {}
    for name, value in (values or {}).items():
        zone = names.get(name)
        if zone is None:
            continue
        if zone.kind in ("text", "choice"):
            cleaned[name] = _printable(value)[:5000]
        elif zone.kind == "rich":
            cleaned[name] = sanitise_rich(_printable(value)[:20000])
        elif isinstance(value, dict):
            # Only the pick (and an image's alt text) comes from the unit; the rest is the library's.
            cleaned[name] = {
                k: _printable(value[k])[:200] for k in ("asset", "alt") if value.get(k)
            }
    return cleaned


# The keys of an image, offer or product zone's value that hold an address or an id.
_NOT_PRINTED_WORDS = frozenset({"asset", "src", "url", "image"})


def _restricted(label: str, text: str, patterns: list) -> list[str]:
    """Head office's restricted words and patterns found in ``text``, one problem each."""
    return [
        _("Zone “%(zone)s” uses “%(word)s”, which head office does not allow.")
        % {"zone": label, "word": rule[3:] if rule.startswith("re:") else rule}
        for rule, pattern in patterns
        if pattern and pattern.search(text)
    ]


def _rules_of(guardrails) -> tuple[list, list[str]]:
    """The guardrails' restricted patterns (compiled) and allowed link domains."""
    patterns = [
        (rule, _pattern(rule)) for rule in (guardrails.restricted_patterns if guardrails else [])
    ]
    return patterns, (guardrails.allowed_link_domains if guardrails else [])


def check(
    zones: list[Zone],
    values: dict,
    *,
    source: str,
    guardrails,
    assets: dict | None = None,
    channel: str = "email",
) -> list[str]:
    problems: list[str] = []
    for zone in zones:
        problems.extend(_zone_problems(zone, values.get(zone.name), zone.label, guardrails, assets))
    if guardrails and channel == "email":
        if guardrails.require_logo and not _LOGO.search(source):
            problems.append(
                _("The template has no logo ({{ brand.logo_url }}), which head office requires.")
            )
        if guardrails.require_legal_footer and "brand.legal_footer" not in source:
            problems.append(
                _(
                    "The template has no legal footer ({{ brand.legal_footer }}), which head office "
                    "requires."
                )
            )
    return problems


def zone_problems(zone: Zone, value, *, label: str, guardrails) -> list[str]:
    """What breaks the zone's rules or the guardrails in ``value`` (a cleaned value), each
    problem naming ``label``: head office's variants are checked by the same rules."""
    return _zone_problems(zone, value, label, guardrails, None)


def _zone_problems(zone: Zone, value, label: str, guardrails, assets: dict | None) -> list[str]:
    problems: list[str] = []
    patterns, domains = _rules_of(guardrails)
    if zone.kind in ("text", "rich"):
        text = rich_to_text(value) if zone.kind == "rich" and value else (value or "")
        if zone.required and not text.strip():
            problems.append(_("Zone “%(zone)s” must be filled in.") % {"zone": label})
        if zone.max_length and len(text) > zone.max_length:
            problems.append(
                _("Zone “%(zone)s” is %(length)s characters long; the limit is %(max)s.")
                % {"zone": label, "length": len(text), "max": zone.max_length}
            )
        problems.extend(_restricted(label, text, patterns))
        if zone.kind == "rich" and value and domains:
            for url in re.findall(r'href="([^"]*)"', value):
                url = html.unescape(url)
                if url.strip().lower().startswith("mailto:"):
                    continue
                if not _domain_allowed(url, domains):
                    problems.append(_link_problem(label, url, domains))
    elif zone.kind == "choice":
        if value and value not in {o.value for o in zone.options}:
            problems.append(
                _("Zone “%(zone)s”: “%(value)s” is not one of head office’s variants.")
                % {"zone": label, "value": value}
            )
    elif zone.kind in ("image", "offer", "product"):
        picked = (value or {}).get("asset")
        if zone.required and not picked:
            problems.append(_("Zone “%(zone)s” needs an item from the library.") % {"zone": label})
        asset = (assets or {}).get(picked) if picked else None
        if picked and asset is None:
            problems.append(
                _("Zone “%(zone)s” uses a library item this unit cannot see.") % {"zone": label}
            )
        elif asset is not None and asset.kind not in ZONE_KINDS[zone.kind]:
            problems.append(
                _("Zone “%(zone)s” takes %(wanted)s, not “%(name)s”.")
                % {"zone": label, "wanted": _KIND_WORDS[zone.kind](), "name": asset.name}
            )
        elif asset is not None and asset.kind == "offer" and offer_ended(asset):
            problems.append(
                _("Zone “%(zone)s”: the offer “%(name)s” ended on %(date)s.")
                % {"zone": label, "name": asset.name, "date": asset.data.get("valid_until")}
            )
        elif asset is not None and guardrails and asset.size_bytes > guardrails.max_image_kb * 1024:
            problems.append(
                _("Zone “%(zone)s”: the image weighs %(kb)s KB; the limit is %(max)s KB.")
                % {
                    "zone": label,
                    "kb": asset.size_bytes // 1024,
                    "max": guardrails.max_image_kb,
                }
            )
        # What an item prints (an offer's title, text, legal lines; an image's alt) is text
        # like a zone's: the same words are refused. Addresses and ids are not words.
        if isinstance(value, dict):
            printed = " \n".join(
                str(v) for k, v in value.items() if k not in _NOT_PRINTED_WORDS and v
            )
            problems.extend(_restricted(label, printed, patterns))
        # An offer's or product's button is a link like any other: the one the message
        # carries (the library's address, copied into the value when it was picked).
        url = value.get("url") if isinstance(value, dict) else None
        if zone.kind != "image" and url and domains and not _domain_allowed(str(url), domains):
            problems.append(_link_problem(label, str(url), domains))
    return problems


def removed_zones(zones: list[Zone], values: dict) -> list[str]:
    """Values kept for zones head office took out of the template: each one is a problem."""
    kept = {z.name for z in zones}
    return [
        _(
            "Head office removed the zone “%(zone)s”; what you wrote there is kept but no longer "
            "shown."
        )
        % {"zone": name}
        for name in sorted(set(values) - kept)
    ]
