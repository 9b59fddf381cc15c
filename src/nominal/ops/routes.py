"""Operations endpoints: ``/healthz``, ``/readyz``, ``/metrics`` and the runs page.

Health and metrics carry no personal data and are meant for the process manager,
the load balancer and Prometheus (restrict ``/metrics`` to the monitoring network at
the reverse proxy, see docs/operations.md). The operations page lists pipeline runs
and their stages (ids, counts and timings only).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

from nominal.config import Home
from nominal.db import ControlPlane
from nominal.ops.web import get_control, get_home

router = APIRouter(tags=["operations"])
ADMIN = ("admin",)
NAV = [("Operations", "/operations", ADMIN)]

HomeDep = Annotated[Home, Depends(get_home)]
ControlDep = Annotated[ControlPlane, Depends(get_control)]


@router.get("/healthz", include_in_schema=False)
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
def readyz(home: HomeDep, control: ControlDep) -> JSONResponse:
    """Readiness: control plane migrated and answering, lake readable."""
    from nominal.ops.health import readiness

    ok, checks = readiness(home, control)
    return JSONResponse(
        {"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503
    )


@router.get("/metrics", include_in_schema=False)
def metrics(home: HomeDep, control: ControlDep) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    from nominal.ops.metrics import render

    return Response(render(home, control), media_type=CONTENT_TYPE_LATEST)


def _admin() -> Any:
    from nominal.web.deps import require_roles

    return Depends(require_roles(*ADMIN))


@router.get("/api/ops/runs", dependencies=[_admin()])
def runs_json(control: ControlDep, limit: int = 50) -> dict[str, Any]:
    """Recent pipeline runs with their stages (the operations page's data)."""
    from nominal.pipeline.runner import run_history

    return {"runs": run_history(control, min(limit, 500))}


@router.get("/operations", response_class=HTMLResponse, dependencies=[_admin()])
def operations_page(request: Request, control: ControlDep) -> HTMLResponse:
    """Pipeline runs, their stages, row counts and errors (administrators)."""
    from nominal.pipeline.runner import run_history
    from nominal.web.templating import render

    return render(request, "operations.html", {"runs": run_history(control, 50)})
