"""Stable hashes of contact identifiers, for suppression lists that keep no PII."""

from __future__ import annotations

import hashlib


def normalise_email(email: str) -> str:
    return email.strip().lower()


def identifier_hash(kind: str, value: str) -> str:
    """SHA-256 of ``kind:normalised value``; kind is 'email' or 'phone' (E.164)."""
    normalised = normalise_email(value) if kind == "email" else value.strip()
    return hashlib.sha256(f"{kind}:{normalised}".encode()).hexdigest()


# The same hash in SQL, for queries and generated columns (PostgreSQL; SQLite registers a
# Python function of the same name on each connection, see enseigne.lib.apps).
SHA256_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION enseigne_sha256(text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex') $$
"""
