"""Alerts: a partner subscribes to events on the nominals it works with.

The nominals a partner *works with* are those holding at least one of its own
records (``gold.nominal_records`` of the datasets its feed contracts provide). Three
kinds of alert:

* ``new_incident``: an event from **another** partner's dataset, received by the hub
  after the subscription last looked;
* ``new_agency``: an agency involved with the nominal for the first time;
* ``risk_threshold``: the nominal's score (or its household's) on the subscribed model
  crossed the threshold upwards (``alert_risk_state`` remembers who is above, so a
  nominal staying above does not alert again, and one that falls back and crosses
  again does).

Every alert respects the agreements: an event or agency is alerted only if its
dataset is one the partner may receive (:func:`receivable_datasets`); a risk alert
carries the model, score and band, never the reasons (they describe other agencies'
records). Each alert has an idempotency key (unique in the control plane), so
detection can run as often as wanted without repeating one.

Delivery: an alert for a subscription with a webhook gets a row in the outbox
(``webhook_outbox``) in the same transaction, so an alert is never lost between
being detected and being sent. :func:`deliver_due` POSTs what is due, signed with
HMAC-SHA256 (``Nominal-Signature: t=<unix time>,v1=<hex of HMAC(secret, "<t>.<body>")>``)
and carrying ``Idempotency-Key``; a failure is retried with exponential back-off
(30 s, 1 min, 2 min, ... capped at 1 h) until ``max_attempts``, then marked ``dead``
(visible on the notifications page and in ``/metrics``). Delivery is at least once;
the idempotency key lets the receiver store each alert exactly once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from nominal.config import Home
from nominal.db import ControlPlane
from nominal.feeds.models import (
    ALERT_KINDS,
    Alert,
    AlertSubscription,
    RiskState,
    WebhookDelivery,
)

log = logging.getLogger("nominal.alerts")
SIGNATURE_HEADER = "Nominal-Signature"
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)


class AlertError(ValueError):
    """A subscription is invalid; the message says which field."""


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def subscription_secret(home: Home, subscription_id: int) -> str:
    """The webhook signing secret of a subscription (derived, never stored)."""
    return hmac.new(
        home.secret("webhooks"), f"subscription:{subscription_id}".encode(), hashlib.sha256
    ).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Nominal-Signature`` header value for a body sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """What a receiver does: check the signature and that it is recent (no replays)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        stamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - stamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, stamp, body), header)


def subscribe(
    control: ControlPlane,
    home: Home,
    partner_code: str,
    kinds: list[str],
    *,
    webhook_url: str | None = None,
    risk_model: str | None = None,
    risk_threshold: float | None = None,
    now: datetime | None = None,
) -> tuple[int, str]:
    """Create a subscription; returns its id and webhook secret (shown once)."""
    unknown = [k for k in kinds if k not in ALERT_KINDS]
    if not kinds or unknown:
        raise AlertError(f"kinds: choose from {', '.join(ALERT_KINDS)}")
    if "risk_threshold" in kinds and (risk_model is None or risk_threshold is None):
        raise AlertError("risk_threshold alerts need a risk model and a threshold")
    if webhook_url is not None and not webhook_url.startswith(("https://", "http://")):
        raise AlertError("webhook_url must be an http(s) address")
    with control.session() as session:
        sub = AlertSubscription(
            partner_code=partner_code,
            kinds_json=json.dumps(kinds),
            webhook_url=webhook_url,
            risk_model=risk_model,
            risk_threshold=risk_threshold,
            active=True,
            seen_until=now or datetime.now(UTC),
        )
        session.add(sub)
        session.flush()
        return sub.id, subscription_secret(home, sub.id)


def _key(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


@dataclass
class _Candidate:
    kind: str
    nominal_id: str
    key: str
    payload: dict[str, Any]


def _partner_datasets(home: Home, partner_code: str) -> list[str]:
    from nominal.contracts.registry import registered_contracts

    return sorted({c.dataset for c in registered_contracts(home) if c.partner.code == partner_code})


def _candidates(
    con: Any, sub: AlertSubscription, own: list[str], receivable: set[str], since: datetime
) -> tuple[list[_Candidate], datetime | None, dict[str, float]]:
    """What is new for one subscription since ``since``; and the newest receipt time seen."""
    from nominal.engines.duck import sql_literal

    out: list[_Candidate] = []
    if not own:
        return out, None, {}
    own_sql = ", ".join(sql_literal(d) for d in own)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE mine AS SELECT DISTINCT nominal_id FROM gold.nominal_records "
        f"WHERE dataset IN ({own_sql})"
    )
    cutoff = sql_literal(since.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" "))
    allowed = [d for d in receivable if d not in own]
    newest = con.execute(
        f"SELECT max(received_at) FROM gold.events WHERE received_at > TIMESTAMP {cutoff}"
    ).fetchone()
    latest = newest[0].replace(tzinfo=UTC) if newest and newest[0] else None
    if allowed and ("new_incident" in sub.kinds or "new_agency" in sub.kinds):
        allowed_sql = ", ".join(sql_literal(d) for d in allowed)
        if "new_incident" in sub.kinds:
            for nominal_id, event_key, dataset, agency, event_type, event_date in con.execute(
                "SELECT e.nominal_id, e.event_key, e.dataset, e.agency, e.event_type, e.event_date "
                "FROM gold.events e JOIN mine USING (nominal_id) "
                f"WHERE e.received_at > TIMESTAMP {cutoff} AND e.dataset IN ({allowed_sql}) "
                "ORDER BY e.received_at, e.event_key"
            ).fetchall():
                out.append(
                    _Candidate(
                        "new_incident",
                        nominal_id,
                        _key(sub.id, "new_incident", nominal_id, event_key),
                        {
                            "dataset": dataset,
                            "agency": agency,
                            "event_type": event_type,
                            "event_date": str(event_date),
                        },
                    )
                )
        if "new_agency" in sub.kinds:
            for nominal_id, agency, first in con.execute(
                "SELECT e.nominal_id, e.agency, min(e.received_at) FROM gold.events e "
                "JOIN mine USING (nominal_id) "
                f"WHERE e.dataset IN ({allowed_sql}) GROUP BY ALL "
                f"HAVING min(e.received_at) > TIMESTAMP {cutoff} ORDER BY 3, 1, 2"
            ).fetchall():
                out.append(
                    _Candidate(
                        "new_agency",
                        nominal_id,
                        _key(sub.id, "new_agency", nominal_id, agency),
                        {"agency": agency, "first_received_at": str(first)},
                    )
                )
    above: dict[str, float] = {}
    if "risk_threshold" in sub.kinds and sub.risk_model and _has(con, "gold.scores"):
        model = sql_literal(sub.risk_model)
        members = (
            "SELECT household_id AS unit_id, nominal_id FROM gold.household_members "
            "WHERE to_date IS NULL"
            if _has(con, "gold.household_members")
            else "SELECT NULL AS unit_id, NULL AS nominal_id WHERE false"
        )
        rows = con.execute(
            f"""WITH s AS (SELECT * FROM gold.scores WHERE model = {model}),
                 per AS (
                   SELECT unit_id AS nominal_id, score, band, as_of, model_version
                   FROM s WHERE unit_type = 'person'
                   UNION ALL
                   SELECT m.nominal_id, s.score, s.band, s.as_of, s.model_version
                   FROM s JOIN ({members}) m USING (unit_id) WHERE s.unit_type = 'household')
               SELECT nominal_id, max(score), arg_max(band, score), max(as_of), any_value(model_version)
               FROM per JOIN mine USING (nominal_id) GROUP BY nominal_id"""
        ).fetchall()
        for nominal_id, score, band, as_of, version in rows:
            if score is None or score < (sub.risk_threshold or 0):
                continue
            above[nominal_id] = float(score)
            out.append(
                _Candidate(
                    "risk_threshold",
                    nominal_id,
                    _key(sub.id, "risk", nominal_id, sub.risk_model, as_of, version),
                    {
                        "model": sub.risk_model,
                        "score": round(float(score), 4),
                        "band": band,
                        "threshold": sub.risk_threshold,
                        "as_of": str(as_of),
                    },
                )
            )
    return out, latest, above


def _has(con: Any, table: str) -> bool:
    schema, _, name = table.partition(".")
    found = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE schema_name = ? AND view_name = ?",
        [schema, name],
    ).fetchone()
    return bool(found and found[0])


def detect_alerts(home: Home, control: ControlPlane) -> dict[str, int]:
    """Create the alerts (and outbox rows) that are new for every active subscription."""
    from nominal.engines.duck import connect
    from nominal.engines.lake import Lake
    from nominal.feeds.agreements import receivable_datasets

    snap = Lake(home.lake).current()
    counts = dict.fromkeys(ALERT_KINDS, 0)
    if snap is None or not (snap.has("gold.events") and snap.has("gold.nominal_records")):
        return counts
    con = connect(
        snap,
        tables=[
            t
            for t in (
                "gold.events",
                "gold.nominal_records",
                "gold.scores",
                "gold.household_members",
            )
            if snap.has(t)
        ],
    )
    with control.session() as session:
        subs = session.scalars(
            sa.select(AlertSubscription).where(AlertSubscription.active.is_(True))
        ).all()
        for sub in subs:
            receivable = receivable_datasets(session, sub.partner_code)
            own = _partner_datasets(home, sub.partner_code)
            since = _aware(sub.seen_until or sub.created_at)
            found, latest, above = _candidates(con, sub, own, receivable, since)
            if "risk_threshold" in sub.kinds:
                found = _crossings(session, sub.id, found, above)
            keys = [c.key for c in found]
            existing = set()
            for start in range(0, len(keys), 500):
                existing |= set(
                    session.scalars(
                        sa.select(Alert.idempotency_key).where(
                            Alert.idempotency_key.in_(keys[start : start + 500])
                        )
                    )
                )
            for c in found:
                if c.key in existing:
                    continue
                existing.add(c.key)
                alert = Alert(
                    subscription_id=sub.id,
                    partner_code=sub.partner_code,
                    kind=c.kind,
                    nominal_id=c.nominal_id,
                    idempotency_key=c.key,
                    payload_json=json.dumps(c.payload, sort_keys=True),
                )
                session.add(alert)
                if sub.webhook_url:
                    session.add(WebhookDelivery(alert=alert, url=sub.webhook_url))
                counts[c.kind] += 1
            if latest is not None and latest > since:
                sub.seen_until = latest
    log.info("alerts detected", extra={"counts": counts})
    return counts


def _crossings(
    session: Any, subscription_id: int, found: list[_Candidate], above: dict[str, float]
) -> list[_Candidate]:
    """Keep risk candidates only for nominals not already above; remember who is above."""
    state = {
        r.nominal_id: r
        for r in session.scalars(
            sa.select(RiskState).where(RiskState.subscription_id == subscription_id)
        )
    }
    for nominal_id, row in state.items():
        if nominal_id not in above:
            session.delete(row)  # fell back below: a later crossing alerts again
    for nominal_id, score in above.items():
        if nominal_id in state:
            state[nominal_id].score = score
        else:
            session.add(
                RiskState(subscription_id=subscription_id, nominal_id=nominal_id, score=score)
            )
    return [c for c in found if c.kind != "risk_threshold" or c.nominal_id not in state]


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "kind": alert.kind,
        "nominal_id": alert.nominal_id,
        "idempotency_key": alert.idempotency_key,
        "created_at": _aware(alert.created_at).isoformat() if alert.created_at else None,
        "read_at": _aware(alert.read_at).isoformat() if alert.read_at else None,
        **alert.payload,
    }


def alerts_for(
    control: ControlPlane, partner_code: str, *, after: int = 0, limit: int = 500
) -> list[dict[str, Any]]:
    """A partner's alerts with id greater than ``after``, oldest first."""
    with control.session() as session:
        found = session.scalars(
            sa.select(Alert)
            .where(Alert.partner_code == partner_code, Alert.id > after)
            .order_by(Alert.id)
            .limit(limit)
        ).all()
        return [alert_json(a) for a in found]


def backoff(attempts: int) -> timedelta:
    """Wait before attempt ``attempts + 1``: 30 s, 1 min, 2 min, ... at most 1 hour."""
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)


def deliver_due(
    home: Home,
    control: ControlPlane,
    *,
    now: datetime | None = None,
    max_attempts: int | None = None,
    timeout: float | None = None,
    limit: int = 200,
) -> dict[str, int]:
    """POST every due outbox row once; returns counts by outcome."""
    import httpx

    from nominal.ops.metrics import WEBHOOKS
    from nominal.ops.settings import settings

    conf = settings()
    max_attempts = max_attempts or conf.webhook_max_attempts
    timeout = timeout or conf.webhook_timeout_seconds
    now = _aware(now or datetime.now(UTC))
    outcome = {"delivered": 0, "retry": 0, "dead": 0}
    with control.session() as session:
        due = (
            session.execute(
                sa.select(WebhookDelivery.id)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(limit)
            )
            .scalars()
            .all()
        )
    with httpx.Client(timeout=timeout) as client:
        for delivery_id in due:
            with control.session() as session:
                row = session.get(WebhookDelivery, delivery_id)
                if row is None or row.status != "pending":
                    continue
                alert = row.alert
                body = json.dumps(
                    {"alert": alert_json(alert), "partner": alert.partner_code},
                    sort_keys=True,
                ).encode()
                secret = subscription_secret(home, alert.subscription_id)
                headers = {
                    "Content-Type": "application/json",
                    "Idempotency-Key": alert.idempotency_key,
                    "Nominal-Event": alert.kind,
                    SIGNATURE_HEADER: sign(secret, int(time.time()), body),
                    "User-Agent": "nominal-webhooks",
                }
                row.attempts += 1
                try:
                    response = client.post(row.url, content=body, headers=headers)
                    ok = 200 <= response.status_code < 300
                    row.last_status_code = response.status_code
                    row.last_error = None if ok else f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    ok = False
                    row.last_error = f"{type(exc).__name__}: {exc}"[:500]
                if ok:
                    row.status, row.delivered_at = "delivered", now
                    outcome["delivered"] += 1
                elif row.attempts >= max_attempts:
                    row.status = "dead"
                    outcome["dead"] += 1
                else:
                    row.next_attempt_at = now + backoff(row.attempts)
                    outcome["retry"] += 1
            WEBHOOKS.labels(outcome="delivered" if ok else "failed").inc()
    if due:
        log.info("webhooks delivered", extra=outcome)
    return outcome
