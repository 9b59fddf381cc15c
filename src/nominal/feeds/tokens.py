"""Feed API tokens: a partner system's bearer credential, scoped to partner and feeds.

The token is ``nmf_<id>_<secret>``; the control plane keeps the id and the SHA-256 of
the secret only, so a copy of the database does not let anyone push or pull.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nominal.feeds.models import FeedToken

PREFIX = "nmf"


@dataclass(frozen=True)
class IssuedFeedToken:
    token: str  # shown once
    token_id: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_feed_token(
    session: Session,
    partner_code: str,
    feeds: list[str],
    *,
    can_pull: bool = False,
    label: str | None = None,
    days: int | None = 365,
) -> IssuedFeedToken:
    """Issue a token for ``partner_code`` that may push to ``feeds`` (and pull if allowed)."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    session.add(
        FeedToken(
            token_id=token_id,
            token_hash=_digest(secret),
            partner_code=partner_code,
            feeds_json=json.dumps(sorted(set(feeds))),
            can_pull=can_pull,
            label=label,
            expires_at=datetime.now(UTC) + timedelta(days=days) if days else None,
        )
    )
    session.flush()
    return IssuedFeedToken(f"{PREFIX}_{token_id}_{secret}", token_id)


def check_feed_token(session: Session, presented: str) -> FeedToken | None:
    """The live token for a presented bearer value, else None (and records its use)."""
    parts = presented.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    token = session.scalar(sa.select(FeedToken).where(FeedToken.token_id == parts[1]))
    if token is None or not hmac.compare_digest(token.token_hash, _digest(parts[2])):
        return None
    now = datetime.now(UTC)
    expires = token.expires_at
    if expires is not None and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    if token.revoked_at is not None or (expires is not None and expires <= now):
        return None
    token.last_used_at = now
    return token


def revoke_feed_token(session: Session, token_id: str) -> bool:
    token = session.scalar(sa.select(FeedToken).where(FeedToken.token_id == token_id))
    if token is None:
        return False
    token.revoked_at = datetime.now(UTC)
    return True
