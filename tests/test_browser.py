"""The real UI in Debian's Chromium: a unit manager imports a CSV and reads the report."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from enseigne.contacts.models import Contact
from enseigne.lib.rowsecurity import ALL, db_scope
from tests.factories import PASSWORD, build_world

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

pytestmark = pytest.mark.browser


@pytest.fixture
def browser_page():
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test
    # makes around it are ordinary synchronous ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    assert Path(CHROMIUM).exists(), "Debian's chromium is required (./dev test installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page(locale="fr-FR", viewport={"width": 1280, "height": 900})
        yield page
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def test_unit_manager_imports_a_csv_and_sees_the_row_report(live_server, transactional_db, browser_page, tmp_path):
    world = build_world()
    page = browser_page
    csv_file = tmp_path / "clients-salon.csv"
    csv_file.write_text(
        "Prénom;Nom;Email;Mobile\n"
        "Léa;Martin;lea.martin@example.com;06 12 34 56 78\n"
        "Hugo;Bernard;hugo@;\n"
        "Inès;Petit;ines.petit@example.com;\n",
        encoding="utf-8",
    )
    page.goto(f"{live_server.url}/login/")
    expect(page.get_by_role("heading", name="Connexion à Enseigne")).to_be_visible()
    page.get_by_label("Email").fill(world.manager_a.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", name="Lyon")).to_be_visible()

    page.get_by_role("link", name="Importer des contacts").click()
    page.get_by_label("Fichier CSV").set_input_files(str(csv_file))
    page.get_by_role("button", name="Envoyer").click()
    expect(page.locator("select[aria-label='Email']")).to_have_value("email")
    page.locator("#c-email").check()
    page.get_by_label("Version du texte de consentement").fill("salon-2026")
    page.get_by_role("button", name="Lancer l’import").click()

    expect(page.locator("#import-status")).to_have_text("Terminé")
    expect(page.locator("#count-created")).to_have_text("2")
    expect(page.locator("#count-rejected")).to_have_text("1")
    report = page.locator("#rejections tbody tr")
    expect(report).to_have_count(1)
    expect(report.first).to_contain_text("3")
    expect(report.first).to_contain_text("Email")
    expect(report.first).to_contain_text("hugo@")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "import-report.png"), full_page=True)
    with page.expect_download() as download:
        page.locator("#download-report").click()
    content = Path(download.value.path()).read_text()
    assert content.splitlines()[1].startswith("3,Email,hugo@,")
    with db_scope(ALL):
        stored = sorted(Contact.objects.filter(unit=world.unit_a).values_list("email", "email_consent"))
    assert stored == [("ines.petit@example.com", "granted"), ("lea.martin@example.com", "granted")]
