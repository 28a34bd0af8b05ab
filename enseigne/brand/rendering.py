"""Compile an HQ email template once, then personalise it per recipient with Liquid only.

Compile (once per template version): zones → Liquid outputs; MJML → HTML with mrml (no
include loader, no remote fonts); CSS inlined with css-inline (no remote stylesheets);
the result and its plain-text alternative parsed as Liquid and cached in the process.

Render (per recipient): one Liquid pass over the compiled HTML (autoescaped) and one over
the text, with ``contact``, ``unit``, ``brand``, ``links`` and ``zones`` as *data*.
Unit-edited zone values are never template source; rich text is sanitised with nh3 and
is the only value printed unescaped.
"""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import dataclass
from functools import lru_cache

import css_inline
import mrml
import nh3
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from liquid.exceptions import LiquidError
from markupsafe import Markup

from enseigne.brand.liquid_bounds import (
    BoundedEnvironment,
    LoopFreeEnvironment,
    RenderLimitError,
    measured_at_the_end,
)
from enseigne.brand.zones import Zone, line_of, parse
from enseigne.lib.addresses import absolute_url

RICH_TAGS = {"p", "br", "strong", "em", "b", "i", "u", "ul", "ol", "li", "a"}
RICH_ATTRIBUTES = {"a": {"href", "title"}}
URL_SCHEMES = {"http", "https", "mailto"}


# The limits every render runs under (bounded filters, ranges, output, time): liquid_bounds.
HTML_ENV = BoundedEnvironment(autoescape=True)
TEXT_ENV = BoundedEnvironment(autoescape=False)
_LOOP_FREE_HTML_ENV = LoopFreeEnvironment(autoescape=True)
_LOOP_FREE_TEXT_ENV = LoopFreeEnvironment(autoescape=False)


def _env_for(source: str, *, html: bool) -> BoundedEnvironment:
    if measured_at_the_end(source):
        return _LOOP_FREE_HTML_ENV if html else _LOOP_FREE_TEXT_ENV
    return HTML_ENV if html else TEXT_ENV


_ABSOLUTE_LINK = re.compile(r"(?:https?://[^\s]+|mailto:[^\s]+)", re.IGNORECASE)


def _only_absolute_links(tag: str, attribute: str, value: str) -> str | None:
    # An e-mail has no base URL: a relative link is broken at best, a disguised scheme
    # at worst ("javas\0cript:"), so only absolute http(s) and mailto links stay.
    if attribute == "href" and not _ABSOLUTE_LINK.fullmatch(value.strip()):
        return None
    return value


def sanitise_rich(value: str) -> str:
    return nh3.clean(
        value,
        tags=RICH_TAGS,
        attributes=RICH_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
        attribute_filter=_only_absolute_links,
    )


def rich_to_text(value: str) -> str:
    return htmllib.unescape(
        nh3.clean(re.sub(r"(?i)<br\s*/?>|</p>|</li>", "\n", value), tags=set())
    ).strip()


_REMOTE_FONT = re.compile(r"<mj-font\b|@import|<link\b", re.IGNORECASE)


def _mjml_error(source: str, exc: Exception) -> ValidationError:
    message = str(exc)
    position = re.search(r"at position (\d+)", message)
    if position:
        line = line_of(source, int(position.group(1)))
        return ValidationError(
            _("line %(line)s: the MJML is not valid (%(detail)s).")
            % {"line": line, "detail": message}
        )
    return ValidationError(_("The MJML is not valid (%(detail)s).") % {"detail": message})


def html_to_text(markup: str) -> str:
    """A readable plain-text alternative, keeping the Liquid placeholders."""
    text = re.sub(r"(?is)<(head|style|script)\b.*?</\1>", "", markup)
    text = re.sub(r'(?is)<a\b[^>]*href="([^"]*)"[^>]*>(.*?)</a>', r"\2 (\1)", text)
    text = re.sub(r"(?i)<br\s*/?>|</(p|div|tr|h[1-6]|li)>", "\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = htmllib.unescape(text)
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


@dataclass(frozen=True)
class Compiled:
    html: str
    text: str
    zones: tuple[Zone, ...]


def compile_email(source: str) -> Compiled:
    """MJML with zones → inlined HTML + text, both Liquid; ValidationError names the line."""
    if _REMOTE_FONT.search(source):
        raise ValidationError(
            _(
                "Remote fonts and stylesheets are not allowed: e-mails must not load anything "
                "from elsewhere."
            )
        )
    parsed = parse(source, channel="email")
    try:
        output = mrml.to_html(
            parsed.source,
            parser_options=mrml.ParserOptions(include_loader=mrml.noop_loader()),
            render_options=mrml.RenderOptions(disable_comments=True, fonts={}),
        )
    except Exception as exc:  # mrml raises OSError/ValueError with a position
        raise _mjml_error(source, exc) from None
    inliner = css_inline.CSSInliner(
        load_remote_stylesheets=False, keep_at_rules=True, keep_style_tags=False
    )
    try:
        inlined = inliner.inline(output.content)
    except css_inline.InlineError as exc:
        raise ValidationError(
            _("The CSS could not be inlined (%(detail)s).") % {"detail": exc}
        ) from None
    text = html_to_text(inlined)
    for label, parse_part, template in (
        ("HTML", html_template, inlined),
        ("text", text_template, text),
    ):
        try:
            parse_part(template)
        except LiquidError as exc:
            raise ValidationError(
                _("Merge tags (%(part)s): %(detail)s") % {"part": label, "detail": exc}
            ) from None
    return Compiled(html=inlined, text=text, zones=tuple(parsed.zones))


# Parsed Liquid for compiled versions, keyed by content so an edit never hits a stale entry.
@lru_cache(maxsize=256)
def html_template(html: str):
    return _env_for(html, html=True).from_string(html)


@lru_cache(maxsize=256)
def text_template(text: str):
    return _env_for(text, html=False).from_string(text)


# A subject is one header line: RFC 5322 allows 998 characters; inboxes show about 60.
SUBJECT_LIMIT_CHARS = 998


def check_subject(subject: str) -> None:
    """Parse a version's subject as it will be sent (ValidationError names the subject)."""
    try:
        text_template(subject)
    except LiquidError as exc:
        raise ValidationError(_("Subject, merge tags: %(detail)s") % {"detail": exc}) from None


def render_subject(template, **data) -> str:
    """The subject on one line (a zone may hold a line break), within its limit."""
    subject = " ".join(template.render(**data).split())
    if len(subject) > SUBJECT_LIMIT_CHARS:
        raise RenderLimitError(
            _("The subject would make %(length)s characters; the limit is %(max)s.")
            % {"length": len(subject), "max": SUBJECT_LIMIT_CHARS},
            token=None,
        )
    return subject


PICTURE_KEYS = ("src", "image")


def zone_context(
    zones: tuple[Zone, ...] | list[Zone], values: dict, *, for_text: bool = False
) -> dict:
    """The ``zones`` variable: each zone's value as data (HQ default where the unit left it)."""
    context = {}
    for zone in zones:
        value = values.get(zone.name)
        if zone.kind == "choice":
            names = {o.value for o in zone.options}
            context[zone.name] = value if value in names else zone.default
        elif zone.kind == "rich":
            raw = value if value not in (None, "") else zone.default
            clean = sanitise_rich(raw)
            context[zone.name] = rich_to_text(clean) if for_text else Markup(clean)  # noqa: S704 (sanitised)
        elif zone.kind == "text":
            context[zone.name] = (
                value if value not in (None, "") else htmllib.unescape(zone.default)
            )
        else:  # image / offer / product: dicts of plain strings, escaped on output
            context[zone.name] = {
                # Pictures are kept as this server's paths: absolute with today's address.
                k: absolute_url(str(v)) if k in PICTURE_KEYS else str(v)
                for k, v in (value or {}).items()
            }
    return context


def persona_values(variants: dict | None) -> dict[str, dict]:
    """Persona public id → {zone: value}, from a version's variants (``brand.variants``)."""
    found: dict[str, dict] = {}
    for name, entries in (variants or {}).items():
        for entry in entries:
            found.setdefault(entry["persona"], {})[name] = entry["value"]
    return found


class ZoneData:
    """The ``zones`` variable of one local version, for each of its recipients: the usual
    values (the unit's, else head office's defaults) and, for each persona head office wrote
    variants for, the same with that persona's variants in their place. Prepared once (a
    handful of personas); a recipient's persona only picks one of them."""

    def __init__(
        self, zones: tuple[Zone, ...] | list[Zone], values: dict, variants: dict | None = None
    ):
        self.usual = (zone_context(zones, values), zone_context(zones, values, for_text=True))
        self.by_persona = {
            persona: (
                zone_context(zones, {**values, **varied}),
                zone_context(zones, {**values, **varied}, for_text=True),
            )
            for persona, varied in persona_values(variants).items()
        }

    @property
    def varies(self) -> bool:
        return bool(self.by_persona)

    def html(self, persona: str | None = None) -> dict:
        return self.by_persona.get(persona or "", self.usual)[0]

    def text(self, persona: str | None = None) -> dict:
        return self.by_persona.get(persona or "", self.usual)[1]


class Personaliser:
    """One compiled version with one local version's zone values, ready for many recipients.

    The zones (sanitising included, each persona's variants too) are prepared once; each
    recipient then costs one Liquid pass over the HTML and one over the text.
    """

    def __init__(self, compiled: Compiled, zones: dict | ZoneData, variants: dict | None = None):
        self.html_template, self.text_template = (
            html_template(compiled.html),
            text_template(compiled.text),
        )
        self.zones = (
            zones if isinstance(zones, ZoneData) else ZoneData(compiled.zones, zones, variants)
        )

    def html(
        self, *, contact: dict, unit: dict, brand: dict, links: dict, persona: str | None = None
    ) -> str:
        return self.html_template.render(
            contact=contact, unit=unit, brand=brand, links=links, zones=self.zones.html(persona)
        )

    def text(
        self, *, contact: dict, unit: dict, brand: dict, links: dict, persona: str | None = None
    ) -> str:
        return self.text_template.render(
            contact=contact, unit=unit, brand=brand, links=links, zones=self.zones.text(persona)
        )

    def render(self, **data) -> tuple[str, str]:
        return self.html(**data), self.text(**data)


def render(
    compiled: Compiled, *, zones: dict, contact: dict, unit: dict, brand: dict, links: dict
) -> tuple[str, str]:
    """One recipient's HTML and text (for previews; sending uses a Personaliser per batch)."""
    return Personaliser(compiled, zones).render(
        contact=contact, unit=unit, brand=brand, links=links
    )
