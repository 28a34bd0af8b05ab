"""API bearer tokens: random secrets shown once, stored as SHA-256, with scopes and an expiry.

A token never holds more than its user's rights; its scopes narrow them further (which part
of the API it may write, or only read) and it stops at ``expires_at`` or when revoked.
Tokens always expire: a forgotten integration's key should not open the contact base years
later (GitLab, for one, caps personal tokens at a year for the same reason). The limit is a
year; the default 90 days.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from enum import Enum

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from enseigne.network.models import ApiToken, TokenScope, User
from enseigne.network.services import audit

TOKEN_PREFIX = "ens_"  # noqa: S105 (a public prefix, not a secret)
LIFETIME_DAYS = (30, 90, 180, 365)
DEFAULT_LIFETIME_DAYS = 90
MAX_LIFETIME_DAYS = 365
WRITE_SCOPES = (TokenScope.CONTACTS, TokenScope.CONVERSIONS, TokenScope.CAMPAIGNS)

# Which scope opens each part of the API (the first segment after /api/v1/). Units are read
# by every token: each integration needs the unit ids it reports for.
_API_AREAS: dict[str, TokenScope | None] = {
    "units": None,
    "contacts": TokenScope.CONTACTS,
    "imports": TokenScope.CONTACTS,
    "segments": TokenScope.CONTACTS,
    # The customer base (HQ only): read with a contacts or read-only token.
    "people": TokenScope.CONTACTS,
    "conversions": TokenScope.CONVERSIONS,
    # A till's orders are its sales: the same scope as conversions.
    "orders": TokenScope.CONVERSIONS,
    "campaigns": TokenScope.CAMPAIGNS,
    "templates": TokenScope.CAMPAIGNS,
    "local-versions": TokenScope.CAMPAIGNS,
    "assets": TokenScope.CAMPAIGNS,
    "openapi.json": None,
    "docs": None,
}
_API_ROOT = "/api/v1/"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
# POSTs that only compute an answer (nothing is saved): a read-only token may call them.
_READING_POSTS = ("/segments/count", "/preview")


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def clean_scopes(scopes) -> list[str]:
    """The scopes as stored (sorted, known, at least one, read-only alone)."""
    chosen = sorted({str(s) for s in scopes or ()})
    if not chosen:
        raise ValidationError({"scopes": _("Choose at least one scope.")})
    unknown = [s for s in chosen if s not in TokenScope.values]
    if unknown:
        raise ValidationError({"scopes": _("Unknown scope: %(s)s.") % {"s": ", ".join(unknown)}})
    if TokenScope.READ_ONLY in chosen and len(chosen) > 1:
        raise ValidationError(
            {
                "scopes": _(
                    "A read-only token cannot also hold a write scope: choose one or the other."
                )
            }
        )
    return chosen


def _node_path(user: User) -> str:
    """Where the token's audit line belongs: the user's highest node (in their own scope)."""
    paths = sorted(user.memberships.values_list("node__path", flat=True), key=len)
    return paths[0] if paths else ""


@transaction.atomic
def token_create(
    *,
    user: User,
    name: str = "",
    scopes=WRITE_SCOPES,
    lifetime_days: int = DEFAULT_LIFETIME_DAYS,
    actor: User | None = None,
) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns it with the plain key, which is never stored."""
    chosen = clean_scopes(scopes)
    if not 1 <= lifetime_days <= MAX_LIFETIME_DAYS:
        raise ValidationError(
            {
                "lifetime_days": _("A token lasts from 1 to %(max)s days.")
                % {"max": MAX_LIFETIME_DAYS}
            }
        )
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=key[:10],
        key_hash=_hash(key),
        scopes=chosen,
        expires_at=timezone.now() + dt.timedelta(days=lifetime_days),
    )
    audit(
        actor=actor or user,
        action="api_token.create",
        target=token,
        node_path=_node_path(user),
        changes={"name": name, "scopes": chosen, "expires_at": token.expires_at.isoformat()},
    )
    return token, key


@transaction.atomic
def token_revoke(*, actor: User, token: ApiToken) -> bool:
    """Revoke once (compare-and-swap: a second revocation changes and logs nothing)."""
    now = timezone.now()
    revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now)
    if revoked:
        token.revoked_at = now
        audit(
            actor=actor,
            action="api_token.revoke",
            target=token,
            node_path=_node_path(token.user),
            changes={"name": token.name, "prefix": token.prefix},
        )
    return bool(revoked)


def tokens_for_user(user: User):
    return ApiToken.objects.filter(user=user)


def get_token_for_user(user: User, public_id) -> ApiToken:
    """A user's own token; anyone else's is not found."""
    token = ApiToken.objects.filter(user=user, public_id=public_id).first()
    if token is None:
        raise Http404
    return token


class Refusal(Enum):
    INVALID = "invalid"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Resolved:
    token: ApiToken | None
    refusal: Refusal | None


def resolve(key: str) -> Resolved:
    """The token behind ``key`` if it may be used now, else why not."""
    if not key.startswith(TOKEN_PREFIX):
        return Resolved(None, Refusal.INVALID)
    token = ApiToken.objects.select_related("user").filter(key_hash=_hash(key)).first()
    if token is None or token.revoked_at is not None or not token.user.is_active:
        return Resolved(None, Refusal.INVALID)
    now = timezone.now()
    if token.expires_at <= now:
        return Resolved(None, Refusal.EXPIRED)
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 300:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return Resolved(token, None)


def token_allows(token: ApiToken, method: str, path: str) -> bool:
    """Whether the token's scopes open this call (the user's role is checked afterwards,
    as for any call). Outside the API a token only reads."""
    scopes = set(token.scopes)
    is_read = method.upper() in _READS or (
        method.upper() == "POST" and path.endswith(_READING_POSTS)
    )
    if not path.startswith(_API_ROOT):
        return is_read
    area_name = path[len(_API_ROOT) :].split("/", 1)[0]
    if area_name not in _API_AREAS:
        return True  # an unknown address: the API answers 404 whatever the token
    area = _API_AREAS[area_name]
    if is_read:
        return area is None or TokenScope.READ_ONLY in scopes or area in scopes
    return TokenScope.READ_ONLY not in scopes and area is not None and area in scopes
