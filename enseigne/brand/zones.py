"""Zones: the parts of an HQ template a unit may fill, declared inline in the source.

HQ writes ordinary MJML (or SMS text) and marks each editable part with an
``<ens-zone>`` element::

    <mj-text><ens-zone name="headline" kind="text" max="60" label="Titre">Nos nouveautés</ens-zone></mj-text>
    <ens-zone name="hero" kind="image" width="600px" padding="0" />
    <mj-text><ens-zone name="tone" kind="choice">
        <ens-option value="classic" label="Classique">Bienvenue chez nous.</ens-option>
        <ens-option value="warm" label="Chaleureux">Quel plaisir de vous voir !</ens-option>
    </ens-zone></mj-text>

Everything outside the zones is locked. Parsing replaces each zone with a Liquid
*output of data* (``{{ zones.headline }}``): what a unit types is passed to the renderer
as a value, never spliced into template source, so ``{{ 7*7 }}`` typed into a zone is
printed as those characters.
"""

from __future__ import annotations

import dataclasses
import html
import re
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

KINDS = ("text", "rich", "image", "choice", "offer", "product")
NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_ZONE = re.compile(r"<ens-zone\b(?P<attrs>[^>]*?)(?:/>|>(?P<body>.*?)</ens-zone\s*>)", re.DOTALL)
_OPTION = re.compile(r"<ens-option\b(?P<attrs>[^>]*?)>(?P<body>.*?)</ens-option\s*>", re.DOTALL)
_ATTR = re.compile(r'([a-z][a-z0-9_-]*)\s*=\s*"([^"]*)"')


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    content: str  # HQ-written: stays template source


@dataclass(frozen=True)
class Zone:
    name: str
    kind: str
    label: str
    default: str = ""
    max_length: int | None = None
    required: bool = False
    options: tuple[Option, ...] = ()
    extra: dict = field(default_factory=dict)  # e.g. mj-image attributes for image zones
    allow_upload: bool = False

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Zone:
        return cls(**{**data, "options": tuple(Option(**o) for o in data.get("options", ()))})


@dataclass
class Parsed:
    source: str  # the template with every zone replaced by its Liquid output
    zones: list[Zone]


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _attrs(raw: str) -> dict[str, str]:
    return {k: html.unescape(v) for k, v in _ATTR.findall(raw)}


def parse(source: str, *, channel: str = "email") -> Parsed:
    """Find the zones; raise ValidationError naming the line of every problem."""
    errors: list[str] = []
    zones: list[Zone] = []
    seen: set[str] = set()
    pieces: list[str] = []
    last = 0
    for match in _ZONE.finditer(source):
        line = line_of(source, match.start())
        attrs = _attrs(match["attrs"])
        name, kind = attrs.pop("name", ""), attrs.pop("kind", "text")
        where = _("line %(line)s") % {"line": line}
        if not NAME.fullmatch(name):
            errors.append(
                _(
                    "%(where)s: a zone needs a name of lowercase letters, digits and _ (got “%(name)s”)."
                )
                % {"where": where, "name": name}
            )
            continue
        if name in seen:
            errors.append(
                _("%(where)s: two zones are called “%(name)s”.") % {"where": where, "name": name}
            )
            continue
        if kind not in KINDS or (channel == "sms" and kind not in ("text", "choice")):
            errors.append(
                _("%(where)s: “%(kind)s” is not a zone kind here.") % {"where": where, "kind": kind}
            )
            continue
        seen.add(name)
        body = (match["body"] or "").strip()
        max_length = attrs.pop("max", None)
        if max_length is not None and not max_length.isdigit():
            errors.append(_("%(where)s: max must be a number of characters.") % {"where": where})
            continue
        options = ()
        if kind == "choice":
            options = tuple(
                Option(
                    value=o_attrs.get("value", ""),
                    label=o_attrs.get("label", o_attrs.get("value", "")),
                    content=o["body"].strip(),
                )
                for o in _OPTION.finditer(body)
                for o_attrs in [_attrs(o["attrs"])]
            )
            if len(options) < 2 or any(not NAME.fullmatch(o.value) for o in options):
                errors.append(
                    _(
                        '%(where)s: a choice zone needs at least two <ens-option value="…"> variants.'
                    )
                    % {"where": where}
                )
                continue
            body = options[0].value
        zone = Zone(
            name=name,
            kind=kind,
            label=attrs.pop("label", name.replace("_", " ").capitalize()),
            default=body,
            max_length=int(max_length) if max_length else None,
            required=attrs.pop("required", "") == "true",
            allow_upload=attrs.pop("upload", "") == "true",
            options=options,
            extra=attrs,
        )
        zones.append(zone)
        pieces.append(source[last : match.start()])
        pieces.append(expand(zone, channel))
        last = match.end()
    pieces.append(source[last:])
    leftover = re.search(r"</?ens-(zone|option)\b", "".join(pieces))
    if leftover:
        errors.append(_("An <ens-zone> element is not closed properly."))
    if errors:
        raise ValidationError(errors)
    return Parsed(source="".join(pieces), zones=zones)


def expand(zone: Zone, channel: str) -> str:
    """The Liquid that prints the zone's value (data) in place of its marker."""
    ref = f"zones.{zone.name}"
    if zone.kind == "choice":
        # The unit's choice is only compared; the variants are HQ's own source.
        branches = "".join(f'{{% when "{o.value}" %}}{o.content}' for o in zone.options)
        return f"{{% case {ref} %}}{branches}{{% endcase %}}"
    if channel == "sms" or zone.kind in ("text", "rich"):
        return f"{{{{ {ref} }}}}"
    # Image, offer and product blocks are plain HTML inside one <mj-text>: the Liquid
    # conditions that leave out an empty picture or button must stay around what they
    # guard, and the MJML compiler moves anything placed between its components.
    padding = html.escape(zone.extra.get("padding", "10px 25px"))
    if zone.kind == "image":
        width = html.escape(zone.extra.get("width", "100%"))
        return (
            f'<mj-text padding="{padding}" align="center">{{% if {ref}.src %}}<img src="{{{{ {ref}.src }}}}" '
            f'alt="{{{{ {ref}.alt }}}}" style="display:block;width:100%;max-width:{width};height:auto;border:0;'
            f'margin:0 auto">{{% endif %}}</mj-text>'
        )
    return (
        f'<mj-text css-class="ens-{zone.kind}" padding="{padding}">{{% if {ref}.asset %}}'
        f'{{% if {ref}.image %}}<img src="{{{{ {ref}.image }}}}" alt="{{{{ {ref}.title }}}}" '
        f'style="display:block;width:100%;height:auto;border:0;margin:0 0 12px">{{% endif %}}'
        f'<h3 style="margin:0 0 8px">{{{{ {ref}.title }}}}</h3>'
        f"{{% if {ref}.text %}}<p>{{{{ {ref}.text }}}}</p>{{% endif %}}"
        f"{{% if {ref}.price %}}<p><strong>{{{{ {ref}.price }}}}</strong></p>{{% endif %}}"
        f'{{% if {ref}.legal %}}<p style="font-size:11px;color:#666666">{{{{ {ref}.legal }}}}</p>{{% endif %}}'
        f'{{% if {ref}.url %}}<p><a href="{{{{ {ref}.url }}}}" style="display:inline-block;padding:10px 18px;'
        f'background:#262634;color:#ffffff;text-decoration:none;border-radius:4px">{{{{ {ref}.cta }}}}</a></p>'
        f"{{% endif %}}{{% endif %}}</mj-text>"
    )


def locked_text(source: str) -> str:
    """The template with zone contents blanked: what a unit can never change (for diffs)."""
    return _ZONE.sub(lambda m: f"<ens-zone{m['attrs']}/>", source)


def with_defaults(source: str, values: dict, *, channel: str = "email") -> str:
    """``source`` with the text and rich zones' defaults replaced by ``values`` (a unit's wording
    promoted into a network template). The values stay data: HTML-escaped (rich ones were
    sanitised when saved) and with Liquid's braces neutralised, so they can never become code."""

    def literal(value: str, kind: str) -> str:
        if channel == "sms":
            return value.replace("{", "(").replace("}", ")").replace("<", "‹").replace(">", "›")
        text = value if kind == "rich" else html.escape(value, quote=False)
        return text.replace("{", "&#123;").replace("}", "&#125;")

    def replace(match: re.Match) -> str:
        attrs = _attrs(match["attrs"])
        name, kind = attrs.get("name", ""), attrs.get("kind", "text")
        value = values.get(name)
        if (
            kind not in ("text", "rich")
            or not isinstance(value, str)
            or not value.strip()
            or match["body"] is None
        ):
            return match.group(0)
        if "</ens-zone" in value.lower():
            return match.group(0)
        return f"<ens-zone{match['attrs']}>{literal(value, kind)}</ens-zone>"

    return _ZONE.sub(replace, source)
