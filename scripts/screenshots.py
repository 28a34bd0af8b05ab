"""Take the README screenshots from a running demo (`./dev demo`) with Debian's Chromium.

.venv/bin/python scripts/screenshots.py --url http://127.0.0.1:8000
"""

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PASSWORD = "enseigne-demo"  # noqa: S105 (the documented demo password)


def login(page, url, email):
    page.goto(f"{url}/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
        page = context.new_page()
        login(page, args.url, "siege@maison-lumiere.test")
        page.goto(f"{args.url}/hq/")
        page.screenshot(path=str(OUT / "hq-network.png"))
        page.goto(f"{args.url}/hq/roles/")
        page.screenshot(path=str(OUT / "roles.png"))
        context.clear_cookies()
        login(page, args.url, "lyon@maison-lumiere.test")
        page.screenshot(path=str(OUT / "unit-home.png"))
        page.goto(f"{args.url}/contacts/")
        page.screenshot(path=str(OUT / "contacts.png"))
        page.goto(f"{args.url}/segments/")
        page.click("text=Clients fidèles joignables par email")
        page.wait_for_selector("#segment-count")
        page.screenshot(path=str(OUT / "segment-builder.png"))
        page.goto(f"{args.url}/brand/templates/")
        page.click("text=Noël à Lyon")
        page.wait_for_timeout(1500)  # the live preview posts into its sandboxed iframe
        page.screenshot(path=str(OUT / "personalise.png"))
        page.locator("[data-preview-width=mobile]").click()
        page.wait_for_timeout(400)
        page.screenshot(path=str(OUT / "personalise-mobile.png"))
        page.goto(f"{args.url}/campaigns/")
        page.screenshot(path=str(OUT / "campaigns-unit.png"))
        page.goto(f"{args.url}/campaigns/calendar/")
        page.wait_for_selector(".fc-event")
        page.screenshot(path=str(OUT / "calendar.png"))
        page.goto(f"{args.url}/campaigns/rules/")
        page.screenshot(path=str(OUT / "sending-rules-unit.png"), full_page=True)
        context.clear_cookies()
        login(page, args.url, "marketing@maison-lumiere.test")
        page.goto(f"{args.url}/brand/assets/")
        page.screenshot(path=str(OUT / "asset-library.png"))
        # The national campaign with its kept audience figures (the worker counts them).
        page.goto(f"{args.url}/campaigns/?status=scheduled")
        page.click("text=Les fêtes s'illuminent")
        page.wait_for_selector("text=le recevront", timeout=90_000)
        page.screenshot(path=str(OUT / "campaign-national.png"), full_page=True)
        context.clear_cookies()
        login(page, args.url, "siege@maison-lumiere.test")
        page.goto(f"{args.url}/campaigns/rules/")
        page.screenshot(path=str(OUT / "sending-rules.png"), full_page=True)
        # Results: the network ranked by SMS click rate, a national campaign's report.
        page.goto(f"{args.url}/results/?days=365&kpi=sms_click_rate")
        page.screenshot(path=str(OUT / "results-network.png"))
        page.goto(f"{args.url}/campaigns/?status=finished")
        page.click("text=Black Friday")
        page.click("#report-link")
        page.wait_for_timeout(800)  # the timeline chart draws after load
        page.screenshot(path=str(OUT / "campaign-report.png"), full_page=True)
        context.clear_cookies()
        login(page, args.url, "lyon@maison-lumiere.test")
        page.goto(f"{args.url}/results/")
        page.wait_for_timeout(800)
        page.screenshot(path=str(OUT / "results-unit.png"), full_page=True)
        page.goto(f"{args.url}/gallery/")
        page.screenshot(path=str(OUT / "gallery.png"))
        browser.close()


if __name__ == "__main__":
    main()
