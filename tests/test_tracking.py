"""Click and open tracking: links rewritten at send, signed redirects, the events log."""

from __future__ import annotations

import email
import random
import re
from email import policy

import pytest
from django.db import connection
from django.test import RequestFactory
from django.urls import Resolver404, resolve

from enseigne.brand.services import template_create
from enseigne.campaigns.models import Recipient
from enseigne.delivery import events, partitions
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.delivery.links import LinkRewriter
from enseigne.delivery.models import Event, Link
from enseigne.delivery.pipeline import run_campaign
from enseigne.lib.signing import sign_ids
from enseigne.tracking import services
from tests.campaign_helpers import contacts, launched, local_campaign

SALE = "https://maison.example/soldes?utm_source=enseigne&ref=a1"
SHOP = "https://maison.example/magasins/lyon"
SOURCE = (
    "<mjml><mj-body><mj-section><mj-column><mj-text>"
    f'Bonjour {{{{ contact.first_name }}}}, <a href="{SALE.replace("&", "&amp;")}">les soldes</a> et '
    f'<a href="{SHOP}">votre magasin</a>. <ens-zone name="headline" kind="text">Nouvelle saison</ens-zone>'
    ' <a href="mailto:lyon@maison.example">Écrire</a> <a href="{{ links.unsubscribe }}">Se désabonner</a>'
    "</mj-text></mj-column></mj-section></mj-body></mjml>"
)
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


@pytest.fixture(autouse=True)
def _clean():
    locmem.outbox.clear()
    services.forget_links()
    yield
    locmem.outbox.clear()
    services.forget_links()


def _html(message) -> str:
    parsed = email.message_from_bytes(message.data, policy=policy.default)
    return parsed.get_body(("html",)).get_content()


def _sent(world, n=3):
    made = contacts(world.unit_a, n)
    template = template_create(
        actor=world.hq_admin,
        shared_with=world.root,
        channel="email",
        name="Soldes",
        source=SOURCE,
        subject="Les soldes",
    )
    campaign = local_campaign(world, template=template)
    launched(world, campaign)
    run_campaign(campaign.pk)
    return campaign, made


def _get(path: str, method: str = "get", agent: str = BROWSER, ip: str = "203.0.113.9"):
    request = getattr(RequestFactory(), method)(path, HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    match = resolve(path)
    return match.func(request, *match.args, **match.kwargs)


def _clicks(html: str) -> list[str]:
    return re.findall(r'href="http://127\.0\.0\.1:8000(/c/[^"]+)"', html)


def test_links_are_rewritten_per_recipient_and_redirect_to_their_own_url(world):
    campaign, made = _sent(world)
    assert len(locmem.outbox) == 3
    html = _html(locmem.outbox[0])
    paths = _clicks(html)
    assert len(paths) == 2
    # The unsubscribe and mailto links are left as they were; the original URLs are gone.
    assert 'href="mailto:lyon@maison.example"' in html and "/u/" in html
    assert SHOP not in html and "maison.example/soldes" not in html
    links = {link.url: link for link in Link.objects.filter(campaign=campaign)}
    assert set(links) == {SALE, SHOP}  # the &amp; of the HTML is not part of the URL
    assert (links[SALE].position, links[SHOP].position) == (1, 2)
    # Each recipient gets their own tokens for the same two links.
    others = _clicks(_html(locmem.outbox[1]))
    assert set(paths).isdisjoint(others)

    response = _get(paths[0])
    assert response.status_code == 302 and response["Location"] == SALE
    assert response["Cache-Control"] == "private, no-store"
    row = Recipient.objects.get(campaign=campaign, contact__email=locmem.outbox[0].to)
    (click,) = Event.objects.filter(kind=Event.Kind.CLICKED)
    assert (click.recipient_id, click.link_id, click.campaign_id, click.unit_id, click.machine) == (
        row.pk,
        links[SALE].pk,
        campaign.pk,
        world.unit_a.pk,
        False,
    )
    assert click.unit_path == world.unit_a.path


def test_head_requests_never_count_and_scanners_are_flagged(world):
    _sent(world, 1)
    path = _clicks(_html(locmem.outbox[0]))[1]
    assert _get(path, "head").status_code == 302
    assert not Event.objects.filter(kind=Event.Kind.CLICKED).exists()
    _get(path, agent="Mozilla/5.0 (compatible; Barracuda Sentinel)")
    _get(path, agent="")
    _get(path, agent="python-requests/2.31")
    _get(path)
    assert list(
        Event.objects.filter(kind=Event.Kind.CLICKED)
        .order_by("id")
        .values_list("machine", flat=True)
    ) == [True, True, True, False]


def _mutate(token: str, rng: random.Random, alphabet: str) -> str:
    op = rng.randrange(6)
    at = rng.randrange(len(token))
    if op == 0:  # change one character
        return token[:at] + rng.choice(alphabet.replace(token[at], "")) + token[at + 1 :]
    if op == 1:  # insert one
        return token[:at] + rng.choice(alphabet) + token[at:]
    if op == 2:  # delete one
        return token[:at] + token[at + 1 :]
    ids, _, mac = token.partition(".")
    parts = ids.split("-")
    if op in (3, 4) and len(parts) == 2 and all(p.isascii() and p.isdigit() for p in parts):
        # another recipient's (3) or another link's (4) id under this MAC
        which = op - 3
        parts[which] = str(max(0, int(parts[which]) + rng.choice((-1, 1, 2, 1000))))
        return f"{'-'.join(parts)}.{mac}"
    return "0" + token  # a leading zero: the same ids, written differently


@pytest.mark.slow  # ten thousand requests
def test_ten_thousand_mutated_tokens_redirect_nowhere_and_record_nothing(world):
    _sent(world, 5)
    genuine = [p for m in locmem.outbox for p in _clicks(_html(m))]
    urls_in_messages = {SALE, SHOP}
    rng = random.Random(20261124)
    alphabet = "0123456789abcdefABCDEF-_.%/~=?&0٣²"
    tried, redirected, refused = set(), 0, 0
    while len(tried) < 10_000:
        token = rng.choice(genuine)[len("/c/") :]
        for _ in range(rng.choice((1, 1, 2))):
            token = _mutate(token, rng, alphabet)
        candidate = f"/c/{token}"
        if rng.random() < 0.1:  # an open-redirect attempt riding on the link
            candidate += rng.choice(
                ("?url=https://evil.example/", "/https://evil.example", "?next=//evil.example")
            )
        if candidate in genuine or candidate in tried:
            continue
        tried.add(candidate)
        try:
            response = _get(candidate)
        except Resolver404:
            continue
        except Exception as error:  # the view answers 404 for anything it does not trust
            assert type(error).__name__ == "Http404", f"{candidate}: {error!r}"
            refused += 1
            continue
        redirected += 1
        assert response["Location"] in urls_in_messages
    assert (
        redirected == 0 and refused > 8_000
    )  # most reached the view (a '/' in a token does not route)
    assert Event.objects.filter(kind=Event.Kind.CLICKED).count() == 0


def test_the_open_pixel_counts_in_aggregate_and_flags_privacy_proxies(world):
    campaign, _ = _sent(world, 1)
    html = _html(locmem.outbox[0])
    (path,) = re.findall(r'src="http://127\.0\.0\.1:8000(/o/[^"]+\.gif)"', html)
    response = _get(path)
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    assert response.content.startswith(b"GIF89a")
    _get(path, agent="Mozilla/5.0", ip="17.58.101.10")  # Apple Mail Privacy Protection
    _get(path, "head")
    opens = list(Event.objects.filter(kind=Event.Kind.OPENED).order_by("id"))
    assert [(e.campaign_id, e.unit_id, e.recipient_id, e.machine) for e in opens] == [
        (campaign.pk, world.unit_a.pk, None, False),
        (campaign.pk, world.unit_a.pk, None, True),
    ]
    with pytest.raises(Exception, match="Unknown image"):
        _get(path.replace(".gif", "x.gif"))


def test_each_handed_off_message_leaves_one_sent_event(world):
    campaign, made = _sent(world, 4)
    rows = dict(
        Recipient.objects.filter(campaign=campaign, status="sent").values_list("pk", "unit_path")
    )
    sent = Event.objects.filter(kind=Event.Kind.SENT, campaign_id=campaign.pk)
    assert sorted(sent.values_list("recipient_id", flat=True)) == sorted(rows) and len(rows) == 4
    assert {(e.unit_id, e.unit_path, e.channel) for e in sent} == {
        (world.unit_a.pk, world.unit_a.path, "email")
    }


def test_the_text_part_and_odd_html_are_rewritten_carefully(world):
    campaign = local_campaign(world)
    rewriter = LinkRewriter(
        campaign_id=campaign.pk,
        unit_id=world.unit_a.pk,
        unit_path=world.unit_a.path,
        base_url="https://t.example/",
        keep_prefix="https://t.example/u/",
    )
    text = rewriter.text(
        f"Les soldes : {SHOP}. Désabonnement : https://t.example/u/1.abc/ (lien)", 7
    )
    (token,) = re.findall(r"https://t\.example/c/(\S+?)\. ", text)
    assert token == sign_ids("click", 7, rewriter.ids[SHOP])
    assert "https://t.example/u/1.abc/ (lien)" in text
    html = rewriter.html(
        f"<p><A class='b' HREF='{SHOP}'>x</A> <a href=\"javascript:alert(1)\">y</a></p>", 7
    )
    assert f"HREF='https://t.example/c/{token}'" in html and 'href="javascript:alert(1)"' in html
    assert rewriter.pixel("<html><body><p>x</p></BODY></html>", 0).endswith(
        'border:0"></BODY></html>'
    )


def test_the_buffer_writes_in_batches_from_its_own_thread(transactional_db, settings):
    settings.EVENTS_FLUSH_MS = 50
    from django.utils import timezone

    buffer = events.Buffer()
    now = timezone.now()
    for i in range(5):
        buffer.add(
            events.row(occurred_at=now, kind=Event.Kind.CLICKED, unit_path="0001", recipient_id=i)
        )
    deadline = timezone.now().timestamp() + 5
    while buffer.pending() and timezone.now().timestamp() < deadline:
        buffer._wake.wait(0.02)
    assert buffer.pending() == 0
    assert sorted(Event.objects.values_list("recipient_id", flat=True)) == [0, 1, 2, 3, 4]
    buffer.add(
        events.row(occurred_at=now, kind=Event.Kind.CLICKED, unit_path="0001", recipient_id=5)
    )
    buffer.stop()  # what waits is written before the thread ends
    assert not buffer._thread.is_alive() and Event.objects.count() == 6


@pytest.mark.skipif(connection.vendor != "postgresql", reason="partitions exist on PostgreSQL only")
def test_events_land_in_their_month_and_wait_in_the_default_partition(db):
    import datetime as dt

    from django.utils import timezone

    now = timezone.now()
    assert partitions.partition_name(now.date().replace(day=1)) in partitions.existing()
    far = dt.datetime(2031, 5, 17, 12, tzinfo=dt.UTC)
    events.write(
        [
            events.row(occurred_at=far, kind=Event.Kind.CLICKED, unit_path="0001"),
            events.row(occurred_at=now, kind=Event.Kind.OPENED, unit_path="0001"),
        ]
    )

    def count(table):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
            return cursor.fetchone()[0]

    assert (
        count(partitions.DEFAULT) == 1
        and count(partitions.partition_name(now.date().replace(day=1))) == 1
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (app_role,) = cursor.fetchone()
        cursor.execute("RESET ROLE")  # creating tables is the schema owner's job
    try:
        assert partitions.ensure(dt.date(2031, 5, 1), dt.date(2031, 5, 1)) == [
            "delivery_event_2031_05"
        ]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('role', %s, false)", [app_role])
    assert count(partitions.DEFAULT) == 0 and count("delivery_event_2031_05") == 1
    assert Event.objects.filter(occurred_at=far).count() == 1


def test_an_unsubscribe_and_a_hard_bounce_are_events_of_the_campaign(world):
    from enseigne.delivery import bounces
    from enseigne.delivery.models import Bounce

    campaign, made = _sent(world, 2)
    first, second = Recipient.objects.filter(campaign=campaign).order_by("pk")
    assert services.unsubscribe(recipient_id=first.pk)
    assert not services.unsubscribe(recipient_id=first.pk)  # already done: no second event
    bounces.record(
        bounces.Report(
            kind=Bounce.Kind.HARD,
            recipient_id=second.pk,
            status="5.1.1",
            diagnostic="unknown",
            address="",
            reference="dsn-1",
        ),
        source="test",
    )
    found = sorted(
        Event.objects.filter(campaign_id=campaign.pk)
        .exclude(kind=Event.Kind.SENT)
        .values_list("kind", "recipient_id")
    )
    assert found == sorted([(Event.Kind.UNSUBSCRIBED, first.pk), (Event.Kind.BOUNCED, second.pk)])
