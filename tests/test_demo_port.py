"""`./dev demo --port N`: every absolute address names port N (pictures, logo, click
redirects, unsubscribe links, List-Unsubscribe), stored data pins no port, and each demo's
mail sink takes a free port so that two demos run side by side."""

from __future__ import annotations

import re
import socket

import pytest

from enseigne.brand.asset_services import asset_upload
from enseigne.brand.models import LocalVersion
from enseigne.brand.services import local_version_save, template_create
from enseigne.campaigns.models import Recipient
from enseigne.contacts.services import segment_save
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.delivery.pipeline import run_campaign
from enseigne.demo.management.commands import demo
from tests.campaign_helpers import EVERYONE, contacts, launched

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS"
    b"\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00"
    b"\x00IEND\xaeB`\x82"
)
SOURCE = (
    '<mjml><mj-body><mj-section><mj-column><mj-image src="{{ brand.logo_url }}" alt="logo" />'
    '<ens-zone name="hero" kind="image" label="Visuel" />'
    '<mj-text><a href="https://www.example.com/soldes">Voir</a> '
    '<a href="{{ links.unsubscribe }}">Se désabonner</a></mj-text>'
    "</mj-column></mj-section></mj-body></mjml>"
)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, ("http://127.0.0.1:8123", "smtp://127.0.0.1:40111")),
        ({"PATH": "/bin"}, ("http://127.0.0.1:8123", "smtp://127.0.0.1:40111")),
        ({"ENSEIGNE_BASE_URL": "https://demo.example.com"}, ("https://demo.example.com", None)),
        ({"EMAIL_URL": "smtp://relay.example.com:2525"}, (None, "smtp://relay.example.com:2525")),
        ({"ENSEIGNE_BASE_URL": ""}, ("http://127.0.0.1:8123", None)),
    ],
)
def test_the_childrens_environment_names_the_demos_port_and_sink(environ, expected):
    env = demo.demo_environment(8123, 40111, environ)
    base, mail = expected
    assert env["ENSEIGNE_BASE_URL"] == (base or "http://127.0.0.1:8123")
    assert env["EMAIL_URL"] == (mail or "smtp://127.0.0.1:40111")
    assert {k: v for k, v in env.items() if k not in ("ENSEIGNE_BASE_URL", "EMAIL_URL")} == {
        k: v for k, v in environ.items() if k not in ("ENSEIGNE_BASE_URL", "EMAIL_URL")
    }


def test_a_second_demo_gets_another_sink_port_than_a_running_one():
    with socket.socket() as first:
        first.bind(("127.0.0.1", demo.free_port()))
        first.listen()
        taken = first.getsockname()[1]
        others = {demo.free_port() for _ in range(5)}
        assert taken not in others
        for port in others:  # each is free to listen on
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port))


def test_the_sink_listens_where_the_worker_sends(monkeypatch):
    started = []

    class Child:
        returncode = 0

        def __init__(self, args, env=None):
            started.append((args, env))

        def poll(self):
            return 0

        def send_signal(self, number):
            pass

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(demo.subprocess, "Popen", Child)
    monkeypatch.delenv("EMAIL_URL", raising=False)
    monkeypatch.delenv("ENSEIGNE_BASE_URL", raising=False)
    demo.Command()._run_processes(port=8123)
    (sink_args, sink_env), (_worker, worker_env), (web_args, web_env) = started
    port = sink_args[sink_args.index("--port") + 1]
    assert worker_env["EMAIL_URL"] == f"smtp://127.0.0.1:{port}" and port != "8025"
    assert {worker_env["ENSEIGNE_BASE_URL"], web_env["ENSEIGNE_BASE_URL"]} == {
        "http://127.0.0.1:8123"
    }
    assert web_args[-2:] == ["--port", "8123"]


def _campaign(world, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    asset_upload(
        actor=world.hq_admin,
        node=world.root,
        own=False,
        kind="logo",
        name="Logo",
        file_name="logo.png",
        data=PNG,
    )
    hero = asset_upload(
        actor=world.hq_admin,
        node=world.root,
        own=False,
        kind="image",
        name="Vitrine",
        file_name="vitrine.png",
        data=PNG,
    )
    template = template_create(
        actor=world.hq_admin,
        shared_with=world.root,
        channel="email",
        name="Photo",
        source=SOURCE,
        subject="Photo",
    )
    local = local_version_save(
        actor=world.hq_admin,
        unit=world.unit_a,
        template=template,
        values={"hero": {"asset": str(hero.public_id), "alt": "Vitrine"}},
    )
    from enseigne.campaigns import services

    contacts(world.unit_a, 1)
    return services.campaign_create_local(
        actor=world.hq_admin,
        unit=world.unit_a,
        channel="email",
        name="Photo",
        template=template,
        local_version=local,
        segment=segment_save(actor=None, owner=world.unit_a, name="Tous", rules=EVERYONE),
    )


def test_every_absolute_address_follows_the_port_and_none_is_stored(
    world, client, settings, tmp_path
):
    settings.BASE_URL = "http://127.0.0.1:8000"  # the port the data was made under
    campaign = _campaign(world, settings, tmp_path)
    stored = LocalVersion.objects.get(pk=campaign.local_version_id).values["hero"]["src"]
    assert stored.startswith("/media/"), stored  # a path: no host, no port
    settings.BASE_URL = "http://127.0.0.1:8123"  # the demo now runs on another port
    client.force_login(world.manager_a)
    preview = client.get(f"/campaigns/{campaign.public_id}/message/").content.decode()
    pictures = re.findall(r'<img[^>]+src="([^"]+)"', preview)
    assert len(pictures) == 2 and all(
        p.startswith("http://127.0.0.1:8123/media/") for p in pictures
    )
    locmem.outbox.clear()
    launched(world, campaign)
    run_campaign(campaign.pk)
    (message,) = locmem.outbox
    raw = message.data.decode("ascii", "replace")
    body = re.sub(r"=\r\n", "", raw).replace("=3D", "=")
    addresses = set(re.findall(r"https?://[^\s\"'<>)]+", body))
    ours = {a for a in addresses if "127.0.0.1" in a}
    assert ours and all(a.startswith("http://127.0.0.1:8123/") for a in ours), ours
    assert ":8000" not in body
    row = Recipient.objects.get(campaign=campaign)
    assert re.search(r"\r\nList-Unsubscribe: <http://127\.0\.0\.1:8123/u/[^>]+>\r\n", raw)
    assert any(a.startswith("http://127.0.0.1:8123/c/") for a in ours)  # click redirects
    assert any(a.startswith("http://127.0.0.1:8123/media/") for a in ours)
    assert row.status == "sent"
