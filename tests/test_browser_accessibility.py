"""axe-core (static/vendor/axe-core) over the main pages of each persona in Debian's Chromium:
no serious and no critical violation; the others are printed. Keyboard focus is visible and the
skip link comes first. The fast HTML check of the same pages is tests/test_accessibility.py."""

from __future__ import annotations

import pytest
from django.templatetags.static import static
from playwright.sync_api import expect

from tests.a11y_pages import LOGIN, PERSONAS, expected_status, main_pages
from tests.factories import PASSWORD, build_world
from tests.test_browser import browser_page  # noqa: F401 — the shared Chromium fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

BLOCKING = {"serious", "critical"}
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 4).map(n => n.target.join(" ")),
  }));
}"""


def _settle(page) -> None:
    # htmx panels (audience, progress) load after the page: check what a user ends up seeing.
    try:
        page.wait_for_load_state("networkidle", timeout=5000)
    except Exception:  # a page that polls never goes idle; it has loaded by then all the same
        page.wait_for_load_state("load")


def _violations(page, live_server) -> list[dict]:
    page.add_script_tag(url=live_server.url + static("vendor/axe-core/axe.min.js"))
    return page.evaluate(RUN_AXE)


def _login(page, live_server, user) -> None:
    page.context.clear_cookies()
    page.goto(f"{live_server.url}{LOGIN.url}")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("button", name="Se connecter")).to_have_count(0)


def test_axe_finds_no_serious_violation_on_the_main_pages_of_every_persona(
    live_server,
    transactional_db,
    browser_page,  # noqa: F811
):
    world = build_world()
    pages = main_pages(world)
    page = browser_page
    found: dict[str, list[dict]] = {}
    page.goto(f"{live_server.url}{LOGIN.url}")
    found[f"anonymous {LOGIN.name}"] = _violations(page, live_server)
    for persona in PERSONAS:
        _login(page, live_server, getattr(world, persona))
        for main_page in pages:
            response = page.goto(f"{live_server.url}{main_page.url}")
            assert response is not None
            assert response.status == expected_status(persona, main_page), (persona, main_page)
            _settle(page)
            found[f"{persona} {main_page.name}"] = _violations(page, live_server)
    assert len(found) == 1 + len(PERSONAS) * len(pages)
    blocking, minor = [], []
    for where, violations in found.items():
        for v in violations:
            line = f"{where}: [{v['impact']}] {v['id']} ({v['help']}) at {v['nodes']}"
            (blocking if v["impact"] in BLOCKING else minor).append(line)
    print(f"\naxe-core: {len(minor)} moderate or minor violations on {len(found)} pages")
    print("\n".join(minor))
    assert not blocking, "\n".join(blocking)


def test_the_skip_link_comes_first_and_keyboard_focus_is_visible(
    live_server,
    transactional_db,
    browser_page,  # noqa: F811
):
    world = build_world()
    pages = {p.name: p for p in main_pages(world)}
    page = browser_page
    _login(page, live_server, world.manager_a)
    page.goto(f"{live_server.url}{pages['contacts'].url}")
    _settle(page)
    page.keyboard.press("Tab")
    skip = page.locator(":focus")
    expect(skip).to_have_text("Aller au contenu")
    box = skip.bounding_box()
    assert box is not None and box["width"] > 20 and box["height"] > 10
    page.keyboard.press("Tab")  # the header's first link: a yellow ring on the dark bar
    assert page.evaluate("getComputedStyle(document.activeElement).outlineColor") == (
        "rgb(255, 218, 106)"
    )
    page.keyboard.press("Shift+Tab")
    expect(skip).to_have_text("Aller au contenu")
    page.keyboard.press("Enter")
    expect(page.locator("main#content")).to_be_focused()
    # Every element the keyboard reaches next shows a ring: links, buttons, fields alike.
    seen, checked = set(), 0
    for _ in range(40):
        page.keyboard.press("Tab")
        ring = page.evaluate(
            """() => { const e = document.activeElement, s = getComputedStyle(e);
            return {tag: e.tagName, text: (e.innerText || e.name || "").trim().slice(0, 30),
                    style: s.outlineStyle, width: parseFloat(s.outlineWidth)}; }"""
        )
        if ring["tag"] == "BODY":
            break  # past the last control of the page
        seen.add(ring["tag"])
        checked += 1
        assert ring["style"] != "none" and ring["width"] >= 2, ring
    assert {"A", "INPUT", "SELECT", "BUTTON"} <= seen, seen
    assert checked >= 6
