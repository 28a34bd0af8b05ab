"""Text folded for search: case and accents ignored, so "dupre" finds "Dupré" and "oeuvre"
finds "Œuvre".

The same folding in three places that must agree: :func:`fold` in Python (the query, and
SQLite's ``enseigne_fold`` registered on each connection), and ``enseigne_fold`` in
PostgreSQL (``unaccent``, created by contacts' migration with the expression indexes that
make a prefix search an index scan).
"""

from __future__ import annotations

import unicodedata

from django.db.models import CharField, Func
from django.db.models.lookups import StartsWith

# Letters that NFKD leaves whole but PostgreSQL's unaccent rewrites.
_LETTERS = str.maketrans(
    {
        "œ": "oe",
        "Œ": "OE",
        "æ": "ae",
        "Æ": "AE",
        "ß": "ss",
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
    }
)


def fold(text: str | None) -> str | None:
    if text is None:
        return None
    decomposed = unicodedata.normalize("NFKD", text.translate(_LETTERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


class Fold(Func):
    function = "enseigne_fold"
    output_field = CharField()


@CharField.register_lookup
class Prefix(StartsWith):
    """``startswith`` that an index can answer under row-level security.

    PostgreSQL uses a condition as an index condition, ahead of the row-level policy, only
    when every function in it is leakproof; ``LIKE`` is not, the byte-wise range operators
    ``~>=~`` / ``~<~`` are (and so is ``enseigne_fold``, see FOLD_FUNCTION_SQL). A prefix
    *p* is the range [*p*, *p* with its last character's successor): exact, since UTF-8
    orders bytes as code points. Other engines keep ``LIKE 'p%'``.
    """

    lookup_name = "prefix"

    def as_sql(self, compiler, connection):
        return StartsWith(self.lhs, self.rhs).as_sql(compiler, connection)

    def as_postgresql(self, compiler, connection):
        prefix = self.rhs
        if not isinstance(prefix, str) or not prefix or not _has_successor(prefix[-1]):
            return self.as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return f"({lhs} ~>=~ %s AND {lhs} ~<~ %s)", (*lhs_params, prefix, *lhs_params, upper)


def _has_successor(char: str) -> bool:
    following = ord(char) + 1
    return following <= 0x10FFFF and not 0xD800 <= following <= 0xDFFF


# LEAKPROOF (only a superuser may say so; the migration does when it can, and the README
# says how otherwise): the function cannot fail on any text, so it reveals nothing about the
# rows a policy hides, and PostgreSQL may then search its index before applying the policy.
FOLD_FUNCTION_SQL = """
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE OR REPLACE FUNCTION enseigne_fold(text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$
"""
