"""Brand templates: zones are data, rich text is sanitised, locked parts never move."""

from __future__ import annotations

import html
import itertools
import re
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from markupsafe import escape

from enseigne.brand import services
from enseigne.brand.models import LocalVersion
from enseigne.brand.previews import email_preview, sms_preview
from enseigne.brand.rendering import RICH_ATTRIBUTES, RICH_TAGS, compile_email, sanitise_rich
from enseigne.brand.sms import measure

SOURCE = """<mjml><mj-body><mj-section><mj-column>
<mj-image src="{{ brand.logo_url }}" alt="{{ brand.name }}" />
<mj-text>LOCKED-INTRO Bonjour {{ contact.first_name | default: "à vous" }},</mj-text>
<mj-text>[[H]]<ens-zone name="headline" kind="text" max="80" label="Titre">Nos nouveautés</ens-zone>[[/H]]</mj-text>
<mj-text>[[B]]<ens-zone name="body" kind="rich" label="Message">Un <b>texte</b></ens-zone>[[/B]]</mj-text>
<mj-text>[[C]]<ens-zone name="tone" kind="choice" label="Ton"><ens-option value="classic" label="Classique">Bienvenue.</ens-option><ens-option value="warm" label="Chaleureux">Quel plaisir !</ens-option></ens-zone>[[/C]]</mj-text>
<ens-zone name="hero" kind="image" label="Visuel" />
<mj-text>LOCKED-FOOTER {{ unit.name }} {{ unit.address }} {{ brand.legal_footer }} <a href="{{ links.unsubscribe }}">Se désabonner</a></mj-text>
</mj-column></mj-section></mj-body></mjml>"""


@pytest.fixture
def template(world):
    return services.template_create(
        actor=world.hq_marketer,
        shared_with=world.root,
        channel="email",
        name="Bienvenue",
        source=SOURCE,
        subject="Bienvenue",
    )


def between(markup: str, tag: str) -> str:
    return re.search(rf"\[\[{tag}\]\](.*?)\[\[/{tag}\]\]", markup, re.DOTALL).group(1)


INJECTIONS = [
    "{{ 7*7 }}",
    "{{7*7}}",
    "{% raw %}{{ 7*7 }}{% endraw %}",
    "{% raw %}",
    "{% endraw %}",
    "{{ settings.SECRET_KEY }}",
    "{{ contact }}",
    "{{ unit }}",
    "{{ zones }}",
    "{% for i in (1..100000000) %}x{% endfor %}",
    "{% include 'x' %}",
    "{% render 'x' %}",
    "{% assign a = 'x' %}{{ a }}",
    "{% capture c %}x{% endcapture %}",
    "{{ 'x' | append: 'y' }}",
    "{% if true %}yes{% endif %}",
    "{% comment %}",
    "{% endcomment %}",
    "{%- liquid echo 1 -%}",
    "{{ contact.email }}",
    "{{ links.unsubscribe }}",
    "}}{{",
    "%}{%",
    "{{",
    "}}",
    "{%",
    "%}",
    "{{ 7 | times: 7 }}",
    "{% case x %}{% when 1 %}a{% endcase %}",
    "{% cycle 'a','b' %}",
    "{% tablerow i in (1..3) %}",
    # Jinja / Django
    "{{ config }}",
    "{{ request.environ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% load static %}",
    "{% debug %}",
    "{{ self._TemplateReference__context }}",
    "{# comment #}",
    "{{ lipsum.__globals__ }}",
    # ERB / other engines
    "<%= 7*7 %>",
    "<%= `id` %>",
    "<% system('id') %>",
    "${7*7}",
    "#{7*7}",
    "*{7*7}",
    "@(7*7)",
    "[[${7*7}]]",
    "{{= 7*7 }}",
    "<#assign x=1>",
    "$(id)",
    "`id`",
    # format strings and escapes
    "{0}",
    "{0.__class__}",
    "%s%s%s%n",
    "%(secret)s",
    "{secret_key}",
    "\\x7b\\x7b 7*7 \\x7d\\x7d",
    "&#123;&#123; 7*7 &#125;&#125;",
    "<mj-raw><script>alert(1)</script></mj-raw>",
    "]]>",
    "<![CDATA[x]]>",
    "</mj-text></mj-column></mj-section><mj-section>",
    "</ens-zone>",
    '<ens-zone name="x">',
]


def test_there_are_at_least_fifty_injection_payloads():
    assert len(INJECTIONS) >= 50


@pytest.mark.parametrize("payload", INJECTIONS)
def test_template_injection_in_every_editable_zone_renders_literally(world, template, payload):
    local = services.local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        values={
            "headline": payload,
            "body": payload,
            "tone": payload,
            "hero": {"src": payload, "alt": payload},
        },
    )
    stored = LocalVersion.objects.get(pk=local.pk)
    markup, text = email_preview(stored.version, stored.values, world.unit_a)
    assert between(markup, "H") == str(escape(payload))
    assert settings.SECRET_KEY not in markup and settings.SECRET_KEY not in text
    assert "49" not in markup.replace(str(escape(payload)), "")
    # The choice zone only accepts HQ's variants: anything else falls back to the default.
    assert between(markup, "C") == "Bienvenue."
    # Rich text: whatever survives sanitising is printed as text, never evaluated.
    assert "<script" not in between(markup, "B")
    assert between(text, "H") == payload


def _xss_vectors() -> list[str]:
    handlers = [
        "onerror",
        "onload",
        "onclick",
        "onmouseover",
        "onfocus",
        "ONERROR",
        "oNlOaD",
        "onanimationstart",
    ]
    urls = [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "vbscript:msgbox(1)",
        "&#106;avascript:alert(1)",
        "javascript&colon;alert(1)",
        "DATA:image/svg+xml,<svg onload=alert(1)>",
    ]
    tags = [
        "img src=x",
        "svg",
        "body",
        "iframe",
        "video",
        "audio",
        "details open",
        "input autofocus",
        "marquee",
        "object",
        "embed",
        "math",
        "style",
        "p",
        "a href=x",
        "b",
        "select autofocus",
    ]
    vectors = [f"<{t} {h}=alert(1)>x" for t, h in itertools.product(tags, handlers)]
    vectors += [f'<a href="{u}">x</a>' for u in urls]
    vectors += [f"<a href='{u}' title=x>x</a>" for u in urls]
    vectors += [f'<img src="{u}">' for u in urls]
    vectors += [f'<iframe src="{u}"></iframe>' for u in urls]
    vectors += [f'<form action="{u}"><button>x</button></form>' for u in urls]
    vectors += [
        f"<{t}>alert(1)</{t.split()[0]}>"
        for t in (
            "script",
            "SCRIPT",
            "script type=module",
            "style",
            "noscript",
            "template",
            "xmp",
            "textarea",
        )
    ]
    vectors += [
        "<scr<script>ipt>alert(1)</scr</script>ipt>",
        "<<script>script>alert(1)<</script>/script>",
        "<!--<script>alert(1)</script>-->",
        "<svg><script>alert(1)</script></svg>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        '<p style="background:url(javascript:alert(1))">x</p>',
        "<base href=javascript:alert(1)//>",
        '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
        "<link rel=stylesheet href=x>",
        '<a href="http://ok.example" onclick="alert(1)">ok</a>',
        "<p/onclick=alert(1)>x</p>",
        "<img src=x:alert(1) onerror=eval(src)>",
        '<a href="javas\x00cript:alert(1)">x</a>',
    ]
    base = list(vectors)
    for i, vector in enumerate(
        itertools.cycle(base)
    ):  # the same again, upper-cased, after a harmless prefix
        if len(vectors) >= 520:
            break
        vectors.append(f"<p>{i}</p>" + vector.upper())
    return vectors


XSS = _xss_vectors()


class _Audit(HTMLParser):
    def __init__(self):
        super().__init__()
        self.bad: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in RICH_TAGS:
            self.bad.append(f"tag {tag}")
        for name, value in attrs:
            if name not in RICH_ATTRIBUTES.get(tag, set()) and name != "rel":
                self.bad.append(f"attribute {name} on {tag}")
            if name in ("href", "src") and value:
                scheme = value.strip().split(":", 1)[0].lower() if ":" in value else ""
                if scheme and scheme not in ("http", "https", "mailto"):
                    self.bad.append(f"url {value}")


def test_there_are_at_least_five_hundred_xss_vectors():
    assert len(XSS) >= 500


def test_rich_text_keeps_no_script_handler_or_dangerous_url():
    for vector in XSS:
        clean = sanitise_rich(vector)
        audit = _Audit()
        audit.feed(clean)
        assert audit.bad == [], (vector, clean)
        lowered = html.unescape(clean).lower()
        assert "<script" not in lowered and "javascript:" not in lowered.replace(" ", "")
        assert not re.search(r"\son\w+\s*=", clean, re.IGNORECASE), (vector, clean)


def test_stored_rich_text_is_the_sanitised_version(world, template):
    local = services.local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        values={"body": '<p onclick="x()">Hi <script>alert(1)</script></p>'},
    )
    assert LocalVersion.objects.get(pk=local.pk).values["body"] == "<p>Hi </p>"


def locked_parts(markup: str) -> str:
    for tag in ("H", "B", "C"):
        markup = re.sub(rf"\[\[{tag}\]\].*?\[\[/{tag}\]\]", f"[[{tag}]]", markup, flags=re.DOTALL)
    return re.sub(
        r'<img[^>]*src="[^"]*"[^>]*>', "<img>", markup.replace("https://x.example/y.png", "")
    )


def test_a_unit_cannot_change_a_locked_zone(world, template):
    before = (
        template.current.source,
        template.current.compiled_html,
        template.current.compiled_text,
    )
    hostile = {
        "headline": "</mj-text></mj-column>LOCKED-INTRO changed",
        "body": "</td></tr></table>x",
        "tone": "</div>",
        "hero": {"src": "https://x.example/y.png", "alt": '"><b>x</b>'},
        "__source__": "<mjml></mjml>",
        "compiled_html": "x",
        "LOCKED-FOOTER": "y",
    }
    local = services.local_version_save(
        actor=world.manager_a, unit=world.unit_a, template=template, values=hostile
    )
    template.current.refresh_from_db()
    assert (
        template.current.source,
        template.current.compiled_html,
        template.current.compiled_text,
    ) == before
    assert set(local.values) <= {"headline", "body", "tone", "hero"}
    default_markup, _ = email_preview(template.current, {}, world.unit_a)
    hostile_markup, _ = email_preview(template.current, local.values, world.unit_a)
    assert locked_parts(hostile_markup) == locked_parts(default_markup)


def test_hq_edit_propagates_to_local_versions_with_a_diff_and_flags(world, template):
    local = services.local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        values={"headline": "Les soldes de Lyon commencent samedi !"},
    )
    assert local.is_usable
    new_source = SOURCE.replace("LOCKED-INTRO", "NOUVEL-INTRO").replace('max="80"', 'max="20"')
    v2 = services.template_publish(actor=world.hq_marketer, template=template, source=new_source)
    local.refresh_from_db()
    assert (local.version, local.previous_version.number) == (v2, 1)
    assert local.values["headline"] == "Les soldes de Lyon commencent samedi !"  # kept
    assert local.status == LocalVersion.Status.FLAGGED
    assert local.problems == ["Zone “Titre” is 38 characters long; the limit is 20."]
    diff = services.locked_diff(local.previous_version, local.version)
    assert "-<mj-text>LOCKED-INTRO" in diff and "+<mj-text>NOUVEL-INTRO" in diff
    markup, _ = email_preview(local.version, local.values, world.unit_a)
    assert "NOUVEL-INTRO" in markup and "LOCKED-INTRO" not in markup


def test_guardrails_name_the_rule_that_failed(world, template):
    services.guardrails_update(
        actor=world.hq_admin,
        node=world.root,
        restricted_patterns=["gratuit", "re:\\d+ ?%"],
        allowed_link_domains=["maison-lumiere.fr"],
        require_logo=True,
        require_legal_footer=True,
    )
    local = services.local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        values={
            "headline": "Tout est GRATUIT",
            "body": '<p>-50 % <a href="https://evil.example/x">ici</a></p>',
        },
    )
    assert not local.is_usable
    assert local.problems == [
        "Zone “Titre” uses “gratuit”, which head office does not allow.",
        "Zone “Message” uses “\\d+ ?%”, which head office does not allow.",
        "Zone “Message” links to https://evil.example/x; links may only go to maison-lumiere.fr.",
    ]
    fixed = services.local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        local=local,
        values={"headline": "Tout change", "body": "<p>Venez</p>"},
    )
    assert fixed.is_usable


def test_units_and_other_units_cannot_write_what_is_not_theirs(world, template):
    with pytest.raises(PermissionDenied):
        services.template_publish(actor=world.manager_a, template=template, source=SOURCE)
    with pytest.raises(PermissionDenied):
        services.local_version_save(
            actor=world.manager_b, unit=world.unit_a, template=template, values={}
        )
    with pytest.raises(PermissionDenied):
        services.local_version_save(
            actor=world.staff_a, unit=world.unit_a, template=template, values={}
        )


def test_mjml_errors_give_the_line():
    with pytest.raises(ValidationError) as exc:
        compile_email(
            '<mjml>\n<mj-body>\n<mj-section>\n<mj-include path="/etc/passwd" />\n</mj-section></mj-body></mjml>'
        )
    assert exc.value.messages[0].startswith("line 4: the MJML is not valid")
    with pytest.raises(ValidationError) as exc:
        compile_email('<mjml><mj-body>\n\n<ens-zone name="Bad Name">x</ens-zone></mj-body></mjml>')
    assert exc.value.messages[0].startswith("line 3: a zone needs a name")
    with pytest.raises(ValidationError, match="Remote fonts"):
        compile_email(
            '<mjml><mj-head><mj-font name="x" href="https://fonts.example/x.css" /></mj-head></mjml>'
        )


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),
        ("€" * 81, "GSM-7", 2),
        ("a" * 152 + "€" + "a" * 10, "GSM-7", 2),
        ("é" * 160, "GSM-7", 1),
        ("ç" * 70, "UCS-2", 1),
        ("ç" * 71, "UCS-2", 2),
        ("a" * 66 + "😀", "UCS-2", 1),
        ("a" * 67 + "😀" + "a" * 5, "UCS-2", 2),
        ("", "GSM-7", 0),
    ],
)
def test_sms_segments(text, encoding, segments):
    length = measure(text)
    assert (length.encoding, length.segments) == (encoding, segments)


def test_sms_stop_mention_is_never_cut_and_the_limit_flags_the_version(world):
    template = services.template_create(
        actor=world.hq_marketer,
        shared_with=world.root,
        channel="sms",
        name="Promo flash",
        source='-20 % ce week-end chez {{ unit.name }} ! <ens-zone name="offer" kind="text" max="400">Offre</ens-zone>',
        sms_stop="STOP au 36111",
        max_segments=1,
    )
    local = services.local_version_save(
        actor=world.manager_a, unit=world.unit_a, template=template, values={"offer": "x" * 200}
    )
    message = sms_preview(local.version, local.values, world.unit_a)
    assert message.endswith(" STOP au 36111") and "x" * 200 in message
    assert local.problems == [
        "With its sender and STOP mention this SMS takes 2 segments; head office allows 1. "
        "Shorten your text (the STOP mention is never cut)."
    ]
    with pytest.raises(ValidationError, match="STOP mention"):
        services.template_create(
            actor=world.hq_marketer,
            shared_with=world.root,
            channel="sms",
            name="x",
            source="Promo",
            sms_stop="",
        )


def test_output_limit_stays_on_wherever_a_template_can_loop():
    from liquid.exceptions import OutputStreamLimitError

    from enseigne.brand.rendering import HTML_ENV, TEXT_ENV, html_template, text_template

    looping = "{% for i in (1..1000) %}" + "x" * 5000 + "{% endfor %}"
    for source in (
        looping,
        looping.replace("{% for", "{%- for"),
        "{% liquid for i in (1..3)\necho i\nendfor %}",
        "{% tablerow i in (1..3) %}{{ i }}{% endtablerow %}",
    ):
        assert html_template(source).env is HTML_ENV
        assert text_template(source).env is TEXT_ENV
    with pytest.raises(OutputStreamLimitError):
        html_template(looping).render()
    plain = html_template("<p>{{ contact.first_name }}</p>")
    assert plain.env is not HTML_ENV and plain.env.output_stream_limit is None
    assert plain.env.loop_iteration_limit == HTML_ENV.loop_iteration_limit
    assert plain.render(contact={"first_name": "<b>"}) == "<p>&lt;b&gt;</p>"
