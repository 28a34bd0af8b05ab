"""Bounded work for any input (issue 18): uploads, Liquid renders, NUL characters.

Each hostile shape is refused with its reason, in French and English; the uploads and
renders that are allowed stay under the bounds stated here (and in README):

- an upload's peak memory (RSS growth of the process) at most ``UPLOAD_PEAK_BYTES`` and
  its CPU at most ``UPLOAD_CPU_SECONDS``, measured in a fresh process each;
- a render's peak memory (tracemalloc) at most ``RENDER_PEAK_BYTES`` and its CPU at most
  ``RENDER_CPU_SECONDS``, whatever the template.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation
from liquid.exceptions import ResourceLimitError
from PIL import Image

from enseigne.brand import images, services
from enseigne.brand.liquid_bounds import (
    ITEMS_LIMIT,
    OUTPUT_LIMIT_CHARS,
    VALUE_LIMIT_CHARS,
    RenderLimitError,
)
from enseigne.brand.rendering import SUBJECT_LIMIT_CHARS, render_subject, text_template
from tests import hostile_files as hostile

# The largest upload allowed decodes to images.MAX_DECODED_BYTES (160 MB); decoding,
# flattening and the renditions hold under two copies of it at worst (measured: 217 MB for
# a 40-megapixel PNG, 275 MB for a 40-megapixel JPEG, 55 MB for 100 frames of 600 × 600;
# 360 and 595 MB before the still path stopped copying). Refused files stay near zero.
UPLOAD_PEAK_BYTES = 2 * images.MAX_DECODED_BYTES
UPLOAD_REFUSED_PEAK_BYTES = 16 * 1024 * 1024
UPLOAD_CPU_SECONDS = 8.0  # measured 1.1-1.3 s for the largest stills on a busy 2-core machine
UPLOAD_REFUSED_CPU_SECONDS = 0.5
# Renders: one filter result is at most VALUE_LIMIT_CHARS and the output at most
# OUTPUT_LIMIT_CHARS (2 million characters, 8 MB as Python str at worst, plus the buffer).
RENDER_PEAK_BYTES = 64 * 1024 * 1024
RENDER_CPU_SECONDS = 1.5


# ---------------------------------------------------------------- uploads


def _refusal(data: bytes, name: str) -> str:
    with pytest.raises(ValidationError) as refused:
        images.process(data, name)
    return " ".join(refused.value.messages)


HOSTILE_UPLOADS = {
    # the bomb: 120 frames of 2000 × 2000 in under 0.5 MB (1.9 GB decoded)
    "gif-120-frames-2000px": (lambda: hostile.gif(120, 2000, 2000), "anim.gif", "120 frames"),
    "gif-12-frames-2000px": (lambda: hostile.gif(12, 2000, 2000), "anim.gif", "192 MB"),
    "gif-100000-frames": (lambda: hostile.gif(100_000, 1, 1), "tiny.gif", "500 frames"),
    # the screen says 10 × 10; each frame says 5000 × 5000 and the decoder grows the canvas
    "gif-frames-larger-than-screen": (
        lambda: hostile.gif(3, 5000, 5000, screen=(10, 10)),
        "small.gif",
        "5000 × 5000",
    ),
    "gif-one-frame-20000px": (lambda: hostile.gif(1, 8000, 8000), "big.gif", "8000 × 8000"),
    "png-100-megapixels": (lambda: hostile.png(10_000, 10_000), "bomb.png", "10000 × 10000"),
    "png-header-60000px": (lambda: hostile.png(60_000, 60_000, rows=0), "tiny.png", "40"),
    "webp-header-16384px": (lambda: hostile.webp_header(16_384, 16_384), "x.webp", "40"),
    "jpeg-header-65000px": (lambda: hostile.jpeg_header(65_000, 65_000), "x.jpg", "40"),
    "tiff-header-100000px": (lambda: hostile.tiff_header(100_000, 100_000), "x.tif", "PNG, JPEG"),
    "png-truncated": (lambda: hostile.png(2000, 2000)[:3000], "cut.png", "damaged"),
    "gif-truncated": (lambda: hostile.gif(5, 300, 300)[:2000], "cut.gif", "damaged"),
    "jpeg-truncated": (lambda: hostile.real("JPEG", (800, 600))[:400], "cut.jpg", "damaged"),
    "gif-header-only": (lambda: hostile.gif(1, 10, 10)[:13], "empty.gif", "damaged"),
    # the extension lies: the content decides, and a bomb is a bomb whatever its name
    "gif-bomb-named-png": (lambda: hostile.gif(120, 2000, 2000), "photo.png", "120 frames"),
    "png-bomb-named-jpg": (lambda: hostile.png(10_000, 10_000), "photo.jpg", "10000 × 10000"),
    "svg-named-png": (
        lambda: b"<svg xmlns='http://www.w3.org/2000/svg'><script>x</script></svg>",
        "logo.png",
        "SVG",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_UPLOADS))
def test_a_hostile_upload_is_refused_with_its_reason_before_decoding(case):
    make, name, reason = HOSTILE_UPLOADS[case]
    data = make()
    start = time.process_time()
    with translation.override("en"):
        message = _refusal(data, name)
    assert time.process_time() - start < UPLOAD_REFUSED_CPU_SECONDS
    assert name in message and reason in message, message


def test_upload_refusals_are_translated():
    bomb = hostile.gif(120, 2000, 2000)
    with translation.override("fr"):
        message = _refusal(bomb, "anim.gif")
    assert message.startswith("anim.gif est une animation de 120 images de 2000 × 2000 pixels")
    with translation.override("fr"):
        message = _refusal(hostile.png(60_000, 60_000, rows=0), "x.png")
    assert "mégapixels" in message


def test_gif_extent_reads_frames_and_canvas_without_decoding():
    assert images.gif_extent(hostile.gif(7, 30, 20), stop_after=500) == (7, 30, 20)
    assert images.gif_extent(hostile.gif(3, 50, 40, screen=(10, 10)), stop_after=500) == (
        3,
        50,
        40,
    )
    assert images.gif_extent(hostile.gif(900, 1, 1), stop_after=500)[0] == 501
    assert images.gif_extent(b"GIF89a", stop_after=500) == (0, 0, 0)


def test_an_allowed_animation_is_kept_whole_and_frames_are_streamed():
    frames = [Image.new("RGB", (200, 100), (i * 20, 0, 0)) for i in range(12)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    processed = images.process(out.getvalue(), "anim.gif")
    with Image.open(io.BytesIO(processed.original)) as again:
        assert (again.format, again.n_frames, again.size) == ("GIF", 12, (200, 100))
    assert (processed.email_ext, processed.width, processed.height) == ("gif", 200, 100)


def test_the_bomb_through_the_upload_page_answers_the_reason(client, world, settings, tmp_path):
    from enseigne.brand.models import Asset
    from tests.factories import PASSWORD

    settings.MEDIA_ROOT = tmp_path
    assert client.login(username=world.manager_a.email, password=PASSWORD)
    bomb = io.BytesIO(hostile.gif(12, 2000, 2000))
    bomb.name = "promo.gif"
    response = client.post(
        "/brand/assets/",
        {"owner": f"own:{world.unit_a.public_id}", "kind": "image", "file": bomb},
        HTTP_ACCEPT="application/json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 422
    assert "promo.gif is an animation of 12 frames" in " ".join(response.json()["errors"])
    assert Asset.objects.count() == 0


_PROBE = """
import gc, json, sys, time
import django
django.setup()
from django.core.exceptions import ValidationError
from enseigne.brand import images

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

results = {}
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    gc.collect()
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # resets the peak RSS (VmHWM) to the current RSS
    base = status("VmRSS")
    start = time.process_time()
    try:
        images.process(data, "upload")
        outcome = "accepted"
    except ValidationError:
        outcome = "refused"
    cpu = time.process_time() - start
    results[path] = {"outcome": outcome, "cpu": cpu, "peak": status("VmHWM") - base}
print(json.dumps(results))
"""


def _measure_uploads(paths: list[Path]) -> dict:
    """Each upload processed in one fresh process, the peak RSS reset before each (Linux
    ``clear_refs``): its RSS growth and CPU time. The child's address space is capped, so
    a regression fails the test instead of exhausting the machine."""

    def cap():
        import resource

        cap_bytes = 4 * 1024**3
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))

    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", _PROBE, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
        preexec_fn=cap,  # noqa: PLW1509 - single-threaded test runner
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _distinct_frames_gif(frames: int, size: tuple[int, int]) -> bytes:
    # Every frame differs everywhere, so the GIF writer keeps every frame whole.
    shots = [Image.new("P", size, i % 256) for i in range(frames)]
    for shot in shots:
        shot.putpalette([c for i in range(256) for c in (i, 255 - i, (i * 7) % 256)])
    out = io.BytesIO()
    shots[0].save(out, "GIF", save_all=True, append_images=shots[1:], duration=50, loop=0)
    return out.getvalue()


def test_uploads_stay_within_the_stated_memory_and_cpu_bounds(tmp_path):
    cases = {
        # the largest still allowed (39.6 megapixels), and the largest animation
        "largest-still.png": (hostile.png(6000, 6600), "accepted", UPLOAD_PEAK_BYTES),
        "largest-still.jpg": (
            hostile.real("JPEG", (6000, 6600)),
            "accepted",
            UPLOAD_PEAK_BYTES,
        ),
        "largest-animation.gif": (
            _distinct_frames_gif(100, (600, 600)),
            "accepted",
            UPLOAD_PEAK_BYTES,
        ),
        "bomb.gif": (hostile.gif(120, 2000, 2000), "refused", UPLOAD_REFUSED_PEAK_BYTES),
        "bomb-named.jpg": (hostile.gif(60, 3000, 3000), "refused", UPLOAD_REFUSED_PEAK_BYTES),
        "bomb.png": (hostile.png(10_000, 10_000), "refused", UPLOAD_REFUSED_PEAK_BYTES),
    }
    paths = []
    for name, (data, _outcome, _peak) in cases.items():
        paths.append(tmp_path / name)
        paths[-1].write_bytes(data)
    measured = _measure_uploads(paths)
    for path in paths:
        _data, outcome, peak = cases[path.name]
        result = measured[str(path)]
        cpu = UPLOAD_CPU_SECONDS if outcome == "accepted" else UPLOAD_REFUSED_CPU_SECONDS
        assert result["outcome"] == outcome, (path.name, result)
        assert result["peak"] <= peak, (path.name, result)
        assert result["cpu"] <= cpu, (path.name, result)


# ---------------------------------------------------------------- Liquid


def _render(source: str, **data) -> str:
    return text_template(source).render(**data)


def _refused_render(source: str, **data) -> str:
    tracemalloc.start()
    start = time.process_time()
    try:
        with pytest.raises(ResourceLimitError) as refused:
            _render(source, **data)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.process_time() - start < RENDER_CPU_SECONDS
    assert peak < RENDER_PEAK_BYTES, peak
    return str(refused.value).splitlines()[0]


_TEN = "'aaaaaaaaaa'"
_GROW = " | replace: 'a', 'aaaaaaaaaa'"
_BIG = "x" * 19_000  # fits the local namespace (20,000), so it can be assigned
HOSTILE_TEMPLATES = {
    # string-growing filters: each step multiplies (replace) or adds (append, prepend)
    "replace-chain-7": ("{{ " + _TEN + _GROW * 7 + " }}", "replace"),
    "replace-chain-in-a-loop": (
        "{% for i in (1..100) %}{{ " + _TEN + _GROW * 4 + " }}{% endfor %}",
        "2,000,000",
    ),
    "replace-empty-needle": (
        "{% assign a = '" + "ab" * 5000 + "' %}{{ a | replace: '', a }}",
        "replace",
    ),
    "replace-first-growth": ("{{ b | replace_first: 'x', b }}", "replace_first"),
    "replace-last-growth": ("{{ b | replace_last: 'x', b }}", "replace_last"),
    "append-chain": (
        "{% assign b = '" + _BIG + "' %}{{ b" + " | append: b" * 300 + " }}",
        "append",
    ),
    "prepend-chain": (
        "{% assign b = '" + _BIG + "' %}{{ b" + " | prepend: b" * 300 + " }}",
        "prepend",
    ),
    "repeat-by-split-join": (
        "{% assign b = '" + _BIG + "' %}{{ b | split: '' | join: b }}",
        "",
    ),
    "join-long-separator": ("{% assign b = '" + _BIG + "' %}{{ (1..5000) | join: b }}", "join"),
    "many-outputs-without-loops": (("{{ " + _TEN + _GROW * 4 + " }}") * 300, "2,000,000"),
    # range literals fed to filters
    "range-join": ("{{ (1..3000000) | join: ',' }}", "3,000,000"),
    "range-reverse": ("{{ (1..50000000) | reverse | first }}", "50,000,000"),
    "range-sort": ("{{ (1..20000) | sort | size }}", "20,000"),
    "range-map": ("{{ (1..9000000) | map: 'x' | size }}", "9,000,000"),
    "range-concat": ("{% assign a = '1,2' | split: ',' %}{{ (1..5000000) | concat: a }}", ""),
    "split-into-many": ("{% assign b = '" + _BIG + "' %}{{ b | split: '' | size }}", "items"),
    # loops: nested ones multiply; the output limit holds inside them
    "nested-loops": (
        "{% for i in (1..1000) %}{% for j in (1..1000) %}x{% endfor %}{% endfor %}",
        "loop",
    ),
    "loop-of-long-values": (
        "{% assign b = '" + _BIG + "' %}{% for i in (1..999) %}{{ b }}{% endfor %}",
        "2,000,000",
    ),
    # numbers: a chain of times grows digits until Python cannot print the number
    "times-chain": ("{{ 10" + " | times: 100000000000000000000" * 300 + " }}", "number"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TEMPLATES))
def test_a_hostile_template_is_refused_within_the_render_bounds(case):
    source, reason = HOSTILE_TEMPLATES[case]
    data = {"b": "x" * 90_000}
    with translation.override("en"):
        message = _refused_render(source, **data)
    assert reason in message, message


def test_the_python_liquid_limits_are_refused_too():
    from liquid.exceptions import LocalNamespaceLimitError, LoopIterationLimitError

    with pytest.raises(LoopIterationLimitError):
        _render("{% for i in (1..100) %}{% for j in (1..100) %}{% endfor %}{% endfor %}")
    with pytest.raises(LocalNamespaceLimitError):
        _render("{% assign a = b %}", b="x" * 30_000)
    with pytest.raises(LocalNamespaceLimitError):  # capture doubling
        _render("{% assign a = 'xxxxxxxxxx' %}" + "{% capture a %}{{a}}{{a}}{% endcapture %}" * 30)


def test_legitimate_templates_render_within_the_bounds():
    source = (
        "{% for i in (1..200) %}{{ contact.first_name | capitalize | append: ' ' "
        "| replace: 'a', 'A' }}{{ i | plus: 1 }}{% endfor %}"
        "{{ (1..10000) | join: ',' | size }} {{ 'a,b,c' | split: ',' | join: ' / ' }}"
    )
    tracemalloc.start()
    start = time.process_time()
    out = _render(source, contact={"first_name": "camille"})
    cpu = time.process_time() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    joined = len(",".join(str(i) for i in range(1, 10_001)))
    assert out.startswith("CAmille 2CAmille 3") and out.endswith(f"{joined} a / b / c")
    assert cpu < RENDER_CPU_SECONDS and peak < RENDER_PEAK_BYTES
    assert ITEMS_LIMIT == 10_000 and VALUE_LIMIT_CHARS == 100_000
    assert OUTPUT_LIMIT_CHARS == 2_000_000


def test_a_render_has_a_time_budget(monkeypatch):
    from enseigne.brand import liquid_bounds

    monkeypatch.setattr(liquid_bounds, "RENDER_TIME_LIMIT_SECONDS", 0.05)
    # Four replacements a round, about 0.2 s of work on a fast machine (one a round was
    # 0.05–0.06 s: too close to the budget to fail reliably).
    source = (
        "{% for i in (1..1000) %}{{ b | replace: 'x', 'y' | replace: 'y', 'x' "
        "| replace: 'x', 'y' | replace: 'y', 'x' | size }}{% endfor %}"
    )
    with translation.override("en"), pytest.raises(RenderLimitError, match="0.05 seconds"):
        _render(source, b="x" * 90_000)
    with translation.override("fr"), pytest.raises(RenderLimitError, match="plus de 0.05 s"):
        _render(source, b="x" * 90_000)


def test_limit_errors_are_translated():
    with translation.override("fr"):
        message = _refused_render("{{ (1..3000000) | join: ',' }}")
    assert message.startswith("Une plage contient 3") and "10" in message
    with translation.override("en"):
        assert "3,000,000 items; the limit is 10,000" in _refused_render(
            "{{ (1..3000000) | join: ',' }}"
        )


def test_a_huge_subject_is_refused_and_a_broken_one_is_not_saved(world):
    loop = "{% for i in (1..500) %}{{ zones.headline }}{% endfor %}"
    with translation.override("en"), pytest.raises(RenderLimitError, match="subject"):
        render_subject(text_template(loop), zones={"headline": "Soldes d'hiver"})
    grown = "{{ zones.headline" + " | append: zones.headline" * 100 + " }}"
    with translation.override("en"), pytest.raises(RenderLimitError, match="998"):
        render_subject(text_template(grown), zones={"headline": "Soldes d'hiver"})
    assert render_subject(text_template("Bonjour\n{{ x }} !"), x="Camille") == "Bonjour Camille !"
    assert SUBJECT_LIMIT_CHARS == 998
    with translation.override("en"), pytest.raises(ValidationError, match="Subject"):
        services.template_create(
            actor=world.hq_marketer,
            shared_with=world.root,
            channel="email",
            name="Cassé",
            source=_SOURCE,
            subject="Bonjour {{ contact.first_name ",
        )
    # a subject that would be too long with the zones' defaults is refused when saved
    for subject in (
        "{% for i in (1..200) %}{{ zones.headline }}{% endfor %}",
        "{{ zones.headline" + " | append: zones.headline" * 200 + " }}",
        "{{ zones.headline | replace: 'o', 'ooooooooooooooooooooooooooooooooooooooooooooo' }}" * 12,
    ):
        with translation.override("en"), pytest.raises(ValidationError, match="subject would"):
            services.template_create(
                actor=world.hq_marketer,
                shared_with=world.root,
                channel="email",
                name="Long",
                source=_SOURCE.replace("MARK", ""),
                subject=subject,
            )


_SOURCE = """<mjml><mj-body><mj-section><mj-column>
<mj-text><ens-zone name="headline" kind="text" max="60" label="Titre">Bonjour</ens-zone></mj-text>
<mj-text>FOOTER {{ unit.name }} MARK</mj-text>
</mj-column></mj-section></mj-body></mjml>"""


def test_a_template_that_breaks_a_limit_is_refused_when_saved(world):
    for bad in (
        "{{ 'aaaaaaaaaa'" + _GROW * 6 + " }}",
        "{{ (1..3000000) | join: ',' }}",
        "{% for i in (1..999) %}{{ 'a' | append: 'aaaaaaaaa' " + _GROW * 3 + " }}{% endfor %}",
    ):
        with translation.override("en"), pytest.raises(ValidationError, match="cannot be rendered"):
            services.template_create(
                actor=world.hq_marketer,
                shared_with=world.root,
                channel="email",
                name="Trop",
                source=_SOURCE.replace("MARK", bad),
            )


def test_a_preview_that_breaks_a_limit_answers_the_reason(client, world):
    from tests.factories import PASSWORD

    grow = "{{ zones.headline | replace: 'a', zones.headline | replace: 'a', zones.headline }}"
    template = services.template_create(
        actor=world.hq_marketer,
        shared_with=world.root,
        channel="email",
        name="Bienvenue",
        source=_SOURCE.replace("MARK", grow),  # the default "Bonjour" has no "a": saved
    )
    assert client.login(username=world.manager_a.email, password=PASSWORD)
    response = client.post(
        f"/brand/templates/{template.public_id}/preview/",
        {"unit": str(world.unit_a.public_id), "zone_headline": "a" * 60},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    assert "would make 216,000 characters" in response.content.decode()
    assert client.login(username=world.hq_marketer.email, password=PASSWORD)
    response = client.post(
        "/brand/templates/preview/",
        {"channel": "email", "source": _SOURCE.replace("MARK", "{{ (1..99999) | join }}")},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    assert "A range holds 99,999 items" in response.content.decode()


# ---------------------------------------------------------------- NUL characters


def _bearer(user) -> dict:
    from enseigne.network.tokens import token_create

    _, key = token_create(user=user)
    return {"HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def email_template(world):
    return services.template_create(
        actor=world.hq_marketer,
        shared_with=world.root,
        channel="email",
        name="Bienvenue",
        source=_SOURCE.replace("MARK", ""),
    )


def _api_calls(world, template):
    unit = str(world.unit_a.public_id)
    return [
        # (method, url, JSON body, the field the refusal names)
        ("post", "/api/v1/contacts", {"unit": unit, "first_name": "Cam\x00ille"}, "first_name"),
        ("post", "/api/v1/contacts", {"unit": unit, "email": "a\x00@example.com"}, "email"),
        ("post", "/api/v1/contacts", {"unit": unit, "tags": ["vip", "x\x00"]}, "tags[1]"),
        (
            "post",
            "/api/v1/contacts",
            {"unit": unit, "email": "a@example.com", "attributes": {"size": "M\x00"}},
            "attributes.size",
        ),
        (
            "post",
            "/api/v1/local-versions",
            {"template": str(template.public_id), "unit": unit, "values": {"headline": "S\x00"}},
            "values.headline",
        ),
        (
            "post",
            "/api/v1/local-versions",
            {"template": str(template.public_id), "unit": unit, "values": {"head\x00": "S"}},
            "values.head\\0",
        ),
        (
            "post",
            "/api/v1/local-versions",
            {"template": str(template.public_id), "unit": unit, "name": "\x00", "values": {}},
            "name",
        ),
        (
            "post",
            f"/api/v1/templates/{template.public_id}/preview",
            {"unit": unit, "values": {"headline": "\x00"}},
            "values.headline",
        ),
        (
            "post",
            "/api/v1/conversions",
            {"order_id": "LYON-\x00", "unit": unit, "amount": "10.00"},
            "order_id",
        ),
    ]


def test_a_nul_in_any_json_body_is_refused_naming_the_field(client, world, email_template):
    from enseigne.brand.models import LocalVersion
    from enseigne.contacts.models import Contact

    calls = _api_calls(world, email_template)
    assert len(calls) >= 9
    for method, url, body, field in calls:
        response = getattr(client, method)(
            url, json.dumps(body), content_type="application/json", **_bearer(world.manager_a)
        )
        assert response.status_code == 422, (url, body, response.content[:300])
        detail = response.json()["error"]["fields"]
        assert list(detail) == [field], (url, detail)
        assert "contains a NUL character" in detail[field][0]
    assert Contact.objects.count() == 0 and LocalVersion.objects.count() == 0


def test_a_nul_in_a_patch_or_a_query_string_is_refused(client, world):
    from tests.factories import ContactFactory

    contact = ContactFactory(unit=world.unit_a, first_name="Camille")
    response = client.patch(
        f"/api/v1/contacts/{contact.public_id}",
        json.dumps({"last_name": "Mar\x00tin"}),
        content_type="application/json",
        **_bearer(world.manager_a),
    )
    assert response.status_code == 422 and list(response.json()["error"]["fields"]) == ["last_name"]
    response = client.patch(
        f"/api/v1/contacts/{contact.public_id}",
        json.dumps({"last_name": "Mar\x00tin"}),
        content_type="application/merge-patch+json",
        **_bearer(world.manager_a),
    )
    assert response.status_code == 422 and list(response.json()["error"]["fields"]) == ["last_name"]
    contact.refresh_from_db()
    assert contact.last_name != "Mar\x00tin"
    for url in ("/api/v1/contacts?q=%00", "/api/v1/contacts?tag=vip%00", "/api/v1/contacts?%00=1"):
        response = client.get(url, **_bearer(world.manager_a))
        assert response.status_code == 422, url
    # a JSON escape that is not a NUL (a backslash, then "u0000") is text like any other
    response = client.patch(
        f"/api/v1/contacts/{contact.public_id}",
        json.dumps({"last_name": "\\u0000"}),
        content_type="application/json",
        **_bearer(world.manager_a),
    )
    assert response.status_code == 200 and response.json()["last_name"] == "\\u0000"


def test_a_nul_in_a_web_form_or_query_is_refused_naming_the_field(client, world, email_template):
    from enseigne.brand.models import LocalVersion
    from enseigne.contacts.models import Contact
    from tests.factories import PASSWORD

    assert client.login(username=world.manager_a.email, password=PASSWORD)
    unit = str(world.unit_a.public_id)
    posts = [
        (
            f"/brand/templates/{email_template.public_id}/personalise/",
            {"unit": unit, "zone_headline": "Sol\x00des"},
            "zone_headline",
        ),
        (
            f"/brand/templates/{email_template.public_id}/preview/",
            {"unit": unit, "zone_headline": "\x00"},
            "zone_headline",
        ),
        ("/contacts/new/", {"unit": unit, "first_name": "A\x00", "email": "a@b.fr"}, "first_name"),
        ("/contacts/new/", {"unit": unit, "email": "a@b.fr", "note\x00": "x"}, "note\\0"),
    ]
    for url, data, field in posts:
        response = client.post(url, data, HTTP_ACCEPT_LANGUAGE="en")
        assert response.status_code == 400, (url, response.status_code)
        assert f"“{field}” contains a NUL character" in response.content.decode()
    response = client.get("/contacts/?q=Cam%00", HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 400
    assert "« q » contient un caractère NUL" in response.content.decode()
    assert Contact.objects.count() == 0 and LocalVersion.objects.count() == 0


def test_file_contents_and_raw_report_bodies_are_not_text(client, world, settings, tmp_path):
    from enseigne.brand.models import Asset
    from enseigne.lib.textinput import refuse_nul
    from enseigne.tracking.views import inbound_bounce
    from tests.factories import PASSWORD

    settings.MEDIA_ROOT = tmp_path
    assert client.login(username=world.manager_a.email, password=PASSWORD)
    png = hostile.real("PNG")
    assert b"\x00" in png
    upload = io.BytesIO(png)
    upload.name = "logo.png"
    response = client.post(
        "/brand/assets/",
        {"owner": f"own:{world.unit_a.public_id}", "kind": "image", "file": upload},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 201 and Asset.objects.count() == 1
    assert inbound_bounce.accepts_nul_bytes  # an MTA's raw message, read by bounces.process
    assert refuse_nul("Camille", "first_name") == "Camille"
    with translation.override("en"), pytest.raises(ValidationError) as refused:
        refuse_nul("Cam\x00ille", "first_name")
    assert refused.value.message_dict == {
        "first_name": [
            "“first_name” contains a NUL character (\\0), which no text may hold: remove it "
            "and send again."
        ]
    }


def test_a_provider_webhook_still_reads_its_body_and_its_nul_is_refused(client, world):
    from enseigne.lib.signing import webhook_key

    url = f"/hooks/sms/{webhook_key('sms')}/"
    # multipart (the test client's default): the middleware reads the form, the view the body
    response = client.post(url, {"from": "+33612345678", "text": "STOP\x00"})
    assert response.status_code == 400 and "“text”" in response.content.decode()
    response = client.post(url, {"from": "", "text": "Bonjour"})
    assert response.status_code == 400 and "No sender" in response.content.decode()
