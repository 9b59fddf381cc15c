"""Liveness and readiness: what ``/healthz`` and ``/readyz`` check.

Liveness says the process answers (a process manager restarts it if not); readiness
says it can serve: the control plane answers and is migrated to every branch's head,
and the lake's current snapshot (if any) resolves to a manifest whose files exist. A
load balancer sends traffic only to a ready instance.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from nominal.config import Home
from nominal.db import ControlPlane


def readiness(home: Home, control: ControlPlane) -> tuple[bool, dict[str, Any]]:
    checks: dict[str, Any] = {}
    try:
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        from nominal.db import alembic_config

        with control.engine.connect() as con:
            con.execute(sa.text("SELECT 1"))
            current = set(MigrationContext.configure(con).get_current_heads())
        heads = set(ScriptDirectory.from_config(alembic_config(control.url)).get_heads())
        missing = sorted(heads - current)
        checks["control_plane"] = "ok" if not missing else f"not migrated: {', '.join(missing)}"
    except Exception as exc:
        checks["control_plane"] = f"unavailable: {type(exc).__name__}"
    try:
        from nominal.engines.lake import Lake

        snap = Lake(home.lake).current()
        if snap is None:
            checks["lake"] = "empty"
        else:
            absent = [
                f for t in snap.tables for f in snap.files(t) + snap.deletes(t) if not f.exists()
            ]
            checks["lake"] = "ok" if not absent else f"{len(absent)} data files missing"
            checks["snapshot"] = snap.id
    except Exception as exc:
        checks["lake"] = f"unreadable: {type(exc).__name__}: {exc}"
    ok = checks["control_plane"] == "ok" and checks["lake"] in ("ok", "empty")
    return ok, checks
