"""A person's public id, derived from its row id: no column, no index to keep up.

An import makes a person per new customer; a stored random public id (the column, the
expression making it and its unique index) was 4.5 µs of the database's CPU per person
out of 7.5 (docs/benchmarks.md, "Person matching at write time", fourth pass). The id a
URL or the API shows is instead the row id passed through a keyed permutation of 128
bits: as opaque as a random UUID to whoever lacks the key (nothing sequential shows, a
neighbour's id cannot be guessed), and turned back into the row id without a lookup.

The permutation is a four-round Feistel network over two 64-bit halves, the row id in
one and zeros in the other, whose round function is BLAKE2b keyed with a key derived
from ``SECRET_KEY`` (four rounds of a pseudo-random function make a strong pseudo-random
permutation). Reading an id back checks that the zero half came back: a made-up id
passes with a chance of 2⁻⁶⁴, and answers "no such person" otherwise. Ids made under a
key listed in ``SECRET_KEY_FALLBACKS`` still read back, so rotating the secret key
keeps persons' links working while the old key stays listed (Django's own rule for
signed values); once it is dropped, the persons' ids change.
"""

from __future__ import annotations

import hashlib
import uuid
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.utils.crypto import salted_hmac

_ROUNDS = 4
_HALF = (1 << 64) - 1
_SALT = "enseigne.identity.person-public-id"


@lru_cache(maxsize=8)
def _round_keys(secret: str) -> tuple[Any, ...]:
    """One keyed BLAKE2b a round, ready to copy (keying it each time was most of the cost)."""
    base = salted_hmac(_SALT, "", secret=secret, algorithm="sha256").digest()
    return tuple(hashlib.blake2b(key=base + bytes([i]), digest_size=8) for i in range(_ROUNDS))


def _f(keyed: Any, half: int) -> int:
    hasher = keyed.copy()
    hasher.update(half.to_bytes(8, "big"))
    return int.from_bytes(hasher.digest(), "big")


def _keys() -> list[tuple[Any, ...]]:
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
    return [_round_keys(secret) for secret in secrets]


def public_id_of(pk: int) -> uuid.UUID:
    """The public id of the person whose row id is ``pk``."""
    left, right = pk, 0
    for key in _keys()[0]:
        left, right = right, left ^ _f(key, right)
    return uuid.UUID(int=(left << 64) | right)


def pk_of(public_id: uuid.UUID | str) -> int | None:
    """The row id behind a person's public id, or None if it is not one (malformed, made
    up, or made under a key no longer listed)."""
    try:
        value = public_id.int if isinstance(public_id, uuid.UUID) else uuid.UUID(public_id).int
    except (ValueError, AttributeError, TypeError):
        return None
    for keys in _keys():
        left, right = value >> 64, value & _HALF
        for key in reversed(keys):
            left, right = right ^ _f(key, left), left
        if right == 0 and 0 < left < 1 << 63:
            return left
    return None


def pks_of(public_ids: list) -> list[int]:
    """The row ids behind those of ``public_ids`` that are persons' ids."""
    return [pk for value in public_ids if (pk := pk_of(value)) is not None]
