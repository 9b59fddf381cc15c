"""Browser security: signed session cookies, CSRF tokens, sign-in throttling, response headers.

* The session cookie holds only a random secret, signed with the hub's session secret;
  the control plane stores its SHA-256. A visitor who has not signed in still gets a
  (signed, random) cookie so that the sign-in form can carry a CSRF token; signing in
  always issues a new secret (no session fixation).
* CSRF: every unsafe request authenticated by the cookie must carry
  ``HMAC(session secret, cookie secret)`` as the form field ``csrf_token`` or the
  ``X-CSRF-Token`` header. Bearer-token requests carry no ambient authority and are exempt.
* Headers: a Content-Security-Policy with a fresh nonce per response and no
  ``unsafe-inline``; HSTS; ``frame-ancestors 'none'``; nosniff; a strict referrer policy.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE_NAME = "nominal_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class CookieJar:
    """Signs and reads the session cookie; derives CSRF tokens from it."""

    secret: bytes
    secure: bool = True
    max_age: int = 8 * 3600

    def __post_init__(self) -> None:
        self._signer = URLSafeSerializer(self.secret.hex(), salt="nominal-session")

    def new_secret(self) -> str:
        return secrets.token_urlsafe(32)

    def read(self, request: Request) -> str | None:
        raw = request.cookies.get(COOKIE_NAME)
        if not raw:
            return None
        try:
            value = self._signer.loads(raw)
        except BadSignature:
            return None
        return value if isinstance(value, str) else None

    def write(self, response: Response, value: str) -> None:
        response.set_cookie(
            COOKIE_NAME,
            self._signer.dumps(value),
            max_age=self.max_age,
            httponly=True,
            secure=self.secure,
            samesite="lax",
            path="/",
        )

    def csrf_token(self, cookie_secret: str) -> str:
        return hmac.new(self.secret, f"csrf|{cookie_secret}".encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, cookie_secret: str | None, presented: str | None) -> bool:
        if not cookie_secret or not presented:
            return False
        return hmac.compare_digest(self.csrf_token(cookie_secret), presented)


@dataclass
class RateLimiter:
    """A sliding-window limit on sign-in attempts per client address and per username.

    In memory, per server process: it blunts online guessing; the per-account
    lock-out in the control plane is the durable limit. Its memory is bounded by the
    clients and usernames seen in the last window: once a window has passed since the
    last sweep, keys whose hits have all expired are dropped (without that, every
    address or username ever tried kept an entry for the life of the process).
    """

    per_client: int = 10
    per_username: int = 5
    window: float = 60.0
    _hits: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _swept: float = field(default_factory=time.monotonic)

    def __len__(self) -> int:
        """How many clients and usernames are tracked."""
        return len(self._hits)

    def _sweep(self, now: float) -> None:
        if now - self._swept < self.window:
            return
        self._swept = now
        for key in [
            k for k, hits in self._hits.items() if not hits or now - hits[-1] > self.window
        ]:
            del self._hits[key]

    def allow(self, client: str, username: str) -> bool:
        now = time.monotonic()
        keys = ((f"c:{client}", self.per_client), (f"u:{username.lower()}", self.per_username))
        with self._lock:
            self._sweep(now)
            for key, limit in keys:
                hits = self._hits[key]
                while hits and now - hits[0] > self.window:
                    hits.popleft()
                if len(hits) >= limit:
                    return False
            for key, _limit in keys:
                self._hits[key].append(now)
            return True


def content_security_policy(nonce: str) -> str:
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            f"style-src 'self' 'nonce-{nonce}'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response (and the CSP nonce to
    ``request.state.csp_nonce`` for the templates).

    Plain ASGI rather than ``@app.middleware("http")``: that wraps every request and
    response in extra tasks and memory streams, a fixed cost each API call paid.
    """

    def __init__(self, app: ASGIApp, hsts: bool = True) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = content_security_policy(nonce)
                if self.hsts:
                    headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                if not static:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
