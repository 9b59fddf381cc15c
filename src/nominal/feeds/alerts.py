"""Alerts: partners subscribe to events on the nominals they work with.

(Detection and webhook delivery are added below the read side.)
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from nominal.db import ControlPlane
from nominal.feeds.models import Alert


def alert_json(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "kind": alert.kind,
        "nominal_id": alert.nominal_id,
        "idempotency_key": alert.idempotency_key,
        "created_at": alert.created_at.isoformat() if alert.created_at else None,
        "read_at": alert.read_at.isoformat() if alert.read_at else None,
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
