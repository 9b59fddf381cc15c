"""Risk model cards and cohorts in the web app.

Model cards hold no personal data: any signed-in user may read them (and should,
before trusting a score). A cohort lists people or households by pseudonym with the
reasons for their scores, which are drawn from partners' records: reading one needs a
purpose, passes the policy decision point for the model's outcome dataset (a live
tier-2 agreement covering it for that purpose, the user's role and training) and is
audited with the units it returned; a CSV export is audited as an export.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import Any, Literal, get_args

import duckdb
import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from nominal.engines.duck import connect
from nominal.engines.lake import Lake
from nominal.govern.models import Purpose, User
from nominal.insight import cards, training
from nominal.insight.models import FEEDBACK, CohortFeedback
from nominal.insight.specs import HUMAN_OVERSIGHT, SPECS
from nominal.web.deps import Enforcer, current_user, db, errors, pdp, state
from nominal.web.lake import shared_connection
from nominal.web.templating import render

router = APIRouter()

NAV = [("Risk models", "/risk/models"), ("Cohorts", "/cohorts")]


def _cohorts_cursor(request: Request) -> AbstractContextManager[duckdb.DuckDBPyConnection] | None:
    """A cursor on one connection over the current snapshot's ``gold.cohorts``.

    The connection is kept on the hub (one per process), replaced when a run switches
    the snapshot and after a bounded number of cursors (:mod:`nominal.web.lake`). The
    listing used to open a fresh in-memory DuckDB database (buffer manager, thread pool,
    catalog: native memory Python's heap does not see) on every request and leave
    closing it to garbage collection; under the soak (``benchmarks/soak.py``) that was a
    database or two per second.
    """
    hub = state(request)
    snapshot = Lake(hub.home.lake).current()
    if snapshot is None or not snapshot.has("gold.cohorts"):
        return None
    shared = shared_connection(
        hub.cache, "cohorts_lake", lambda snap: connect(snap, tables=["gold.cohorts"], threads=1)
    )
    return shared.cursor(snapshot)


def _cohort_rows(request: Request, cohort: str | None = None) -> list[dict[str, Any]]:
    cursor = _cohorts_cursor(request)
    if cursor is None:
        return []
    with cursor as con:
        return _cohort_query(con, cohort)


def _cohort_query(con: duckdb.DuckDBPyConnection, cohort: str | None) -> list[dict[str, Any]]:
    if cohort is None:
        sql = (
            "SELECT cohort, any_value(title) AS title, any_value(model) AS model, "
            "any_value(as_of) AS as_of, count(*) AS size, any_value(capacity) AS capacity, "
            "any_value(rule) AS rule, any_value(unit_type) AS unit_type "
            "FROM gold.cohorts GROUP BY cohort ORDER BY cohort"
        )
        frame = con.execute(sql).df()
    else:
        frame = con.execute(
            "SELECT * FROM gold.cohorts WHERE cohort = ? ORDER BY rank", [cohort]
        ).df()
    rows: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return rows


def _models(request: Request) -> list[dict[str, Any]]:
    out = []
    for row in training.versions(state(request).home.models):
        if row["latest"]:
            row["title"] = SPECS[row["model"]].title if row["model"] in SPECS else row["model"]
            out.append(row)
    return sorted(out, key=lambda r: str(r["model"]))


@router.get("/api/risk/models", tags=["risk"])
def api_models(request: Request, user: User = Depends(current_user)) -> dict[str, Any]:
    """The latest version of every trained risk model with its validation metrics."""
    return {"models": _models(request), "human_oversight": HUMAN_OVERSIGHT}


@router.get("/risk/models", include_in_schema=False)
def models_page(request: Request, user: User = Depends(current_user)) -> HTMLResponse:
    return render(
        request,
        "insight/models.html",
        {"models": _models(request), "oversight": HUMAN_OVERSIGHT},
    )


@router.get("/api/risk/models/{model}/card", tags=["risk"], responses=errors(404))
def api_card(request: Request, model: str, user: User = Depends(current_user)) -> dict[str, Any]:
    """The model card (JSON) of the latest version of ``model``."""
    try:
        return cards.read_card(state(request).home.reports, model)
    except FileNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/risk/models/{model}/card", include_in_schema=False)
def card_page(request: Request, model: str, user: User = Depends(current_user)) -> HTMLResponse:
    try:
        card = cards.read_card(state(request).home.reports, model)
    except FileNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    return HTMLResponse(cards.render_html(card))


@router.get("/cohorts", include_in_schema=False)
def cohorts_page(
    request: Request, user: User = Depends(current_user), session: Session = Depends(db)
) -> HTMLResponse:
    purposes = list(session.scalars(sa.select(Purpose).order_by(Purpose.code)))
    return render(
        request,
        "insight/cohorts.html",
        {
            "cohorts": _cohort_rows(request),
            "purposes": [(p.code, p.name) for p in purposes],
            "oversight": HUMAN_OVERSIGHT,
        },
    )


@router.get("/api/cohorts", tags=["cohorts"])
def api_cohorts(request: Request, user: User = Depends(current_user)) -> dict[str, Any]:
    """Each cohort with its size, capacity and rule (no members: no personal data)."""
    return {"cohorts": _cohort_rows(request)}


def _members(
    request: Request, cohort: str, enforcer: Enforcer, action: str
) -> list[dict[str, Any]]:
    """The cohort's members after the policy decision, audited."""
    rows = _cohort_rows(request, cohort)
    if not rows:
        raise HTTPException(404, f"no cohort {cohort!r}")
    spec = SPECS.get(str(rows[0]["model"]))
    if spec is None:
        raise HTTPException(404, f"cohort {cohort!r} has no known model")
    decision = enforcer.allow(spec.dataset, action=action)
    persons = [str(r["unit_id"]) for r in rows if r["unit_type"] == "person"]
    enforcer.audit(
        action,
        decision,
        nominal_ids=persons,
        detail={
            "cohort": cohort,
            "members": len(rows),
            "households": [r["unit_pseudo"] for r in rows if r["unit_type"] == "household"],
        },
    )
    for r in rows:
        r["reasons"] = json.loads(r["reasons"]) if r.get("reasons") else []
        r.pop("unit_id", None)  # pseudonyms only
    return rows


@router.get("/api/cohorts/{cohort}", tags=["cohorts"], responses=errors(400, 404))
def api_cohort(request: Request, cohort: str, enforcer: Enforcer = Depends(pdp)) -> dict[str, Any]:
    """A cohort's members (pseudonyms, scores, reasons); needs a purpose; audited."""
    rows = _members(request, cohort, enforcer, "read")
    return {
        "cohort": cohort,
        "title": rows[0]["title"],
        "rule": rows[0]["rule"],
        "size": len(rows),
        "capacity": rows[0]["capacity"],
        "purpose": enforcer.purpose.code,
        "human_oversight": HUMAN_OVERSIGHT,
        "members": rows,
    }


@router.get("/cohorts/{cohort}.csv", include_in_schema=False)
def cohort_csv(request: Request, cohort: str, enforcer: Enforcer = Depends(pdp)) -> Response:
    from nominal.security.exports import csv_text  # cells escaped against formula injection

    rows = _members(request, cohort, enforcer, "export")
    lines = []
    for r in rows:
        reasons = r["reasons"]
        words = (
            "; ".join(x["text"] for x in reasons)
            if isinstance(reasons, list)
            else "; ".join(f"{k}: {v}" for k, v in reasons.items())
        )
        lines.append(
            [r["rank"], r["unit_type"], r["unit_pseudo"], r["oa_code"], f"{r['score']:.4f}", words]
        )
    header = ["rank", "unit_type", "pseudonym", "output_area", "score", "reasons"]
    return Response(
        csv_text(header, lines),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="cohort-{cohort}.csv"'},
    )


@router.get("/cohorts/{cohort}", include_in_schema=False)
def cohort_page(request: Request, cohort: str, enforcer: Enforcer = Depends(pdp)) -> HTMLResponse:
    rows = _members(request, cohort, enforcer, "read")
    return render(
        request,
        "insight/cohort.html",
        {
            "cohort": cohort,
            "rows": rows,
            "first": rows[0],
            "purpose": enforcer.purpose.code,
            "oversight": HUMAN_OVERSIGHT,
        },
    )


FeedbackKind = Literal["already known", "not a concern", "acted on", "other"]
assert get_args(FeedbackKind) == FEEDBACK


class FeedbackIn(BaseModel):
    unit_pseudo: str = Field(min_length=8, max_length=64)
    feedback: FeedbackKind
    note: str = Field("", max_length=2000)


@router.post("/api/cohorts/{cohort}/feedback", tags=["cohorts"], responses=errors(400, 404))
def api_feedback(
    request: Request, cohort: str, body: FeedbackIn, enforcer: Enforcer = Depends(pdp)
) -> dict[str, Any]:
    """Record a practitioner's feedback on a cohort entry (kept for evaluation); audited."""
    rows = _cohort_rows(request, cohort)
    entry = next((r for r in rows if r["unit_pseudo"] == body.unit_pseudo), None)
    if entry is None:
        raise HTTPException(404, f"{body.unit_pseudo} is not in cohort {cohort!r}")
    spec = SPECS[str(entry["model"])]
    decision = enforcer.allow(spec.dataset, action="feedback")
    from datetime import date

    saved = CohortFeedback(
        cohort=cohort,
        model=spec.name,
        model_version=str(entry["model_version"]),
        as_of=date.fromisoformat(str(entry["as_of"])[:10]),
        unit_pseudo=body.unit_pseudo,
        feedback=body.feedback,
        note=body.note or None,
        username=enforcer.user.username,
        partner=enforcer.user.partner.code,
    )
    enforcer.session.add(saved)
    enforcer.session.flush()
    feedback_id = saved.id
    enforcer.audit(
        "feedback",
        decision,
        nominal_ids=[str(entry["unit_id"])] if entry["unit_type"] == "person" else [],
        detail={"cohort": cohort, "unit_pseudo": body.unit_pseudo, "feedback": body.feedback},
    )
    return {"id": feedback_id, "cohort": cohort, "unit_pseudo": body.unit_pseudo,
            "feedback": body.feedback}  # fmt: skip


@router.get("/api/cohorts/{cohort}/feedback", tags=["cohorts"])
def api_feedback_list(
    cohort: str, user: User = Depends(current_user), session: Session = Depends(db)
) -> dict[str, Any]:
    """Feedback recorded on a cohort's entries (pseudonyms only), for evaluation."""
    found = session.scalars(
        sa.select(CohortFeedback).where(CohortFeedback.cohort == cohort).order_by(CohortFeedback.id)
    )
    return {
        "cohort": cohort,
        "feedback": [
            {"unit_pseudo": f.unit_pseudo, "feedback": f.feedback, "model_version": f.model_version,
             "as_of": f.as_of.isoformat(), "partner": f.partner}
            for f in found
        ],
    }  # fmt: skip
