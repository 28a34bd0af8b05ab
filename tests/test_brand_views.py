"""The brand-kit pages through Django's test client: what HQ and a unit see and change."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from enseigne.brand import services
from enseigne.brand.models import Asset, Guardrails, LocalVersion, TemplateVersion
from tests.factories import PASSWORD

SOURCE = """<mjml><mj-body><mj-section><mj-column>
<mj-image src="{{ brand.logo_url }}" alt="{{ brand.name }}" />
<mj-text><ens-zone name="headline" kind="text" max="60" label="Titre">Bonjour</ens-zone></mj-text>
<mj-text>FOOTER {{ unit.name }} {{ brand.legal_footer }}</mj-text>
</mj-column></mj-section></mj-body></mjml>"""


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def template(world):
    return services.template_create(
        actor=world.hq_marketer,
        shared_with=world.root,
        channel="email",
        name="Bienvenue",
        source=SOURCE,
    )


def login(client, user):
    assert client.login(username=user.email, password=PASSWORD)
    return client


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 400), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


def test_hq_edit_publishes_a_version_that_local_versions_follow(client, world, template):
    local = services.local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        values={"headline": "Chez nous"},
    )
    login(client, world.hq_marketer)
    url = f"/brand/templates/{template.public_id}/"
    form = {"name": "Bienvenue", "description": "", "source": SOURCE.replace("FOOTER", "PIED")}
    response = client.post(url, form)
    assert response.status_code == 302
    local.refresh_from_db()
    assert (local.version.number, local.previous_version.number) == (2, 1)
    assert local.values["headline"] == "Chez nous"
    response = client.post(url, {**form, "name": "Bienvenue !"})  # a rename is not a new version
    assert (
        response.status_code == 302
        and TemplateVersion.objects.filter(template=template).count() == 2
    )
    page = login(client, world.manager_a).get(f"/brand/local/{local.public_id}/").content.decode()
    assert "v1 → v2" in page and "PIED" in page


def test_editor_errors_name_the_line_and_save_nothing(client, world, template):
    login(client, world.hq_marketer)
    broken = SOURCE.replace('<ens-zone name="headline"', '<ens-zone name="Bad Name"')
    response = client.post(
        f"/brand/templates/{template.public_id}/",
        {"name": "Bienvenue", "description": "", "source": broken},
    )
    assert response.status_code == 200
    assert "line 3: a zone needs a name" in response.content.decode()
    assert TemplateVersion.objects.filter(template=template).count() == 1
    preview = client.post("/brand/templates/preview/", {"channel": "email", "source": broken})
    assert "line 3" in preview.content.decode() and "sandbox" in preview["Content-Security-Policy"]


def test_upload_answers_json_for_the_progress_bar(client, world):
    login(client, world.manager_a)
    owner = f"own:{world.unit_a.public_id}"
    ok = client.post(
        "/brand/assets/",
        {"owner": owner, "kind": "image", "file": io.BytesIO(png())},
        HTTP_ACCEPT="application/json",
    )
    assert ok.status_code == 201 and ok.json()["ok"]
    svg = io.BytesIO(b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>")
    svg.name = "logo.png"
    refused = client.post(
        "/brand/assets/",
        {"owner": owner, "kind": "image", "file": svg},
        HTTP_ACCEPT="application/json",
    )
    assert refused.status_code == 422
    assert "logo.png is an SVG drawing" in " ".join(refused.json()["errors"])
    assert Asset.objects.count() == 1
    other = client.post(
        "/brand/assets/",
        {"owner": f"own:{world.unit_b.public_id}", "kind": "image", "file": io.BytesIO(png())},
    )
    assert other.status_code == 200 and Asset.objects.count() == 1  # not a choice for this user


def test_unit_preview_is_sandboxed_literal_and_scoped(client, world, template):
    login(client, world.manager_a)
    url = f"/brand/templates/{template.public_id}/preview/"
    response = client.post(
        url, {"unit": str(world.unit_a.public_id), "zone_headline": "{{ 7*7 }}<b>x</b>"}
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "{{ 7*7 }}&lt;b&gt;x&lt;/b&gt;" in body and "FOOTER Lyon" in body
    csp = response["Content-Security-Policy"]
    assert csp.startswith("default-src 'none'") and csp.endswith("sandbox")
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert client.post(url, {"unit": str(world.unit_b.public_id)}).status_code == 404


def test_sms_counter_counts_the_locked_ends(client, world):
    template = services.template_create(
        actor=world.hq_marketer,
        shared_with=world.root,
        channel="sms",
        name="Flash",
        source='<ens-zone name="m" kind="text">Promo</ens-zone>',
        sms_stop="STOP au 36111",
        max_segments=1,
    )
    login(client, world.manager_a)
    url = f"/brand/templates/{template.public_id}/sms-length/"
    unit = str(world.unit_a.public_id)
    short = client.post(url, {"unit": unit, "zone_m": "Promo"}).content.decode()
    assert "1 segment of 1 allowed" in short and "text-danger" not in short
    long = client.post(url, {"unit": unit, "zone_m": "x" * 150}).content.decode()
    assert "text-danger" in long and "2 segments of 1 allowed" in long
    emoji = client.post(url, {"unit": unit, "zone_m": "Promo 🎉"}).content.decode()
    assert "UCS-2" in emoji


def test_guardrails_form_names_a_bad_pattern_and_rechecks(client, world, template):
    local = services.local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        values={"headline": "Tout est gratuit"},
    )
    login(client, world.hq_admin)
    form = {"restricted_patterns": "re:(unclosed", "allowed_link_domains": "", "max_image_kb": 300}
    response = client.post("/brand/guardrails/", form)
    assert "“re:(unclosed” is not a valid regular expression" in response.content.decode()
    assert not Guardrails.objects.exists()
    response = client.post("/brand/guardrails/", {**form, "restricted_patterns": "gratuit\n"})
    assert response.status_code == 302
    local.refresh_from_db()
    assert local.problems == ["Zone “Titre” uses “gratuit”, which head office does not allow."]
    assert LocalVersion.objects.get(pk=local.pk).status == "flagged"


def test_asset_file_route_serves_only_library_files(client, world, settings, tmp_path):
    (tmp_path / "imports").mkdir()
    (tmp_path / "imports" / "secret.csv").write_text("email\nsecret@example.com\n")
    assert client.get("/media/assets/../imports/secret.csv").status_code == 404
    assert client.get("/media/imports/secret.csv").status_code == 404


def bearer(user) -> dict:
    from enseigne.network.tokens import token_create

    return {"HTTP_AUTHORIZATION": f"Bearer {token_create(user=user)[1]}"}


def test_api_offer_errors_name_the_fields_and_a_unit_cannot_touch_locked_parts(
    client, world, template
):
    import json

    response = client.post(
        "/api/v1/assets",
        {
            "kind": "offer",
            "node": str(world.root.public_id),
            "data": json.dumps({"title": "", "url": "javascript:alert(1)"}),
        },
        **bearer(world.hq_marketer),
    )
    assert response.status_code == 422
    assert set(response.json()["error"]["fields"]) == {"title", "url"}
    before = template.current.compiled_html
    response = client.post(
        "/api/v1/local-versions",
        json.dumps(
            {
                "template": str(template.public_id),
                "unit": str(world.unit_a.public_id),
                "values": {
                    "headline": "Salut",
                    "FOOTER": "hacked",
                    "compiled_html": "<script>x</script>",
                },
            }
        ),
        content_type="application/json",
        **bearer(world.manager_a),
    )
    assert response.status_code == 201
    assert response.json()["values"] == {"headline": "Salut"}
    html = client.post(
        f"/api/v1/templates/{template.public_id}/preview",
        json.dumps({"unit": str(world.unit_a.public_id), "values": {"headline": "Salut"}}),
        content_type="application/json",
        **bearer(world.manager_a),
    ).json()["html"]
    assert "FOOTER Lyon" in html and "Salut" in html and "hacked" not in html
    template.current.refresh_from_db()
    assert template.current.compiled_html == before
    assert (
        client.get(f"/api/v1/templates/{template.public_id}", **bearer(world.manager_a)).json()[
            "source"
        ]
        is None
    )
