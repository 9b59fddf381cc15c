"""Credentials: argon2id password hashes, TOTP second factor, lock-out, sessions, API tokens.

Secrets are never stored: passwords as argon2id hashes, session ids and API tokens as
SHA-256 of a random value the client holds (so a copy of the control plane cannot be
replayed as a session). A failed sign-in never says which part was wrong.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.orm import Session

from nominal.govern.models import ApiToken, Purpose, User, UserSession

MIN_PASSWORD_LENGTH = 12
MAX_FAILED_ATTEMPTS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=8)
TOKEN_PREFIX = "nmt"  # noqa: S105 - a label, not a secret

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_dummy: list[str] = []


def _dummy_hash() -> str:
    """Verifying against this when the username is unknown keeps the timing the same."""
    if not _dummy:
        _dummy.append(_hasher.hash(secrets.token_urlsafe(16)))
    return _dummy[0]


class AuthError(Exception):
    """Sign-in failed; the message is deliberately the same whatever went wrong."""

    GENERIC = "Enter a correct username, password and security code"

    def __init__(self, detail: str = "") -> None:
        super().__init__(self.GENERIC)
        self.detail = detail  # for the audit log only, never shown


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password must have at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_now(secret: str, at: datetime | None = None) -> str:
    return pyotp.TOTP(secret).at(at or datetime.now(UTC))


def totp_uri(user: User, issuer: str = "nominal") -> str:
    assert user.totp_secret
    return pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.username, issuer_name=issuer)


def _totp_step(secret: str, code: str, at: datetime) -> int | None:
    """The time step ``code`` is valid for (current one, or one either side), else None."""
    totp = pyotp.TOTP(secret)
    code = code.strip().replace(" ", "")
    for offset in (0, -1, 1):
        moment = at + timedelta(seconds=offset * totp.interval)
        if hmac.compare_digest(totp.at(moment), code):
            return int(moment.timestamp()) // totp.interval
    return None


def authenticate(
    session: Session, username: str, password: str, code: str, at: datetime | None = None
) -> User:
    """Check password and TOTP code; count failures and lock the account after too many.

    A TOTP code is accepted once only (its time step is remembered), so a code seen
    over someone's shoulder cannot be replayed.
    """
    at = at or datetime.now(UTC)
    user = session.scalar(sa.select(User).where(User.username == username.strip()))
    password_ok = verify_password(user.password_hash if user else None, password)
    if user is None:
        raise AuthError("unknown user")
    if user.locked_until is not None and _aware(user.locked_until) > at:
        raise AuthError("account locked")
    if not user.active:
        raise AuthError("account disabled")
    step = _totp_step(user.totp_secret, code, at) if user.totp_secret and code else None
    replayed = step is not None and user.last_totp_step is not None and step <= user.last_totp_step
    if not password_ok or step is None or replayed:
        user.failed_attempts = (user.failed_attempts or 0) + 1
        if user.failed_attempts >= MAX_FAILED_ATTEMPTS:
            user.locked_until = at + LOCKOUT
            user.failed_attempts = 0
        session.flush()
        raise AuthError("bad password" if not password_ok else "bad or replayed code")
    user.failed_attempts = 0
    user.locked_until = None
    user.last_totp_step = step
    session.flush()
    return user


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# -- sessions ---------------------------------------------------------------------------
def start_session(session: Session, user: User, client: str | None = None) -> str:
    """A new session for ``user``; returns the secret id for the cookie (only its hash is stored)."""
    secret = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    session.add(
        UserSession(
            id=_digest(secret),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_LIFETIME,
            client=client,
        )
    )
    session.flush()
    return secret


def load_session(session: Session, secret: str) -> UserSession | None:
    found = session.get(UserSession, _digest(secret))
    if found is None:
        return None
    if _aware(found.expires_at) <= datetime.now(UTC):
        session.delete(found)
        return None
    return found


def end_session(session: Session, secret: str) -> None:
    found = session.get(UserSession, _digest(secret))
    if found is not None:
        session.delete(found)


# -- API tokens -------------------------------------------------------------------------
@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once
    token_id: str


def issue_token(
    session: Session,
    user: User,
    purpose: Purpose,
    label: str | None = None,
    days: int | None = 90,
) -> IssuedToken:
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            token_id=token_id,
            token_hash=_digest(secret),
            user_id=user.id,
            purpose_id=purpose.id,
            label=label,
            expires_at=datetime.now(UTC) + timedelta(days=days) if days else None,
        )
    )
    session.flush()
    return IssuedToken(f"{TOKEN_PREFIX}_{token_id}_{secret}", token_id)


def check_token(session: Session, presented: str) -> ApiToken | None:
    """The live token for a presented bearer value, else None."""
    parts = presented.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    token = session.scalar(sa.select(ApiToken).where(ApiToken.token_id == parts[1]))
    if token is None or not hmac.compare_digest(token.token_hash, _digest(parts[2])):
        return None
    now = datetime.now(UTC)
    if token.revoked_at is not None or (
        token.expires_at is not None and _aware(token.expires_at) <= now
    ):
        return None
    if not token.user.active:
        return None
    return token
