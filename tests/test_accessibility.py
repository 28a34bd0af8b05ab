"""Every form field of the main pages has a name a screen reader can say, every page starts
with a skip link to its content, and ids are unique (fast: the HTML, no browser).
The browser check with axe-core is tests/test_browser_accessibility.py."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from tests.a11y_pages import LOGIN, PERSONAS, expected_status, main_pages

FIELDS = {"input", "select", "textarea"}
# Inputs a screen reader names by their own value or that nobody reaches.
SELF_NAMED = {"hidden", "submit", "button", "reset", "image"}


class FormAudit(HTMLParser):
    """Collects form fields, labels and ids of one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.ids: list[str] = []
        self.focusables: list[dict[str, str | None]] = []
        self._open_labels = 0
        self._labelled_text: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.append(attributes["id"] or "")
        if tag == "label":
            self._open_labels += 1
            if attributes.get("for"):
                self.label_for.add(attributes["for"] or "")
        if tag in FIELDS:
            self.fields.append({**attributes, "_tag": tag, "_in_label": str(self._open_labels)})
        focusable = (tag == "a" and attributes.get("href")) or tag in FIELDS | {"button"}
        if focusable and attributes.get("type") != "hidden":
            self.focusables.append({**attributes, "_tag": tag})

    def handle_endtag(self, tag):
        if tag == "label" and self._open_labels:
            self._open_labels -= 1

    def unnamed_fields(self) -> list[str]:
        ids = set(self.ids)
        missing = []
        for field in self.fields:
            if field["_tag"] == "input" and (field.get("type") or "text") in SELF_NAMED:
                continue
            named = (
                (field.get("id") and field["id"] in self.label_for)
                or field["_in_label"] != "0"
                or (field.get("aria-label") or "").strip()
                or (field.get("title") or "").strip()
                or any(part in ids for part in (field.get("aria-labelledby") or "").split())
            )
            if not named:
                missing.append(
                    f"<{field['_tag']} name={field.get('name')!r} id={field.get('id')!r}>"
                )
        return missing


def audit(html: str) -> FormAudit:
    parser = FormAudit()
    parser.feed(html)
    parser.close()
    return parser


def _check(html: str, where: str) -> list[str]:
    page = audit(html)
    problems = [f"{where}: field without a label {field}" for field in page.unnamed_fields()]
    duplicates = sorted({i for i in page.ids if page.ids.count(i) > 1})
    if duplicates:
        problems.append(f"{where}: duplicate ids {duplicates}")
    first = page.focusables[0] if page.focusables else {}
    if first.get("href") != "#content" or "skip-link" not in (first.get("class") or ""):
        problems.append(f"{where}: the first focusable element is not the skip link: {first}")
    if 'id="content"' not in html:
        problems.append(f"{where}: no #content target for the skip link")
    return problems


@pytest.mark.parametrize("language", ["fr", "en"])
def test_main_pages_of_every_persona_name_every_field(world, client, language):
    pages = main_pages(world)
    client.cookies["django_language"] = language
    problems = _check(client.get(LOGIN.url).content.decode(), f"anonymous {LOGIN.name}")
    for persona in PERSONAS:
        client.force_login(getattr(world, persona))
        client.cookies["django_language"] = language
        for page in pages:
            response = client.get(page.url, follow=True)
            assert response.status_code == expected_status(persona, page), (persona, page.name)
            problems += _check(response.content.decode(), f"{persona} {page.name}")
        client.logout()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "html, missing",
    [
        ('<input name="q">', ["<input name='q' id=None>"]),
        ('<input name="q" id="q"><label for="other">Q</label>', ["<input name='q' id='q'>"]),
        ('<select name="s" aria-label=" "></select>', ["<select name='s' id=None>"]),
        (
            '<textarea name="t" aria-labelledby="nowhere"></textarea>',
            ["<textarea name='t' id=None>"],
        ),
        ('<input type="checkbox" name="c">', ["<input name='c' id=None>"]),
        ('<input name="q" id="q"><label for="q">Q</label>', []),
        ("<label>Q <input name='q'></label>", []),
        ('<input name="q" aria-label="Search">', []),
        ('<span id="h">T</span><textarea name="t" aria-labelledby="x h"></textarea>', []),
        ('<input type="hidden" name="csrf"><input type="submit" value="OK">', []),
    ],
)
def test_the_audit_finds_fields_without_a_name(html, missing):
    assert audit(html).unnamed_fields() == missing
