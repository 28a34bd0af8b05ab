"""The screens issue 19 found in English or with raw keys, read in French (and English).

Import mapping targets, the segment builder's fields and operators, role names, the
rich-text toolbar, counts with their plural, the template editor's content field.
"""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from enseigne.contacts.models import ContactImport
from tests.campaign_helpers import email_template

FR = {"HTTP_ACCEPT_LANGUAGE": "fr"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def _upload(client, world, rows: list[str]) -> ContactImport:
    content = ("prenom;email\n" + "\n".join(rows) + "\n").encode()
    response = client.post(
        "/imports/",
        {
            "unit": str(world.unit_a.public_id),
            "file": SimpleUploadedFile("clients.csv", content, content_type="text/csv"),
        },
        **FR,
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return ContactImport.objects.get(file_name="clients.csv")


def _options(html: str, name: str) -> dict[str, str]:
    select = re.search(rf'<select[^>]*name="{name}".*?</select>', html, re.S).group(0)
    return dict(re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select))


@pytest.mark.parametrize(
    ("headers", "first_name", "consent"),
    [(FR, "Prénom", "Consentement email"), (EN, "First name", "Email consent")],
)
def test_import_mapping_offers_fields_by_name_not_key(client, world, headers, first_name, consent):
    client.force_login(world.manager_a)
    imp = _upload(client, world, ["Léa;lea@example.com"])
    html = client.get(f"/imports/{imp.public_id}/", **headers).content.decode()
    options = _options(html, "map_0")
    assert options["first_name"] == first_name
    assert options["consent_email"] == consent
    # Every key has a label of its own: none is shown as its key.
    assert all(label and label != key for key, label in options.items() if key)
    assert _options(html, "map_1")["email"] != "email"


@pytest.mark.parametrize(
    ("rows", "shown", "never"),
    [
        (["Léa;pas-une-adresse"], "1</span> ligne refusée", "1</span> lignes"),
        (["Léa;x", "Paul;y"], "2</span> lignes refusées", "2</span> ligne refusée"),
        (["Léa;lea@example.com"], "1</span> nouveau contact", "1</span> nouveaux"),
        (
            ["Léa;a@example.com", "Paul;b@example.com"],
            "2</span> nouveaux contacts",
            "nouveau contact<",
        ),
    ],
)
def test_import_counts_take_the_right_plural(
    client, world, django_capture_on_commit_callbacks, rows, shown, never
):
    client.force_login(world.manager_a)
    imp = _upload(client, world, rows)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/imports/{imp.public_id}/", {"map_0": "first_name", "map_1": "email"}, **FR)
    html = client.get(f"/imports/{imp.public_id}/", **FR).content.decode()
    assert shown in html
    assert never not in html


def _builder(client, headers) -> tuple[dict, dict]:
    html = client.get("/segments/new/", **headers).content.decode()

    def data(element_id):
        found = re.search(
            rf'<script id="{element_id}" type="application/json">(.*?)</script>', html
        )
        return json.loads(found.group(1))

    return {f["field"]: f for f in data("segment-catalogue")}, data("segment-labels")


def test_the_segment_builder_names_fields_and_operators_in_french(client, world):
    client.force_login(world.manager_a)
    catalogue, labels = _builder(client, FR)
    assert catalogue["first_name"]["label"] == "Prénom"
    assert (
        dict(catalogue["consent_email"]["ops"])["is_valid"]
        == "est donné (peut recevoir des messages)"
    )
    assert dict(catalogue["created_at"]["ops"])["in_last_days"] == "date de moins de … jours"
    assert dict(catalogue["consent_sms"]["choices"])["withdrawn"] != "withdrawn"
    assert labels["months"][0] == ["1", "janvier"]
    assert labels["operator"] == "Condition" and labels["remove"] != "Remove"
    for spec in catalogue.values():
        assert spec["label"] != spec["field"]
        for key, label in spec["ops"]:
            assert label != key and "_" not in label, (spec["field"], key)


def test_the_segment_builder_reads_in_english_too(client, world):
    client.force_login(world.manager_a)
    catalogue, labels = _builder(client, EN)
    assert catalogue["first_name"]["label"] == "First name"
    assert dict(catalogue["consent_email"]["ops"])["is_valid"] == "is given (may receive messages)"
    assert labels["months"][11] == ["12", "December"]


def test_segment_errors_name_the_rule_in_the_readers_language(client, world):
    client.force_login(world.manager_a)
    rules = {"match": "all", "rules": [{"field": "email", "op": "equals", "value": ""}]}
    html = client.post("/segments/count/", {"rules": json.dumps(rules)}, **FR).content.decode()
    assert "règle 1 : « Email est » attend une valeur." in html


@pytest.mark.parametrize(
    ("headers", "names"),
    [
        (
            FR,
            [
                "Administrateur du siège",
                "Responsable de point de vente",
                "Équipe du point de vente",
            ],
        ),
        (EN, ["HQ admin", "Unit manager", "Unit staff"]),
    ],
)
def test_built_in_roles_are_named_in_the_readers_language(client, world, headers, names):
    client.force_login(world.hq_admin)
    for url in ("/hq/roles/", "/hq/users/"):
        html = client.get(url, **headers).content.decode()
        for name in names:
            assert name in html, (url, name)
    if headers is FR:
        assert "Unit manager" not in client.get("/hq/users/", **FR).content.decode()


def test_the_rich_text_toolbar_speaks_french(client, world):
    template = email_template(world)
    client.force_login(world.manager_a)
    html = client.get(f"/brand/templates/{template.public_id}/personalise/", **FR).content.decode()
    toolbar = re.search(r'<div id="trix-lang" hidden(.*?)></div>', html, re.S).group(1)
    wording = dict(re.findall(r'data-([a-z0-9-]+)="([^"]*)"', toolbar))
    assert wording["bold"] == "Gras" and wording["italic"] == "Italique"
    assert wording["link"] != "Link" and wording["url-placeholder"] != "Enter a URL…"
    # brand.js listens for the editors before Trix starts them.
    assert html.index('id="trix-lang"') < html.index("brand.js") < html.index("trix.umd.min.js")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("abc", "pas de signe @"),
        ("@x.fr", "rien avant le @"),
        ("a..b@x.fr", "deux points à la suite"),
        ("a@x", "pas de point dans le domaine après le @"),
        ("a@x.invalid", "nom de domaine réservé"),
        ("a@" + "b" * 70 + ".fr", "une partie du domaine est trop longue"),
        ("a" * 70 + "@x.fr", "plus de 64 caractères avant le @"),
        ("Léa <lea@x.fr>", "caractères non permis"),
        ("<a@x.fr", "n’a pas la forme d’une adresse"),
    ],
)
def test_email_validator_reasons_are_ours_and_french(address, reason):
    # email-validator explains in English; the reason people read is mapped in one place
    # (contacts.validation) and translated.
    from django.utils import translation

    from enseigne.contacts.validation import FieldError, clean_email

    with translation.override("fr"), pytest.raises(FieldError) as refused:
        clean_email(address)
    assert str(refused.value) == f"adresse e-mail non valide ({reason})"
