"""Walk the demo in French as each persona and find English left on the pages.

The catalogue test checks the sources; this one reads what people actually get: every
page reachable from the home page in two clicks, rendered in French with the demo's
data, as the HQ admin, the HQ marketer, the region manager, the store manager and the
store staff. Words that only English uses in running text must not appear in what a
page shows (its text, titles, placeholders, labels for screen readers).
"""

from __future__ import annotations

import json
import re
from collections import Counter, deque
from html.parser import HTMLParser
from urllib.parse import urldefrag, urlsplit

import pytest

from enseigne.demo import seed

PERSONAS = [
    "siege@maison-lumiere.test",
    "marketing@maison-lumiere.test",
    "region.sud-est@maison-lumiere.test",
    "lyon@maison-lumiere.test",
    "vendeur.lyon@maison-lumiere.test",
]

# Words French running text does not use, and English UI wording does (whole words, as
# written). Proper nouns and shared words (e-mail, SMS, segment, contact) are not here.
_ENGLISH_WORDS = """the and of with your you to is are was were be been has have will would not no yes
    this that these those there their they it its from by for at in if then than
    all any each every some none only also just more most less least new old back next
    previous save delete edit add remove cancel send sent sending draft drafts submit
    search filter show hide open close view download upload
    settings profile logout login password users roles rules
    rows row field fields value values name names status date dates
    created updated rejected pending failed unknown approved refused scheduled
    campaign campaigns template templates asset assets report reports
    store stores unit units region regions network head office
    yesterday today tomorrow days day weeks week months month hours hour minutes minute
    total count left over under per out about before after between since until
    which what when where who how why here please should must can cannot may
"""
ENGLISH = set(_ENGLISH_WORDS.split())
# The product's name and words French uses as they are.
ALLOWED = {"enseigne", "total", "date", "minute", "minutes", "report"}
SKIP_PATHS = ("/logout", "/static/", "/media/", "/api/", "/admin/", "/i18n/", "/t/", "/u/")
MAX_PAGES = 90
SAME_KIND = 2  # pages per URL shape (one contact, one campaign… stands for the others)
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d+")


class _Page(HTMLParser):
    """A page's visible text and same-site links."""

    VERBATIM = {"script", "style", "code", "pre", "kbd", "samp", "textarea", "template"}
    VOID = {"area", "br", "col", "hr", "img", "input", "link", "meta", "source", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.texts: list[str] = []
        self.links: list[str] = []
        self.data_script = False

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.open.append(tag)
        values = dict(attrs)
        # Wording handed to a script as JSON (json_script) is shown by the script.
        self.data_script = tag == "script" and values.get("type") == "application/json"
        if tag == "a" and values.get("href"):
            self.links.append(values["href"])
        for name in ("title", "placeholder", "aria-label", "alt"):
            if values.get(name):
                self.texts.append(values[name])

    def handle_endtag(self, tag):
        self.data_script = False
        while self.open and self.open.pop() != tag:
            pass

    def handle_data(self, data):
        if self.data_script:
            self.texts += [t for t in _strings(json.loads(data)) if not _KEY.fullmatch(t)]
        elif not self.VERBATIM.intersection(self.open) and data.strip():
            self.texts.append(data.strip())


_KEY = re.compile(r"[\w.:/-]*")  # rule keys, ids and URLs in the JSON, not wording


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


_RAW_KEY = re.compile(r"\b[a-z]+_[a-z_]+\b")  # first_name, in_last_days: a key, not a word


def english_in(texts: list[str]) -> list[str]:
    found = []
    for text in texts:
        if _RAW_KEY.search(text):
            found.append(f"raw key in {text[:100]!r}")
            continue
        # Codes and versions ("v2", "salon-2026") are data, not wording.
        words = re.findall(r"[^\W\d_]+", re.sub(r"\S*\d\S*", " ", text))
        hits = [w for w in words if w.lower() in ENGLISH and w.lower() not in ALLOWED]
        # One English-looking word alone may be a name or a code; two in a text is wording.
        if len(hits) >= 2 or (hits and len(words) == 1 and text == hits[0]):
            found.append(f"{' '.join(hits)} in {text[:100]!r}")
    return found


def _walk(client, language: str) -> dict[str, list[str]]:
    seen, found, shapes = set(), {}, Counter()
    queue = deque([("/", 0)])
    while queue and len(seen) < MAX_PAGES:
        url, depth = queue.popleft()
        shape = _ID.sub("<id>", urlsplit(url).path)
        if url in seen or shapes[shape] >= SAME_KIND:
            continue
        seen.add(url)
        shapes[shape] += 1
        response = client.get(url, HTTP_ACCEPT_LANGUAGE=language)
        if response.status_code in (301, 302):
            queue.appendleft((response["Location"], depth))
            continue
        content_type = response.get("Content-Type", "")
        if response.status_code != 200 or not content_type.startswith("text/html"):
            continue
        page = _Page()
        page.feed(response.content.decode())
        problems = english_in(page.texts)
        if language != "fr":  # English pages: only raw keys are wrong
            problems = [p for p in problems if p.startswith("raw key")]
        if problems:
            found[url] = problems
        if depth < 2:
            for href in page.links:
                link = urldefrag(href)[0]
                parts = urlsplit(link)
                if parts.netloc or not parts.path.startswith("/"):
                    continue
                if parts.path.startswith(SKIP_PATHS) or link in seen:
                    continue
                queue.append((link, depth + 1))
    return found


@pytest.mark.parametrize(
    ("html", "english"),
    [
        ("<p>Save the segment</p>", ["Save the"]),
        ("<button>Delete</button>", ["Delete"]),
        ('<input placeholder="Search by name">', ["Search by"]),
        (
            '<script type="application/json">{"ops": [["is_valid", "is not given"]]}</script>',
            ["is not"],
        ),
        ("<p>Enregistrer le segment</p><button>Supprimer</button>", []),
        ("<p>Contacts · Date · Total · 12 minutes</p>", []),
        (
            '<script type="application/json">{"ops": [["is_not_empty", "est renseigné"]]}</script>',
            [],
        ),
        ("<code>first_name is_valid</code><p>formulaire-magasin-v1</p>", []),
        ("<option>first_name</option>", ["first_name"]),
        ('<script type="application/json">{"label": "in_last_days"}</script>', []),
        ("<p>Liste des unités du réseau</p>", []),
    ],
)
def test_the_reader_finds_english_among_french(html, english):
    page = _Page()
    page.feed(html)
    found = english_in(page.texts)
    assert len(found) == len(english)
    assert all(words in text for words, text in zip(english, found, strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_demo_reads_in_french_and_shows_no_raw_key(db, client, language):
    from enseigne.network.models import User

    seed.seed(contacts_total=300)
    found = {}
    for email in PERSONAS:
        client.force_login(User.objects.get(email=email))
        pages = _walk(client, language)
        found.update({f"{email} {url}": texts for url, texts in pages.items()})
        client.logout()
    assert not found, "\n".join(f"{page}: {texts}" for page, texts in sorted(found.items()))
