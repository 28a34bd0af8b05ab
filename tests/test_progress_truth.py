"""Progress tells the truth: what was sent is not mixed with what gates refused, 100 % only
when nothing is pending, the page reaches its final state by itself, and an import shows
its row count from the upload on."""

from __future__ import annotations

import re

import pytest

from enseigne.campaigns import selectors
from enseigne.campaigns.models import Campaign, Recipient
from enseigne.contacts.import_services import import_prepare, import_start
from tests.campaign_helpers import contacts, launched, local_campaign


@pytest.fixture
def sending(world):
    contacts(world.unit_a, 25)
    campaign = local_campaign(world)
    assert launched(world, campaign) == 25
    return campaign


def _settle(campaign, **counts):
    ids = list(
        Recipient.objects.filter(campaign=campaign).order_by("pk").values_list("pk", flat=True)
    )
    start = 0
    for status, n in counts.items():
        Recipient.objects.filter(pk__in=ids[start : start + n]).update(status=status)
        start += n


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        # (sent, not sent, failed, handled) in %
        ({"skipped": 8}, (0, 32, 0, 32)),
        ({"sent": 5, "skipped": 3}, (20, 12, 0, 32)),
        ({"sent": 24}, (96, 0, 0, 96)),
        ({"sent": 20, "failed": 3, "ambiguous": 1}, (80, 4, 12, 96)),
        ({"sent": 25}, (100, 0, 0, 100)),
        ({}, (0, 0, 0, 0)),
    ],
)
def test_the_bar_shows_sent_apart_from_refused_and_failed(sending, counts, expected):
    _settle(sending, **counts)
    p = selectors.progress(sending)
    assert (p["sent_percent"], p["not_sent_percent"], p["failed_percent"], p["percent"]) == expected


def test_handled_never_reaches_100_while_a_row_is_pending(world):
    contacts(world.unit_a, 201)
    campaign = local_campaign(world)
    launched(world, campaign)
    _settle(campaign, sent=200)
    p = selectors.progress(campaign)
    assert (p["percent"], p["sent_percent"], p["pending"]) == (99, 99, 1)


def test_the_fragment_never_says_32_percent_with_nothing_sent(world, client, sending):
    _settle(sending, skipped=8)
    client.force_login(world.manager_a)
    for language, words in (("en", "0 % sent"), ("fr", "0 % envoyés")):
        html = client.get(
            f"/campaigns/{sending.public_id}/progress/", HTTP_ACCEPT_LANGUAGE=language
        ).content.decode()
        assert words in html
        sent_bar = re.search(r'aria-label="[^"]+" aria-valuenow="(\d+)"', html)
        assert sent_bar.group(1) == "0"
        assert ">32 %<" not in html and ">32%<" not in html


def test_the_poll_reloads_the_page_once_sending_ends(world, client, sending):
    client.force_login(world.manager_a)
    url = f"/campaigns/{sending.public_id}/progress/"
    assert "HX-Refresh" not in client.get(url, HTTP_HX_REQUEST="true")
    for status in (Campaign.Status.FINISHED, Campaign.Status.PAUSED, Campaign.Status.CANCELLED):
        Campaign.objects.filter(pk=sending.pk).update(status=status)
        assert client.get(url, HTTP_HX_REQUEST="true")["HX-Refresh"] == "true"
        assert "HX-Refresh" not in client.get(url)  # a plain GET is not a poll


@pytest.mark.parametrize(
    ("content", "rows"),
    [
        (b"email\na@example.com\nb@example.com\n", 2),
        (b"email\r\na@example.com\r\nb@example.com", 2),  # CRLF, no final newline
        (b'email;prenom\n"a@example.com";"Line\nbreak"\nb@example.com;B\n', 2),  # quoted newline
        (b"\xef\xbb\xbfemail,first_name\na@example.com,A\n", 1),  # BOM
        (b"email;prenom\nz@example.com;Z\xe9lie\n", 1),  # Windows-1252
        (b"email\n", 0),  # header only
        (b"email,first_name\na@example.com,A,extra,cells\nb@example.com\n", 2),  # ragged
    ],
)
def test_an_import_knows_its_row_count_at_upload(world, client, content, rows):
    imp = import_prepare(
        actor=world.manager_a, unit=world.unit_a, file_name="c.csv", content=content
    )
    assert imp.total_rows == rows
    client.force_login(world.manager_a)
    page = client.get(f"/imports/{imp.public_id}/").content.decode()
    label = "row in the file" if rows == 1 else "rows in the file"
    assert f"{rows} {label}" in page
    french = client.get(f"/imports/{imp.public_id}/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert f"{rows} {'ligne' if rows < 2 else 'lignes'} dans le fichier" in french


def test_a_started_import_shows_its_total_before_the_worker_reads_it(
    world, client, django_capture_on_commit_callbacks
):
    imp = import_prepare(
        actor=world.manager_a,
        unit=world.unit_a,
        file_name="c.csv",
        content=b"email\n" + b"".join(b"p%d@example.com\n" % i for i in range(1234)),
    )
    import_start(
        actor=world.manager_a, contact_import=imp, mapping={"email": "email"}, consent_channels=[]
    )  # on_commit callbacks not run: the worker has not started
    client.force_login(world.manager_a)
    fragment = client.get(f"/imports/{imp.public_id}/progress/").content.decode()
    assert re.search(r"0 / 1[\s,.\u202f\xa0]?234", fragment), fragment
