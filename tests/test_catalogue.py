"""The French catalogue is complete and nothing the UI shows escapes it.

Every string marked for translation in the code and templates is in the committed
catalogue, translated (no fuzzy entry, every plural form), with the same placeholders,
and compiled; no template shows English text outside a translation tag; no error, flash
message or form label in Python is a bare literal. The English UI is the msgids
themselves, so the French catalogue is the only one to keep complete.
"""

from __future__ import annotations

import gettext
import re
import shutil

import pytest

from tests.catalogue_reading import (
    BASE,
    PO_PATH,
    counts_without_plural,
    extract_catalogue,
    placeholders,
    plural_count,
    read_po,
    unmarked_python_strings,
    untranslated_template_text,
)

ENTRIES = read_po(PO_PATH)
MESSAGES = [e for e in ENTRIES if not e.is_header and not e.obsolete]


def _where(entry) -> str:
    return f"django.po:{entry.line}: {entry.msgid[:70]!r}"


def test_the_reader_sees_the_whole_catalogue():
    # Guards the tests below against a reader that silently drops entries.
    assert len(MESSAGES) > 900
    assert plural_count(ENTRIES) == 2
    assert sum(1 for e in MESSAGES if e.msgid_plural) > 20
    assert sum(line.startswith("msgid ") for line in PO_PATH.read_text().splitlines()) == len(
        ENTRIES
    )


def test_no_entry_is_fuzzy_obsolete_or_untranslated():
    problems = []
    forms = plural_count(ENTRIES)
    for entry in ENTRIES:
        if entry.is_header:
            continue
        if entry.obsolete:
            problems.append(f"{_where(entry)} is obsolete (#~): remove it")
        if "fuzzy" in entry.flags:
            problems.append(f"{_where(entry)} is fuzzy")
        expected = forms if entry.msgid_plural is not None else 1
        if len(entry.msgstr) != expected:
            problems.append(f"{_where(entry)} has {len(entry.msgstr)} forms, not {expected}")
        for index, text in enumerate(entry.msgstr):
            if not text.strip():
                problems.append(f"{_where(entry)} form {index} is not translated")
    assert problems == []


def test_translations_keep_the_placeholders():
    problems = []
    for entry in MESSAGES:
        if entry.msgid_plural is None:
            if placeholders(entry.msgstr[0]) != placeholders(entry.msgid):
                problems.append(f"{_where(entry)}: {entry.msgstr[0]!r}")
            continue
        allowed = placeholders(entry.msgid) | placeholders(entry.msgid_plural)
        for text in entry.msgstr:
            if not placeholders(text) <= allowed:
                problems.append(f"{_where(entry)}: {text!r} uses a placeholder not given")
        # The "many" form shows every value the English plural shows.
        if placeholders(entry.msgid_plural) - placeholders(entry.msgstr[-1]):
            problems.append(f"{_where(entry)}: {entry.msgstr[-1]!r} drops a value")
    assert problems == []


def test_the_compiled_catalogue_is_the_po_file():
    with open(PO_PATH.with_suffix(".mo"), "rb") as handle:
        compiled = gettext.GNUTranslations(handle)._catalog  # type: ignore[attr-defined]
    expected = {}
    for entry in MESSAGES:
        key = entry.msgid if entry.msgctxt is None else f"{entry.msgctxt}\x04{entry.msgid}"
        if entry.msgid_plural is None:
            expected[key] = entry.msgstr[0]
        else:
            expected.update({(key, i): text for i, text in enumerate(entry.msgstr)})
    compiled = {k: v for k, v in compiled.items() if k != ""}
    missing = sorted(str(k)[:70] for k in expected.keys() - compiled.keys())
    stale = sorted(str(k)[:70] for k in compiled.keys() - expected.keys())
    differ = sorted(
        str(k)[:70] for k in expected.keys() & compiled.keys() if expected[k] != compiled[k]
    )
    assert (missing, stale, differ) == ([], [], []), (
        "run: cd enseigne && django-admin compilemessages -l fr"
    )


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    # makemessages drives GNU gettext (xgettext, msgmerge); `./dev test` installs it.
    assert shutil.which("xgettext") and shutil.which("msgmerge"), "install GNU gettext"
    return extract_catalogue(tmp_path_factory.mktemp("makemessages"))


def test_every_marked_string_is_in_the_catalogue(extracted):
    committed = {e.key: e for e in MESSAGES}
    found = {e.key: e for e in extracted if not e.is_header}
    missing = [f"{k[1][:80]!r}" for k in found.keys() - committed.keys()]
    unused = [_where(committed[k]) for k in committed.keys() - found.keys()]
    plural = [
        _where(committed[k])
        for k in found.keys() & committed.keys()
        if found[k].msgid_plural != committed[k].msgid_plural
    ]
    assert (sorted(missing), sorted(unused), sorted(plural)) == ([], [], []), (
        "run makemessages -l fr --no-obsolete from the project root and translate"
    )


def test_templates_show_no_untranslated_text():
    found = []
    for path in sorted((BASE / "templates").rglob("*.html")):
        found += untranslated_template_text(path)
    assert found == []


def test_counts_are_printed_with_a_plural_form():
    # "segment(s)" and "{{ n }} contacts" read "1 contacts" in French: each count takes
    # blocktranslate count / ngettext.
    found = [_where(e) for e in MESSAGES if re.search(r"[^\W\d_]\(s\)", e.msgid)]
    for path in sorted((BASE / "templates").rglob("*.html")):
        found += counts_without_plural(path)
    assert found == []


# The API's modules are reworked by the API errors work (one translated error shape); the
# demo writes its own data (in French) rather than wording.
PYTHON_EXEMPT = ("enseigne/demo/",)


def test_python_wording_goes_through_gettext():
    found = []
    for path in sorted((BASE / "enseigne").rglob("*.py")):
        relative = str(path.relative_to(BASE))
        if "migrations" in path.parts or any(part in relative for part in PYTHON_EXEMPT):
            continue
        found += unmarked_python_strings(path)
    assert found == []


# The detectors themselves: each finds what it is for and lets translated text through.


def test_the_po_reader_flags_fuzzy_missing_forms_and_untranslated(tmp_path):
    po = tmp_path / "django.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Plural-Forms: nplurals=2; plural=(n > 1);\\n"\n\n'
        '#, fuzzy\nmsgid "Save"\nmsgstr "Enregistrer"\n\n'
        'msgid "%(n)s row"\nmsgid_plural "%(n)s rows"\nmsgstr[0] "%(n)s ligne"\n\n'
        'msgctxt "segment operator"\nmsgid "is"\nmsgstr ""\n\n'
        'msgid ""\n"Two "\n"lines"\nmsgstr "Deux "\n"lignes"\n\n'
        '#~ msgid "Gone"\n#~ msgstr "Parti"\n',
        encoding="utf-8",
    )
    entries = read_po(po)
    by_id = {e.msgid: e for e in entries}
    assert plural_count(entries) == 2
    assert "fuzzy" in by_id["Save"].flags
    assert by_id["%(n)s row"].msgstr == ["%(n)s ligne"]
    assert by_id["is"].key == ("segment operator", "is") and by_id["is"].msgstr == [""]
    assert by_id["Two lines"].msgstr == ["Deux lignes"]
    assert by_id["Gone"].obsolete


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("<p>Hello {{ name }}</p>", ["Hello"]),
        ('<input placeholder="Search contacts">', ["Search contacts"]),
        ('<nav aria-label="breadcrumb"></nav>', ["breadcrumb"]),
        ("<td>{{ n }} contacts</td>", ["contacts"]),
        ("{% load i18n %}<p>{% translate 'Hello' %} {{ name }}</p>", []),
        ("{% blocktranslate %}Hello {{ name }}{% endblocktranslate %}", []),
        ("<code>first_name</code><script>let a = 'x y';</script>", []),
        ('<input placeholder="salon-2026"> <span>SMS</span> · 12 px', []),
        ("{# A comment in English #}<p>{{ value }}</p>", []),
    ],
)
def test_the_template_scan_finds_visible_english(tmp_path, source, found):
    path = tmp_path / "page.html"
    path.write_text(source, encoding="utf-8")
    reported = untranslated_template_text(path)
    assert len(reported) == len(found)
    assert all(text in line for text, line in zip(found, reported, strict=True))


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ('raise ValidationError("Give a name.")', True),
        ('raise ValidationError({"name": f"{x} is taken."})', True),
        ('messages.success(request, "Saved.")', True),
        ('forms.CharField(label="First name")', True),
        ('raise ValidationError(_("Give a name."))', False),
        ('raise ValidationError({"name": _("%(x)s is taken.") % {"x": x}})', False),
        ('forms.CharField(label=_("First name"), help_text=gettext_lazy("Or empty."))', False),
        ("raise ValidationError(exc.messages)", False),
    ],
)
def test_the_python_scan_finds_bare_wording(tmp_path, source, flagged):
    path = tmp_path / "module.py"
    path.write_text(source + "\n", encoding="utf-8")
    assert bool(unmarked_python_strings(path)) is flagged


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ('{{ n }} {% translate "contacts" %}', True),
        ('<b>{{ n|intcomma }}</b> <span>{% translate "rows rejected" %}</span>', True),
        ('{{ tag }}</span> <a href="?">{% translate "clear" %}</a>', False),
        (
            "{% blocktranslate count n=n %}{{ n }} contact{% plural %}{{ n }} contacts{% endblocktranslate %}",
            False,
        ),
    ],
)
def test_the_plural_scan_finds_a_count_before_a_plural_word(tmp_path, source, flagged):
    path = tmp_path / "page.html"
    path.write_text(source, encoding="utf-8")
    assert bool(counts_without_plural(path)) is flagged
