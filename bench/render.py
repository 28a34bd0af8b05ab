"""Per-recipient personalisation of a compiled email, and the compile itself.

    .venv/bin/python bench/render.py --messages 20000

Builds an HQ template of about 40 KB of compiled HTML with 10 contact/unit merge tags
and 4 zones, compiles it once (timed: MJML → HTML → inlined CSS → Liquid parse), then
renders it for N distinct recipients on one core through ``brand.rendering.Personaliser``
(zones prepared once per local version, then one Liquid pass per part per recipient).
Baselines in the same run, both a plain python-liquid ``Environment`` (no resource
limits) on the same compiled HTML and contact data: one with the zones empty (the first
baseline this script had), one with the same zone values ours prints. The loops
alternate over 5 rounds; figures are medians.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _setup import table


def build_source() -> str:
    rows = "\n".join(
        f'<mj-section><mj-column><mj-text font-size="14px" color="#333333">Paragraphe {i} : '
        "Maison Lumière vous présente sa nouvelle collection de luminaires, textiles et objets "
        "de décoration, pensée pour des intérieurs chaleureux et lumineux toute l’année.</mj-text>"
        "</mj-column></mj-section>"
        for i in range(20)
    )
    return f"""<mjml><mj-head><mj-style>.ens-offer h3 {{ color: #a0522d; }}</mj-style></mj-head><mj-body>
<mj-section><mj-column><mj-image src="{{{{ brand.logo_url }}}}" alt="{{{{ brand.name }}}}" width="160px" />
<mj-text>Bonjour {{{{ contact.first_name | default: "à vous" }}}} {{{{ contact.last_name }}}},</mj-text>
<mj-text><h1><ens-zone name="headline" kind="text" max="80">Nos nouveautés</ens-zone></h1></mj-text>
<mj-text><ens-zone name="body" kind="rich">Un <b>texte</b> de la boutique.</ens-zone></mj-text>
<mj-text><ens-zone name="tone" kind="choice"><ens-option value="a" label="A">Bienvenue.</ens-option>
<ens-option value="b" label="B">Quel plaisir de vous revoir, {{{{ contact.first_name }}}} !</ens-option></ens-zone></mj-text>
<ens-zone name="hero" kind="image" width="600px" />
</mj-column></mj-section>
{rows}
<mj-section><mj-column><mj-text>{{{{ unit.name }}}} — {{{{ unit.address }}}} — {{{{ unit.phone }}}}
{{{{ unit.hours }}}} {{{{ brand.legal_footer }}}} <a href="{{{{ links.unsubscribe }}}}">Se désabonner</a>
</mj-text></mj-column></mj-section></mj-body></mjml>"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    args = parser.parse_args()
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from liquid import Environment

    from enseigne.brand.rendering import Personaliser, compile_email, html_template, text_template

    source = build_source()
    compile_ms = []
    for _ in range(5):
        html_template.cache_clear()
        text_template.cache_clear()
        start = time.perf_counter()
        compiled = compile_email(source)  # includes parsing both parts as Liquid
        compile_ms.append((time.perf_counter() - start) * 1000)
    unit = {
        "name": "Maison Lumière Lyon",
        "address": "12 rue de la République, 69002 Lyon",
        "phone": "04 78 00 00 00",
        "hours": "Lun–Sam 10h–19h",
    }
    brand = {
        "name": "Maison Lumière",
        "logo_url": "https://cdn.example.com/logo.png",
        "legal_footer": "ML SAS",
    }
    zones = {
        "headline": "Les soldes de Lyon",
        "body": "<p>Venez <b>samedi</b> !</p>",
        "tone": "b",
        "hero": {"src": "https://cdn.example.com/hero.jpg", "alt": "Vitrine"},
    }
    contacts = [
        {"first_name": f"Prénom{i}", "last_name": f"Nom{i}", "email": f"c{i}@example.com"}
        for i in range(args.messages)
    ]

    personaliser = Personaliser(compiled, zones)
    bare_template = Environment(autoescape=True).from_string(compiled.html)

    def ours_html(contact, links):
        personaliser.html(contact=contact, unit=unit, brand=brand, links=links)

    def ours_both(contact, links):
        personaliser.render(contact=contact, unit=unit, brand=brand, links=links)

    def bare_html(contact, links):
        bare_template.render(contact=contact, unit=unit, brand=brand, zones={}, links=links)

    same_zones = personaliser.zones.html()

    def bare_same(contact, links):
        bare_template.render(contact=contact, unit=unit, brand=brand, zones=same_zones, links=links)

    # The three loops take turns over 5 rounds and each figure is the median round, so a
    # burst of load on the shared machine does not land on one side only.
    rates: dict[str, list[float]] = {"ours": [], "both": [], "bare": [], "same": []}
    per_round = max(1, args.messages // 5)
    for _round in range(5):
        for name, fn in (
            ("ours", ours_html),
            ("bare", bare_html),
            ("same", bare_same),
            ("both", ours_both),
        ):
            start = time.perf_counter()
            for i, contact in enumerate(contacts[:per_round]):
                fn(contact, {"unsubscribe": f"https://t.example.com/u/{i}"})
            rates[name].append(per_round / (time.perf_counter() - start))
    html_only, bare, same, both = (
        statistics.median(rates[k]) for k in ("ours", "bare", "same", "both")
    )
    ratio = statistics.median(b / o for b, o in zip(rates["bare"], rates["ours"], strict=True))
    ratio_same = statistics.median(b / o for b, o in zip(rates["same"], rates["ours"], strict=True))

    merge_tags = compiled.html.count("{{")
    table(
        "Email personalisation (one core)",
        [
            ("measure", "value"),
            ("compiled HTML", f"{len(compiled.html) / 1024:.0f} KB, {merge_tags} Liquid outputs"),
            (
                "compile (MJML → inlined HTML → Liquid), median of 5",
                f"{statistics.median(compile_ms):.1f} ms",
            ),
            ("per-recipient render, HTML part, zones as data", f"{html_only:,.0f} messages/s"),
            ("baseline: bare python-liquid render of the same HTML", f"{bare:,.0f} messages/s"),
            ("ratio (bare / ours), HTML part, median of rounds", f"{ratio:.2f}×"),
            ("baseline: bare render, same zone values as ours", f"{same:,.0f} messages/s"),
            ("ratio (bare same zones / ours), median of rounds", f"{ratio_same:.2f}×"),
            ("per-recipient render, HTML + plain-text parts", f"{both:,.0f} messages/s"),
        ],
    )


if __name__ == "__main__":
    main()
