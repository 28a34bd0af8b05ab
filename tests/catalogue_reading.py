"""Reading the gettext catalogue and the sources, for the catalogue completeness tests.

A small PO reader (no dependency: the format is a few line kinds), the strings Django's
``makemessages`` extracts from a copy of the sources, the visible text of a template that
is not inside a translation tag, and the user-facing strings of Python modules that are
not wrapped in gettext.
"""

from __future__ import annotations

import ast
import gc
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from django.template.base import Lexer, TokenType

BASE = Path(__file__).resolve().parent.parent
PO_PATH = BASE / "enseigne" / "locale" / "fr" / "LC_MESSAGES" / "django.po"


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False
    line: int = 0

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.msgctxt, self.msgid)

    @property
    def is_header(self) -> bool:
        return self.msgid == "" and self.msgctxt is None


def _unquote(text: str) -> str:
    body = text.strip()
    assert body.startswith('"') and body.endswith('"'), body
    return re.sub(
        r"\\(.)",
        lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)),
        body[1:-1],
    )


def read_po(path: Path) -> list[Entry]:
    entries: list[Entry] = []
    entry = Entry()
    target: tuple[str, int] | None = None

    def finish() -> None:
        nonlocal entry, target
        if target is not None:
            entries.append(entry)
        entry, target = Entry(), None

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw
        obsolete = line.startswith("#~")
        if obsolete:
            line = line[2:].lstrip()
        if not line.strip():
            finish()
            continue
        if line.startswith("#"):
            if target is not None and target[0] == "msgstr":
                finish()
            if line.startswith("#,"):
                entry.flags |= {f.strip() for f in line[2:].split(",")}
            continue
        keyword, _, rest = line.partition(" ")
        if line.startswith('"'):
            assert target is not None, f"{path}:{number}: text outside an entry"
            name, index = target
            value = _unquote(line)
            if name == "msgstr":
                entry.msgstr[index] += value
            else:
                setattr(entry, name, (getattr(entry, name) or "") + value)
            continue
        if keyword in ("msgctxt", "msgid") and target is not None and target[0] == "msgstr":
            finish()
        entry.obsolete = entry.obsolete or obsolete
        entry.line = entry.line or number
        if keyword.startswith("msgstr"):
            index = int(keyword[7:-1]) if "[" in keyword else 0
            while len(entry.msgstr) <= index:
                entry.msgstr.append("")
            entry.msgstr[index] = _unquote(rest)
            target = ("msgstr", index)
        elif keyword in ("msgid", "msgid_plural", "msgctxt"):
            setattr(entry, keyword, _unquote(rest))
            target = (keyword, 0)
        else:
            raise AssertionError(f"{path}:{number}: unexpected line {raw!r}")
    finish()
    return entries


def plural_count(entries: list[Entry]) -> int:
    header = next(e for e in entries if e.is_header)
    match = re.search(r"nplurals\s*=\s*(\d+)", header.msgstr[0])
    assert match, "the catalogue header declares no Plural-Forms"
    return int(match.group(1))


PLACEHOLDER = re.compile(r"%\((\w+)\)[sdifr]|%[sdifr]|\{(\w*)\}")


def placeholders(text: str) -> set[str]:
    return {m.group(0) for m in PLACEHOLDER.finditer(text.replace("%%", ""))}


# What makemessages reads: the Django project's own sources, as the catalogue is made.
SOURCE_DIRS = ("config", "enseigne", "templates")


def extract_catalogue(workdir: Path) -> list[Entry]:
    """The catalogue ``makemessages -l fr`` would write from the sources as they are now.

    It runs on a copy, so the committed catalogue is the one compared, never rewritten.
    """
    for name in SOURCE_DIRS:
        shutil.copytree(
            BASE / name,
            workdir / name,
            ignore=shutil.ignore_patterns("__pycache__", "*.mo", "tests"),
        )
    shutil.copy(BASE / "manage.py", workdir / "manage.py")
    result = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "fr", "--no-obsolete"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return read_po(workdir / PO_PATH.relative_to(BASE))


# --- templates -------------------------------------------------------------------------

# Words a template may show as they are, in both languages: the product's name, the
# language names (each in its own language), units and channel names.
UNTRANSLATED_WORDS = {"Enseigne", "English", "Français", "SMS", "px", "MJML", "CSV", "API"}
_WORD = re.compile(r"[^\W\d_]{2,}")
_VISIBLE_ATTRIBUTES = {"placeholder", "title", "alt", "aria-label"}
_VERBATIM = {"script", "style", "code", "pre", "kbd", "samp"}
_VOID = {"area", "br", "col", "hr", "img", "input", "link", "meta", "source", "wbr"}


def _template_skeleton(source: str) -> str:
    """The template with every translated or computed part replaced by a blank marker."""
    out, hidden = [], 0
    for token in Lexer(source).tokenize():
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0]
            if name in ("blocktranslate", "blocktrans", "comment"):
                hidden += 1
                out.append(" \x00 ")
            elif name in ("endblocktranslate", "endblocktrans", "endcomment"):
                hidden -= 1
            elif name in ("translate", "trans") and not hidden:
                out.append(" \x00 ")
        elif token.token_type == TokenType.VAR and not hidden:
            out.append(" \x00 ")
        elif token.token_type == TokenType.TEXT and not hidden:
            out.append(token.contents)
    return "".join(out)


def _english_words(text: str) -> list[str]:
    words = []
    for word in _WORD.findall(text):
        if word not in UNTRANSLATED_WORDS:
            words.append(word)
    return words


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.found: list[tuple[int, str]] = []

    def handle_starttag(self, tag, attrs):
        if tag not in _VOID:
            self.open.append(tag)
        for name, value in attrs:
            # An example value (a slug such as "salon-2026") is data, not wording.
            if (
                name in _VISIBLE_ATTRIBUTES
                and value
                and not re.fullmatch(r"[\w.-]*\d[\w.-]*", value)
            ) and _english_words(value):
                self.found.append((self.getpos()[0], f"{name}={value!r}"))

    def handle_endtag(self, tag):
        while self.open and self.open.pop() != tag:
            pass

    def handle_data(self, data):
        if not _VERBATIM.intersection(self.open) and _english_words(data):
            self.found.append((self.getpos()[0], data.replace("\x00", "…").strip()))


def _shown(path: Path) -> str:
    return str(path.relative_to(BASE)) if path.is_relative_to(BASE) else str(path)


def untranslated_template_text(path: Path) -> list[str]:
    parser = _VisibleText()
    parser.feed(_template_skeleton(path.read_text(encoding="utf-8")))
    parser.close()
    return [f"{_shown(path)}:{line}: {text!r}" for line, text in parser.found]


# --- Python ----------------------------------------------------------------------------

_ERRORS = {"ValidationError", "FieldError", "PermissionDenied"}
_MESSAGE_LEVELS = {"success", "error", "info", "warning", "add_message"}
_VISIBLE_KEYWORDS = {"label", "help_text", "verbose_name", "empty_label"}


def _is_wording(node: ast.AST) -> bool:
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value.strip()
        return bool(_WORD.search(text)) and (" " in text or text[:1].isupper())
    return False


def _parse(path: Path) -> ast.Module:
    # CPython 3.11.7's AST constructor keeps its recursion counter in interpreter-wide state
    # (gh-106905, fixed in later releases): once in CI, after the Spark test left py4j's threads
    # and finalizers behind, a parse raised "SystemError: AST constructor recursion depth
    # mismatch". No collection during the parse, and a second try if it happens anyway.
    source = path.read_text(encoding="utf-8")
    enabled = gc.isenabled()
    gc.disable()
    try:
        try:
            return ast.parse(source)
        except SystemError:
            return ast.parse(source)
    finally:
        if enabled:
            gc.enable()


def unmarked_python_strings(path: Path) -> list[str]:
    """Literal wording given to an error, a flash message or a form label without gettext."""
    found = []
    for call in ast.walk(_parse(path)):
        if not isinstance(call, ast.Call):
            continue
        func = call.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        candidates: list[ast.AST] = []
        if name in _ERRORS and call.args:
            first = call.args[0]
            candidates = list(first.values) if isinstance(first, ast.Dict) else [first]
        elif (
            name in _MESSAGE_LEVELS
            and isinstance(func, ast.Attribute)
            and getattr(func.value, "id", "") == "messages"
            and len(call.args) > 1
        ):
            candidates = [call.args[1]]
        candidates += [kw.value for kw in call.keywords if kw.arg in _VISIBLE_KEYWORDS]
        for node in candidates:
            if _is_wording(node):
                text = ast.unparse(node)[:90]
                found.append(f"{_shown(path)}:{node.lineno}: {name}({text})")
    return found


# A number printed just before a plural word translated on its own ("{{ n }} contacts"):
# French says "1 contact", so the word must come from a plural form of the count.
_COUNT_THEN_PLURAL = re.compile(
    r"\{\{ ?[\w.]+(?:\|[\w:\"']+)* ?\}\}(?:\s|</?\w+[^>]*>)*"
    r"\{% (?:translate|trans) [\"']([a-z]+s)\b[^\"']*[\"'] %\}"
)


def counts_without_plural(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return [
        f"{_shown(path)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)[-60:]!r}"
        for m in _COUNT_THEN_PLURAL.finditer(text)
    ]
