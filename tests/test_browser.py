"""The real UI in Debian's Chromium: a unit manager imports a CSV and reads the report."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import expect, sync_playwright

from enseigne.contacts.models import Contact
from enseigne.lib.rowsecurity import ALL, db_scope
from tests.factories import PASSWORD, build_world

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def browser_page():
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test
    # makes around it are ordinary synchronous ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    assert Path(CHROMIUM).exists(), "Debian's chromium is required (./dev test installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(locale="fr-FR", viewport={"width": 1280, "height": 900})
        yield page
        # The test's ORM calls ran in Playwright's greenlet context, where Django keeps a
        # connection of its own: closed here, or it outlives the test database.
        connections.close_all()
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def test_unit_manager_imports_a_csv_and_sees_the_row_report(
    live_server, transactional_db, browser_page, tmp_path
):
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
    report = page.locator("#report-refused tbody tr")
    expect(report).to_have_count(1)
    expect(report.first).to_contain_text("3")
    expect(report.first).to_contain_text("Email")
    expect(report.first).to_contain_text("hugo@")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "import-report.png"), full_page=True)
    with page.expect_download() as download:
        page.locator("#download-report").click()
    content = Path(download.value.path()).read_text()
    assert content.splitlines()[1].startswith("3;Email;hugo@;")
    with db_scope(ALL):
        stored = sorted(
            Contact.objects.filter(unit=world.unit_a).values_list("email", "email_consent")
        )
    assert stored == [("ines.petit@example.com", "granted"), ("lea.martin@example.com", "granted")]


HOSTILE_TEMPLATE = """<mjml><mj-body><mj-section><mj-column>
<mj-image src="{{ brand.logo_url }}" alt="{{ brand.name }}" />
<mj-text><ens-zone name="headline" kind="text" max="200" label="Titre">Bonjour</ens-zone></mj-text>
<mj-text><ens-zone name="body" kind="rich" label="Message">Texte</ens-zone></mj-text>
<mj-text>LOCKED {{ unit.name }} {{ brand.legal_footer }}</mj-text>
</mj-column></mj-section></mj-body></mjml>"""
HOSTILE = [
    "<script>fetch('/pwned-script')</script>",
    "<img src=x onerror=\"fetch('/pwned-onerror')\">",
    "<svg onload=\"fetch('/pwned-svg')\"></svg>",
    "<a href=\"javascript:fetch('/pwned-href')\">clic</a>",
    "<iframe srcdoc=\"<script>parent.fetch('/pwned-srcdoc')</script>\"></iframe>",
    "{{ 7*7 }}{% raw %}",
]


def test_hostile_local_version_preview_runs_no_script_and_locked_parts_follow(
    live_server,
    transactional_db,
    browser_page,
):
    from enseigne.brand import services

    world = build_world()
    with db_scope(ALL):
        services.guardrails_update(
            actor=world.hq_admin,
            node=world.root,
            restricted_patterns=["gratuit"],
            require_logo=False,
        )
        template = services.template_create(
            actor=world.hq_marketer,
            shared_with=world.root,
            channel="email",
            name="Hostile",
            source=HOSTILE_TEMPLATE,
        )
        local = services.local_version_save(
            actor=world.manager_a,
            unit=world.unit_a,
            template=template,
            values={"headline": " ".join(HOSTILE), "body": " ".join(HOSTILE)},
        )
        services.template_publish(
            actor=world.hq_marketer,
            template=template,
            source=HOSTILE_TEMPLATE.replace("LOCKED", "LOCKED-V2"),
        )
    page = browser_page
    pwned: list[str] = []
    page.on(
        "request", lambda request: pwned.append(request.url) if "pwned" in request.url else None
    )
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    # The detector works: the same payloads in an ordinary page of the same origin do run
    # (a page with no policy: Enseigne's own pages would refuse them too).
    page.route(
        f"{live_server.url}/control/",
        lambda route: route.fulfill(
            body=f"<body>{' '.join(HOSTILE)}</body>", content_type="text/html"
        ),
    )
    page.goto(f"{live_server.url}/control/")
    page.wait_for_timeout(500)
    assert any("pwned-script" in url for url in pwned), (
        f"the control page should have run the payloads: {pwned}"
    )
    pwned.clear()

    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(world.manager_a.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    with page.expect_response(lambda r: "/preview/" in r.url) as first:
        page.goto(f"{live_server.url}/brand/local/{local.public_id}/")
    response = first.value
    assert "sandbox" in response.headers["content-security-policy"]
    assert (
        "script-src" not in response.headers["content-security-policy"]
    )  # default-src 'none' covers it
    # Head office's change is shown as a diff; the unit's texts were kept.
    expect(page.locator(".diff")).to_contain_text("LOCKED-V2")
    frame = page.frame(name="preview")
    expect(frame.locator("body")).to_contain_text("LOCKED-V2 Lyon")
    expect(frame.locator("body")).to_contain_text("{{ 7*7 }}{% raw %}")
    assert "<script" not in frame.content().split("<body", 1)[1]
    assert page.locator("iframe#preview").get_attribute("sandbox") == ""

    # Typing more hostile text re-renders the live preview, still inert.
    with page.expect_response(lambda r: "/preview/" in r.url):
        page.locator("#zone_headline").fill("<img src=y onerror=\"fetch('/pwned-live')\"> gratuit")
    expect(page.frame(name="preview").locator("body")).to_contain_text("onerror")
    page.locator("[data-preview-width=mobile]").click()
    expect(page.locator("iframe#preview")).to_have_css("width", "375px")
    page.wait_for_timeout(500)
    assert pwned == [] and dialogs == [], f"script ran in the preview: {pwned} {dialogs}"

    # Saving with a forbidden word keeps the text and says which rule failed.
    page.locator("#zone-form button.btn-primary").click()
    expect(page.locator("#problems")).to_contain_text("gratuit")
    with db_scope(ALL):
        local.refresh_from_db()
    assert local.status == "flagged" and "gratuit" in local.values["headline"]
    assert local.previous_version_id is None


def test_a_pilot_store_writes_a_free_campaign_in_the_brands_frame(
    live_server, transactional_db, browser_page
):
    from enseigne.contacts.services import segment_save
    from enseigne.network import services as network

    world = build_world()
    with db_scope(ALL):
        network.capability_rule_add(
            actor=world.hq_admin,
            node=world.root,
            capability="create_free_campaigns",
            effect="allow",
            unit_tag="pilot",
        )
        segment_save(
            actor=None,
            owner=world.unit_a,
            name="Clients fidèles",
            rules={"match": "all", "rules": []},
        )
    page = browser_page
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(world.manager_a.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.goto(f"{live_server.url}/campaigns/")
    page.get_by_role("link", name="Nouvelle campagne libre").click()
    page.get_by_label("Canal").select_option("email")
    page.get_by_role("button", name="Écrire le message").click()

    # The zone editor of the unit's frame: the title is also the subject; the preview follows.
    with page.expect_response(lambda r: "/preview/" in r.url):
        page.locator("#zone_headline").fill("Portes ouvertes samedi")
    page.locator("trix-editor").click()
    page.keyboard.type("Venez découvrir nos nouveautés, café offert.")
    expect(page.frame(name="preview").locator("body")).to_contain_text("Portes ouvertes samedi")
    expect(page.frame(name="preview").locator("body")).to_contain_text(
        "Lyon"
    )  # the store's footer, locked
    page.locator("#zone-form button.btn-primary").click()
    page.get_by_role("link", name="L'utiliser dans une campagne").click()

    # The campaign form arrives with the unit, the frame and the text chosen.
    page.get_by_label("Audience (segment)").select_option(label="Clients fidèles")
    page.get_by_role("button", name="Enregistrer le brouillon").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    with db_scope(ALL):
        from enseigne.campaigns.models import Campaign

        # Read inside the scope: outside it, row-level security hides the unit's rows.
        campaign = Campaign.objects.select_related("template", "local_version").get()
    assert campaign.template.is_free and campaign.owner_id == world.unit_a.pk
    assert campaign.local_version.values["headline"] == "Portes ouvertes samedi"
    assert "café offert" in campaign.local_version.values["message"]


def test_a_click_shows_in_the_report_and_lyon_starts_from_a_lille_campaign(
    live_server, transactional_db, browser_page
):
    """The analytics story in the real UI: a clicked link reaches the campaign report at once;
    the gallery offers Lille's best campaign and Lyon's manager turns it into a draft."""
    from enseigne.analytics import rollups
    from enseigne.brand.services import template_create
    from enseigne.campaigns.models import Campaign
    from enseigne.delivery.channels.locmem import transport as locmem
    from enseigne.delivery.models import OutboxMessage
    from enseigne.delivery.pipeline import run_campaign
    from tests.campaign_helpers import contacts, launched, local_campaign
    from tests.test_gallery import _finished

    world = build_world()
    locmem.outbox.clear()
    target = f"{live_server.url}/gallery/"
    with db_scope(ALL):
        contacts(world.unit_a, 2)
        template = template_create(
            actor=world.hq_admin,
            shared_with=world.root,
            channel="email",
            name="Soldes",
            subject="Les soldes",
            source=(
                '<mjml><mj-body><mj-section><mj-column><mj-text><ens-zone name="headline" kind="text">'
                f'Soldes</ens-zone> <a href="{target}">Voir les soldes</a> '
                '<a href="{{ links.unsubscribe }}">Désabonnement</a></mj-text></mj-column></mj-section>'
                "</mj-body></mjml>"
            ),
        )
        campaign = local_campaign(world, template=template)
        launched(world, campaign)
        run_campaign(campaign.pk)
        lille = _finished(
            world,
            world.unit_b,
            world.manager_b,
            "Atelier bougies · Lille",
            {"headline": "Atelier bougies parfumées"},
            sent=400,
            clickers=60,
        )
        rollups.refresh()
    # The message as the embedded demo's sink keeps it, its links pointing at this server.
    sent = locmem.outbox[0]
    raw = sent.data.decode().replace("http://127.0.0.1:8000/", f"{live_server.url}/")
    with db_scope(ALL):
        kept = OutboxMessage.objects.create(
            channel="email",
            unit_path=world.unit_a.path,
            sender="x@example.com",
            recipient=sent.to,
            subject="Les soldes",
            raw=raw,
        )

    page = browser_page
    # A reader's browser: headless Chromium's own user agent is (rightly) taken for a robot.
    page.context.set_extra_http_headers(
        {
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/120.0 Safari/537.36"
        }
    )
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(world.manager_a.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.goto(f"{live_server.url}/outbox/{kept.pk}/")
    with page.expect_popup() as opened:  # like a mail client: the link opens in a new tab
        page.frame_locator("iframe").get_by_role("link", name="Voir les soldes").click()
    expect(opened.value).to_have_url(
        target
    )  # through the click redirect, to the page the link named
    opened.value.close()
    page.goto(f"{live_server.url}/campaigns/{campaign.public_id}/")
    page.locator("#report-link").click()
    expect(page.locator("#links tbody tr").first.locator("td").nth(1)).to_have_text("1")  # clicks
    expect(page.locator("#links tbody tr").first.locator("td").nth(2)).to_have_text("1")  # unique
    expect(page.locator("#funnel")).to_contain_text("Cliqueurs uniques")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "campaign-report.png"), full_page=True)

    page.get_by_role("button", name="Contenus").click()  # the menu's "Content" group
    page.get_by_role("link", name="Bonnes pratiques").click()
    card = page.locator(f"[data-campaign='{lille.public_id}']")
    expect(card).to_contain_text("Atelier bougies parfumées")
    card.get_by_role("button", name="Partir de cette campagne").click()
    # The draft's edit page: the store chooses its audience and date there.
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Modifier le brouillon « Atelier bougies »"
    )
    with db_scope(ALL):
        draft = Campaign.objects.get(owner=world.unit_a, name="Atelier bougies")
    assert draft.status == Campaign.Status.DRAFT


def _csp_console(page) -> list[str]:
    """Everything Chromium reports against the page's policy, and every uncaught error."""
    seen: list[str] = []
    page.on(
        "console",
        lambda message: (
            seen.append(f"{message.type}: {message.text}")
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    page.on("pageerror", lambda error: seen.append(f"pageerror: {error}"))
    return seen


def _log_in(page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(lambda url: "/login/" not in url)


def test_main_pages_run_under_the_policy_without_a_violation(
    live_server, transactional_db, browser_page
):
    from enseigne.brand import services

    world = build_world()
    with db_scope(ALL):
        template = services.template_create(
            actor=world.hq_marketer,
            shared_with=world.root,
            channel="email",
            name="Rentrée",
            source=HOSTILE_TEMPLATE,
        )
        local = services.local_version_save(
            actor=world.manager_a,
            unit=world.unit_a,
            template=template,
            values={"headline": "Bonjour", "body": "<p>Texte</p>"},
        )
    page = browser_page
    violations = _csp_console(page)

    # The detector works: a script added inline is refused and reported.
    page.goto(f"{live_server.url}/login/")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
        " document.body.appendChild(s); }"
    )
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.ran") is None
    assert any("inline script" in v and "Content Security Policy" in v for v in violations), (
        violations
    )
    violations.clear()

    pages = {
        world.hq_admin.email: [
            "/hq/",
            "/hq/users/",
            "/hq/roles/",
            "/hq/audit/",
            "/campaigns/rules/",
            "/brand/templates/new/",
            f"/brand/templates/{template.public_id}/",
            "/brand/guardrails/",
            "/results/",
        ],
        world.manager_a.email: [
            f"/units/{world.unit_a.public_id}/",
            "/contacts/",
            "/contacts/new/",
            "/imports/",
            "/segments/",
            "/segments/new/",
            "/campaigns/",
            "/campaigns/calendar/",
            "/brand/templates/",
            f"/brand/local/{local.public_id}/",
            "/brand/assets/",
            "/results/",
            "/gallery/",
            "/outbox/",
            "/api/v1/docs",
        ],
    }
    visited = []
    for email, paths in pages.items():
        page.context.clear_cookies()
        _log_in(page, live_server.url, email)
        for path in paths:
            response = page.goto(f"{live_server.url}{path}", wait_until="networkidle")
            assert response.status == 200, path
            assert "script-src 'self'" in response.headers["content-security-policy"], path
            visited.append(path)
    # The pages' own scripts ran: the calendar drew, Swagger UI listed the operations.
    expect(page.get_by_text("List Units").first).to_be_visible()
    page.goto(f"{live_server.url}/campaigns/calendar/", wait_until="networkidle")
    expect(page.locator(".fc").first).to_be_visible()
    assert violations == [], violations
    assert len(visited) == 24


def _sign_in(page, url: str, user) -> None:
    page.goto(f"{url}/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()


@pytest.mark.parametrize("width", [1366, 375])
def test_the_header_fits_the_screen_for_head_office(
    live_server, transactional_db, browser_page, width
):
    """HQ's menu, its address, log-out and language stay on screen at 1366 px and on a phone."""
    world = build_world()
    page = browser_page
    page.set_viewport_size({"width": width, "height": 800})
    _sign_in(page, live_server.url, world.hq_admin)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    if width < 992:  # Bootstrap's lg breakpoint: the menu folds behind its button
        page.get_by_role("button", name="Menu").click()
    logout = page.get_by_role("button", name="Se déconnecter")
    language = page.get_by_role("button", name="English")
    for control in (logout, language, page.get_by_role("button", name="Réseau")):
        expect(control).to_be_visible()
        box = control.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
    page.get_by_role("button", name="Réseau").click()
    page.get_by_role("link", name="Utilisateurs").click()
    expect(page).to_have_url(f"{live_server.url}/hq/users/")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, scroll_width  # nothing pushed past the right edge


def test_a_store_manager_checks_a_till_file_then_imports_its_sales(
    live_server, transactional_db, browser_page, tmp_path
):
    from enseigne.brand.models import Asset
    from enseigne.commerce.models import Order

    world = build_world()
    with db_scope(ALL):
        Asset.objects.create(
            kind=Asset.Kind.PRODUCT,
            name="Pull",
            shared_path=world.root.path,
            data={"sku": "P-1", "name": "Pull", "category": "Mailles", "price": "49.00"},
        )
    page = browser_page
    till = tmp_path / "ventes-novembre.csv"
    till.write_bytes(
        (
            "N° ticket;Date;Référence;Quantité;Prix unitaire\r\n"
            "T-1;20/11/2026 10:30;P-1;2;49,00\r\n"
            "T-1;20/11/2026 10:30;INCONNU;1;19,90\r\n"
            "T-2;21/11/2026;P-1;1;abc\r\n"
            "T-3;22/11/2026;P-1;1;12,50\r\n"
        ).encode("cp1252")
    )
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(world.manager_a.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.goto(f"{live_server.url}/sales/imports/")
    expect(page.get_by_role("heading", name="Importer des ventes")).to_be_visible()
    page.get_by_label("Fichier CSV").set_input_files(str(till))
    page.get_by_role("button", name="Envoyer").click()
    expect(page.locator("select[aria-label='N° ticket']")).to_have_value("order_id")
    expect(page.locator("select[aria-label='Prix unitaire']")).to_have_value("unit_amount")
    expect(page.locator("#dry_run")).to_be_checked()
    page.get_by_role("button", name="Lancer").click()

    expect(page.locator("#import-status")).to_have_text(
        "Simulation : rien n’a été écrit ; 2 commandes seraient enregistrées."
    )
    expect(page.locator("#dry-run")).to_be_visible()
    expect(page.locator("#count-created")).to_have_text("2")
    expect(page.locator("#count-refused")).to_have_text("1")
    expect(page.locator("#count-unknown-sku")).to_have_text("1")
    expect(page.locator("#report-refused tbody tr").first).to_contain_text("abc")
    expect(page.locator("#report-flagged tbody tr").first).to_contain_text("INCONNU")
    with db_scope(ALL):
        assert Order.objects.count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "order-import-dry-run.png"), full_page=True)

    page.get_by_role("button", name="Importer ce fichier pour de bon").click()
    expect(page.locator("#dry-run")).to_have_count(0)
    expect(page.locator("#import-status")).to_have_text("Terminé")
    expect(page.locator("#count-created")).to_have_text("2")
    with db_scope(ALL):
        assert sorted(Order.objects.values_list("external_id", flat=True)) == ["T-1", "T-3"]
