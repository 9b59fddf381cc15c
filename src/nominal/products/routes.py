"""Pages of the products: demand dashboard, map, joint tasking and pathways, the
analyst workbench, benefits realisation and system usage.

Every page that shows event data names a purpose (``?purpose=``; without one the page
asks for it), asks the policy decision point which datasets that purpose and the
user's agreements allow, narrows every figure to those datasets and leaves an audit
record. Analysts, and anyone under a pseudonymised-only purpose, see nominals only by
their pseudonym; practitioners see the nominal id with a link to the case.

Each chart is drawn from the hub's own copy of Vega-Lite, and is also shown as a
table and offered as CSV, so every page works without JavaScript.
"""

from __future__ import annotations

import io
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import duckdb
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from nominal.engines import duck
from nominal.engines.lake import Lake
from nominal.govern.models import Purpose, User
from nominal.govern.policy import decide
from nominal.products import areas, benefits, charts, demand, pathways, tasking, usage, workbench
from nominal.products.access import Permitted, event_datasets, permitted_datasets
from nominal.products.aggregates import Aggregates
from nominal.products.lakeview import AGE_BANDS, Filters, ProductsError, as_of_date, has_table
from nominal.products.lineage import Lineage
from nominal.products.models import (
    TASK_PRIORITIES,
    TASK_STATUSES,
    Enrolment,
    EnrolmentStep,
    Pathway,
    ProgrammeRisk,
    Task,
    Team,
)
from nominal.security.exports import escaping_writer  # formula-safe CSV cells
from nominal.web.deps import (
    Enforcer,
    client_address,
    current_user,
    db,
    errors,
    require_roles,
    state,
)
from nominal.web.templating import render

if TYPE_CHECKING:
    from nominal.web.app import Hub

router = APIRouter(tags=["products"])
STATIC = Path(__file__).parent / "static"

EVERYONE = ("practitioner", "analyst", "data_owner", "ig_lead", "admin")
CASEWORK = ("practitioner", "data_owner", "ig_lead", "admin")
MANAGERS = ("data_owner", "ig_lead", "admin", "analyst")
NAV = [
    ("Demand", "/dashboard", EVERYONE),
    ("Map", "/map", EVERYONE),
    ("Tasks", "/tasking", CASEWORK),
    ("Workbench", "/workbench", ("analyst", "admin")),
    ("Benefits", "/benefits", MANAGERS),
    ("Usage", "/usage", ("ig_lead", "admin", "data_owner")),
]
casework = require_roles(*CASEWORK)
managers = require_roles(*MANAGERS)
usage_viewers = require_roles("ig_lead", "admin", "data_owner")
analysts = require_roles("analyst", "admin")
T = TypeVar("T")
_lock = threading.Lock()
DASHBOARDS_KEPT = 32  # recent dashboards' figures kept per app (see _board)
DASHBOARDS_WARMED = 8  # dataset sets whose unfiltered dashboard is computed at start-up
log = logging.getLogger(__name__)
# Analysts' restricted in-memory copies of the lake (one per user, purpose, snapshot and
# permitted datasets) and benefits realisations kept per app, least recently used dropped
# first. A dropped workbench's DuckDB database is freed once no request still holds it.
WORKBENCHES_KEPT = 8
BENEFITS_KEPT = 8


def _recent(request: Request, family: str, key: Any, make: Callable[[], T], limit: int) -> T:
    """``make()`` kept under ``key`` among the ``limit`` most recently used of ``family``."""
    hub = state(request)
    with _lock:
        kept: OrderedDict[Any, Any] = hub.cache.setdefault(family, OrderedDict())
        if key in kept:
            kept.move_to_end(key)
            return cast(T, kept[key])
    value = make()  # outside the lock: two first requests may both make it, one is kept
    with _lock:
        kept[key] = value
        kept.move_to_end(key)
        while len(kept) > limit:
            kept.popitem(last=False)
    return value


# -- shared plumbing ----------------------------------------------------------------------
@router.get("/products/static/{name}", include_in_schema=False)
def static_file(name: str) -> Response:
    """The products' own scripts (chart and map set-up), served from the package."""
    path = STATIC / name
    if "/" in name or not path.is_file():
        raise HTTPException(404, "not found")
    return FileResponse(path, media_type="text/javascript" if name.endswith(".js") else None)


def _lake(request: Request) -> tuple[str, duckdb.DuckDBPyConnection, Aggregates | None]:
    """(snapshot id, connection, fresh aggregates or None) for the current snapshot,
    shared by requests and re-opened when a run has switched the snapshot."""
    found = _lake_of(state(request))
    if found is None:
        raise HTTPException(503, "There is no linked data yet: run the link step first")
    return found


def _lake_of(hub: Hub) -> tuple[str, duckdb.DuckDBPyConnection, Aggregates | None] | None:
    """:func:`_lake` for ``hub`` (None when the lake has no linked data yet)."""
    snapshot = Lake(hub.home.lake).current()
    if snapshot is None or not snapshot.has("gold.events"):
        return None
    switched = False
    with _lock:
        cached = hub.cache.get("products_lake")
        if cached is None or cached[0] != snapshot.id:
            if cached is not None:
                cached[1].close()
                switched = True
            con = duck.connect(snapshot, threads=2, memory_limit="2GB")
            cached = (snapshot.id, con, Aggregates.load(con, snapshot))
            hub.cache["products_lake"] = cached
    if switched and "dashboard_warmed" in hub.cache:  # a run made a new snapshot: warm it too
        on_start(hub)
    return cached[0], cached[1], cached[2]


def lake_cursor(request: Request) -> duckdb.DuckDBPyConnection:
    """A cursor on a connection over the current snapshot (see :func:`_lake`)."""
    return _lake(request)[1].cursor()


def lake_aggregates(request: Request) -> Aggregates | None:
    """The current snapshot's pre-aggregated demand tables, if they are fresh."""
    return _lake(request)[2]


def enforcer_for(
    request: Request, user: User, session: Session, purpose: str | None
) -> Enforcer | None:
    if not purpose:
        return None
    found = session.scalar(sa.select(Purpose).where(Purpose.code == purpose))
    if found is None:
        raise HTTPException(400, f"unknown purpose {purpose!r}")
    hub = state(request)
    return Enforcer(session, user, found, hub.audit, client_address(request), hub.audit_reads)


def permitted_for(
    con: duckdb.DuckDBPyConnection, enforcer: Enforcer, aggregates: Aggregates | None = None
) -> Permitted:
    permitted = permitted_datasets(
        con,
        lambda ds, fields: enforcer.decide(ds, fields),
        aggregates.datasets if aggregates is not None else None,
    )
    if not permitted.datasets:
        enforcer.audit("view", None, outcome="denied", detail={"reason": "no dataset shared"})
        raise HTTPException(
            403,
            {
                "message": "access denied",
                "reasons": [
                    f"no dataset is shared with you for the purpose {enforcer.purpose.code}"
                ],
            },
        )
    return permitted


def choose_purpose(request: Request, session: Session, title: str) -> Response:
    purposes = session.scalars(sa.select(Purpose).order_by(Purpose.name)).all()
    return render(
        request,
        "products/purpose.html",
        {"title": title, "purposes": purposes, "action": request.url.path},
    )


def shows_identity(user: User, permitted: Permitted) -> bool:
    """Analysts and pseudonymised-only purposes see pseudonyms, never nominal ids."""
    return user.role != "analyst" and not permitted.pseudonymised_only


def filters_from(request: Request, datasets: tuple[str, ...]) -> Filters:
    q = request.query_params
    agency = q.get("agency") or None
    try:
        return Filters(
            area=(q.get("area") or None),
            age_band=(q.get("age_band") or None),
            agencies=(agency,) if agency else (),
            datasets=datasets,
        )
    except ProductsError as exc:
        raise HTTPException(422, str(exc)) from None


def csv_response(text: str, filename: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# -- demand dashboard ----------------------------------------------------------------------
def _dashboard_charts(board: demand.Dashboard) -> list[charts.Chart]:
    v = board.volumes
    return [
        charts.stacked_months(
            "by_month",
            "Events by month and agency",
            v.by_month,
            "Stacked bars: events per month, coloured by agency.",
        ),
        charts.bar(
            "by_agency",
            "Events by agency",
            v.by_agency,
            "agency",
            "events",
            ("Agency", "Events"),
            "Bars: number of events recorded by each agency.",
        ),
        charts.bar(
            "by_event_type",
            "Events by type",
            v.by_event_type,
            "event_type",
            "events",
            ("Event type", "Events"),
            "Bars: number of events of each type.",
            limit=20,
        ),
        charts.bar(
            "by_area",
            "Events by output area",
            v.by_area,
            "oa_code",
            "events",
            ("Output area", "Events"),
            "Bars: events in each output area, busiest first.",
            limit=25,
        ),
    ]


def _duplicate_rows(rows: list[dict[str, Any]], identified: bool) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        out.append(
            {
                "unit": r["unit_id"] if identified else r["unit_pseudo"],
                "unit_id": r["unit_id"] if identified else None,
                "agency_count": r["agency_count"],
                "agencies": "; ".join(
                    f"{i['agency']} since {i['since']}" for i in r["involvements"]
                ),
                "involvements": r["involvements"],
                "overlap_since": r["overlap_since"],
                "days_overlapping": r["days_overlapping"],
            }
        )
    return out


def _board_key(snapshot_id: str, filters: Filters) -> str:
    return f"dashboard:{snapshot_id}:{filters!r}"


def _kept_board(
    hub: Hub, snapshot_id: str, filters: Filters, compute: Callable[[], demand.Dashboard]
) -> demand.Dashboard:
    """The kept figures for ``filters`` on the snapshot, computed by ``compute`` if not
    kept yet. While one thread computes a key, others asking for it wait for that
    result instead of computing it again (a request during the start-up warming)."""
    key = _board_key(snapshot_id, filters)
    while True:
        with _lock:
            board = hub.cache.get(key)
            if board is not None:
                return cast(demand.Dashboard, board)
            pending: dict[str, threading.Event] = hub.cache.setdefault("dashboard_pending", {})
            running = pending.get(key)
            if running is None:
                running = pending[key] = threading.Event()
                break
        running.wait()  # then read the kept figures (or compute them if that one failed)
    try:
        board = compute()
        with _lock:
            kept = hub.cache.setdefault("dashboard_keys", [])
            kept.append(key)
            hub.cache[key] = board
            while len(kept) > DASHBOARDS_KEPT:
                hub.cache.pop(kept.pop(0), None)
        return board
    finally:
        with _lock:
            pending.pop(key, None)
        running.set()


def warm_dashboards(hub: Hub, limit: int = DASHBOARDS_WARMED) -> list[tuple[str, ...]]:
    """Compute the unfiltered dashboard of the commonest permitted dataset sets of the
    current snapshot into the kept figures, so the first view after start-up (or after
    a run) does not wait for them. Returns the dataset sets warmed, commonest first.

    Which sets: for every active user and purpose, the datasets the policy decision
    point would permit now (:func:`nominal.govern.policy.decide`, asked exactly as a
    request asks it). Nothing is shown to anyone and nothing is audited here: a view
    still asks the decision point and is audited, and the figures are kept per dataset
    set, so a user is only ever shown the figures of the datasets their own decision
    allows.
    """
    found = _lake_of(hub)
    if found is None:
        return []
    snapshot_id, connection, aggregates = found
    con = connection.cursor()
    try:
        counts: dict[tuple[str, ...], int] = {}
        with hub.control.sessions() as session:
            users = session.scalars(sa.select(User).where(User.active.is_(True))).all()
            purposes = session.scalars(sa.select(Purpose).order_by(Purpose.code)).all()
            datasets = aggregates.datasets if aggregates is not None else event_datasets(con)
            for purpose in purposes:
                for user in users:

                    def asked(
                        ds: str, fields: tuple[str, ...], u: User = user, p: Purpose = purpose
                    ) -> object:
                        return decide(session, u, p, ds, fields)

                    permitted = permitted_datasets(con, asked, datasets)
                    if permitted.datasets:
                        counts[permitted.datasets] = counts.get(permitted.datasets, 0) + 1
            session.rollback()
        chosen = sorted(counts, key=lambda d: (-counts[d], d))[:limit]
        for sets in chosen:
            filters = Filters(datasets=sets)

            def compute(f: Filters = filters) -> demand.Dashboard:
                return demand.dashboard(con, f, aggregates=aggregates)

            board = _kept_board(hub, snapshot_id, filters, compute)
            if sets == chosen[0]:
                # Altair loads and compiles the Vega-Lite schema on its first chart
                # (about a second): pay for that here too, not in the first view.
                _dashboard_charts(board)
        return chosen
    finally:
        con.close()


def on_start(hub: Hub) -> threading.Thread:
    """The app's start-up hook: run :func:`warm_dashboards` in the background; its
    end is signalled by ``hub.cache["dashboard_warmed"]`` (a threading.Event). Once it
    has run, the app warms again whenever it first sees a new snapshot (see _lake_of)."""
    done = threading.Event()
    hub.cache["dashboard_warmed"] = done

    def work() -> None:
        try:
            warm_dashboards(hub)
        except Exception:  # the pages compute what they need anyway
            log.exception("warming the demand dashboard failed")
        finally:
            done.set()

    thread = threading.Thread(target=work, name="warm-dashboards", daemon=True)
    thread.start()
    return thread


def _board(
    request: Request, user: User, session: Session, purpose: str | None
) -> tuple[Enforcer, Permitted, demand.Dashboard, duckdb.DuckDBPyConnection] | None:
    enforcer = enforcer_for(request, user, session, purpose)
    if enforcer is None:
        return None
    snapshot_id, _, aggregates = _lake(request)
    con = lake_cursor(request)
    permitted = permitted_for(con, enforcer, aggregates)  # asked on every request
    filters = filters_from(request, permitted.datasets)
    # The figures for a snapshot and a filter set (datasets included) never change, so
    # recent ones are kept (and the commonest are computed at start-up, see
    # warm_dashboards); the decision and the audit record are made every time.
    board = _kept_board(
        state(request),
        snapshot_id,
        filters,
        lambda: demand.dashboard(con, filters, aggregates=aggregates),
    )
    return enforcer, permitted, board, con


@router.get("/dashboard", include_in_schema=False)
def dashboard_page(
    request: Request,
    purpose: str | None = Query(None),
    user: User = Depends(current_user),
    session: Session = Depends(db),
) -> Response:
    found = _board(request, user, session, purpose)
    if found is None:
        return choose_purpose(request, session, "Demand dashboard")
    enforcer, permitted, board, con = found
    identified = shows_identity(user, permitted)
    dups = _duplicate_rows(board.duplicates, identified)
    hh = _duplicate_rows(board.household_duplicates, identified)
    enforcer.audit(
        "view_dashboard",
        None,
        nominal_ids=[r["unit_id"] for r in board.duplicates] if identified else [],
        detail={
            "filters": board.filters.to_json(),
            "datasets": list(permitted.datasets),
            "agreements": list(permitted.agreements),
            "identified": identified,
        },
    )
    aggregates = lake_aggregates(request)
    agencies = (
        aggregates.agencies(permitted.datasets)
        if aggregates is not None
        else [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT agency FROM gold.events WHERE dataset IN (SELECT unnest(?)) "
                "ORDER BY 1",
                [list(permitted.datasets)],
            ).fetchall()
        ]
    )
    area_options = (
        con.execute(
            "SELECT ward_code AS code, any_value(ward_code) AS name FROM reference.output_areas GROUP BY 1 "
            "UNION ALL SELECT oa_code, name FROM reference.output_areas ORDER BY 1"
        ).fetchall()
        if has_table(con, "reference.output_areas")
        else []
    )
    return render(
        request,
        "products/dashboard.html",
        {
            "title": "Demand dashboard",
            "board": board,
            "summary": board.summary(),
            "charts": _dashboard_charts(board),
            "duplicates": dups,
            "household_duplicates": hh,
            "top_people": board.top_people,
            "identified": identified,
            "purpose": enforcer.purpose,
            "permitted": permitted,
            "agencies": agencies,
            "age_bands": list(AGE_BANDS),
            "areas": area_options,
            "query": request.url.query,
        },
    )


@router.get("/dashboard/data/{key}.csv", include_in_schema=False)
def dashboard_csv(
    request: Request,
    key: str,
    purpose: str = Query(...),
    user: User = Depends(current_user),
    session: Session = Depends(db),
) -> Response:
    found = _board(request, user, session, purpose)
    if found is None:  # an empty purpose
        raise HTTPException(400, "say why you need the data: choose a purpose")
    enforcer, permitted, board, _ = found
    identified = shows_identity(user, permitted)
    if key in ("duplicates", "household_duplicates"):
        rows = _duplicate_rows(getattr(board, key), identified)
        out = io.StringIO()
        writer = escaping_writer(out)
        writer.writerow(["unit", "agency_count", "agencies", "overlap_since", "days_overlapping"])
        for r in rows:
            writer.writerow(
                [
                    r["unit"],
                    r["agency_count"],
                    r["agencies"],
                    r["overlap_since"],
                    r["days_overlapping"],
                ]
            )
        text = out.getvalue()
    else:
        chosen = {c.key: c for c in _dashboard_charts(board)}.get(key)
        if chosen is None:
            raise HTTPException(404, f"no chart {key!r}")
        text = chosen.csv()
    enforcer.audit(
        "export",
        None,
        detail={
            "what": f"dashboard/{key}",
            "filters": board.filters.to_json(),
            "datasets": list(permitted.datasets),
        },
    )
    return csv_response(text, f"demand-{key}.csv")


# -- map -----------------------------------------------------------------------------------
@router.get("/map", include_in_schema=False)
def map_page(
    request: Request,
    purpose: str | None = Query(None),
    measure: str = Query("events"),
    cohort: str | None = Query(None),
    user: User = Depends(current_user),
    session: Session = Depends(db),
) -> Response:
    enforcer = enforcer_for(request, user, session, purpose)
    if enforcer is None:
        return choose_purpose(request, session, "Map")
    con = lake_cursor(request)
    aggregates = lake_aggregates(request)
    permitted = permitted_for(con, enforcer, aggregates)
    filters = filters_from(request, permitted.datasets)
    try:
        values = areas.area_measure(
            con, filters, measure, cohort=cohort or None, aggregates=aggregates
        )
    except ProductsError as exc:
        raise HTTPException(422, str(exc)) from None
    oas, wards, drawn = areas.geojson_text(con, values)
    table = areas.area_table(con, values)
    enforcer.audit(
        "view_map",
        None,
        detail={
            "measure": measure,
            "filters": filters.to_json(),
            "datasets": list(permitted.datasets),
        },
    )
    cohorts = (
        [
            r[0]
            for r in con.execute("SELECT DISTINCT cohort FROM gold.cohorts ORDER BY 1").fetchall()
        ]
        if has_table(con, "gold.cohorts")
        else []
    )
    return render(
        request,
        "products/map.html",
        {
            "title": "Map",
            "measure": measure,
            "measures": areas.MEASURES,
            "purpose": enforcer.purpose,
            "table": table,
            "cohorts": cohorts,
            "cohort": cohort,
            "areas_json": oas.replace("</", "<\\/"),
            "wards_json": wards.replace("</", "<\\/"),
            "has_boundaries": bool(drawn),
        },
    )


@router.get("/map/data.csv", include_in_schema=False)
def map_csv(
    request: Request,
    purpose: str = Query(...),
    measure: str = Query("events"),
    user: User = Depends(current_user),
    session: Session = Depends(db),
) -> Response:
    enforcer = enforcer_for(request, user, session, purpose)
    assert enforcer is not None
    con = lake_cursor(request)
    aggregates = lake_aggregates(request)
    permitted = permitted_for(con, enforcer, aggregates)
    values = areas.area_measure(
        con, filters_from(request, permitted.datasets), measure, aggregates=aggregates
    )
    out = io.StringIO()
    writer = escaping_writer(out)
    writer.writerow(["oa_code", "ward_code", "name", "imd_decile", measure])
    for r in areas.area_table(con, values):
        writer.writerow([r["oa_code"], r["ward_code"], r["name"], r["imd_decile"], r["value"]])
    enforcer.audit(
        "export", None, detail={"what": f"map/{measure}", "datasets": list(permitted.datasets)}
    )
    return csv_response(out.getvalue(), f"areas-{measure}.csv")


@router.get("/map/areas/{oa_code}", include_in_schema=False)
def area_page(
    request: Request,
    oa_code: str,
    purpose: str | None = Query(None),
    user: User = Depends(current_user),
    session: Session = Depends(db),
) -> Response:
    enforcer = enforcer_for(request, user, session, purpose)
    if enforcer is None:
        return choose_purpose(request, session, f"Area {oa_code}")
    con = lake_cursor(request)
    aggregates = lake_aggregates(request)
    permitted = permitted_for(con, enforcer, aggregates)
    info = areas.area_details(
        con, oa_code, filters_from(request, permitted.datasets), aggregates=aggregates
    )
    enforcer.audit(
        "view_area", None, detail={"oa_code": oa_code, "datasets": list(permitted.datasets)}
    )
    chart = charts.bar(
        "area_agency",
        f"Events in {oa_code} by agency",
        info["by_agency"],
        "agency",
        "events",
        ("Agency", "Events"),
        "Bars: events in this output area by agency.",
    )
    return render(
        request,
        "products/area.html",
        {"title": f"Area {oa_code}", "info": info, "purpose": enforcer.purpose, "chart": chart},
    )


# -- joint tasking -------------------------------------------------------------------------
def _lineage(request: Request) -> Lineage | None:
    try:
        con = lake_cursor(request)
    except HTTPException:
        return None
    return Lineage.load(con)


def _teams(session: Session) -> list[Team]:
    return list(session.scalars(sa.select(Team).order_by(Team.name)))


def _audit_case_view(request: Request, user: User, what: str, ids: list[str]) -> None:
    state(request).audit.record(
        "view_tasks",
        "allowed",
        user=user,
        nominal_ids=ids,
        client=client_address(request),
        detail={"what": what},
    )


@router.get("/tasking", include_in_schema=False)
def tasks_page(
    request: Request,
    team: str | None = Query(None),
    status: str = Query("open"),
    user: User = Depends(casework),
    session: Session = Depends(db),
) -> Response:
    statuses = ("open", "in_progress") if status == "open" else tuple(TASK_STATUSES)
    items = tasking.queue(session, _lineage(request), team=team or None, statuses=statuses)
    session.commit()
    _audit_case_view(request, user, f"queue:{team or 'all'}", [i.task.unit_id for i in items])
    counts = dict(
        session.execute(
            sa.select(Team.name, sa.func.count(Task.id))
            .join(Task, isouter=True)
            .where(sa.or_(Task.status.in_(("open", "in_progress")), Task.id.is_(None)))
            .group_by(Team.name)
            .order_by(Team.name)
        ).all()
    )
    return render(
        request,
        "products/tasks.html",
        {
            "title": "Tasks",
            "items": items,
            "teams": _teams(session),
            "team": team,
            "status": status,
            "counts": counts,
            "today": date.today(),
        },
    )


@router.get("/tasking/new", include_in_schema=False)
def new_task_form(
    request: Request,
    unit_type: str = Query("nominal"),
    unit_id: str = Query(""),
    source: str = Query("person"),
    user: User = Depends(casework),
    session: Session = Depends(db),
) -> Response:
    return render(
        request,
        "products/task_new.html",
        {
            "title": "Create a task",
            "unit_type": unit_type,
            "unit_id": unit_id,
            "source": source,
            "teams": _teams(session),
            "priorities": TASK_PRIORITIES,
            "errors": {},
        },
    )


@router.post("/tasking/new", include_in_schema=False)
def create_task(
    request: Request,
    unit_type: str = Form("nominal"),
    unit_id: str = Form(""),
    title: str = Form(""),
    team: str = Form(""),
    kind: str = Form("task"),
    priority: str = Form("normal"),
    due_on: str = Form(""),
    note: str = Form(""),
    source: str = Form("person"),
    user: User = Depends(casework),
    session: Session = Depends(db),
) -> Response:
    try:
        due = date.fromisoformat(due_on) if due_on else None
        task = tasking.create_task(
            session,
            unit_type=unit_type,
            unit_id=unit_id,
            title=title,
            team=team,
            created_by=user.username,
            kind=kind,
            priority=priority,
            due_on=due,
            source=source,
            note=note or None,
        )
    except (ProductsError, ValueError) as exc:
        session.rollback()
        return render(
            request,
            "products/task_new.html",
            {
                "title": "Create a task",
                "unit_type": unit_type,
                "unit_id": unit_id,
                "source": source,
                "teams": _teams(session),
                "priorities": TASK_PRIORITIES,
                "errors": {"form": str(exc)},
                "values": {"title": title, "team": team, "priority": priority, "note": note},
            },
            status_code=422,
        )
    # The task and its audit entry commit together: a server killed in between must
    # not leave a task nobody can account for (benchmarks/server_crash_trials.py).
    state(request).audit.record_in(
        session,
        "task.create",
        "allowed",
        user=user,
        nominal_ids=[unit_id],
        client=client_address(request),
        detail={"task": task.id, "team": team},
    )
    session.commit()
    return RedirectResponse(f"/tasking/tasks/{task.id}", status_code=303)


@router.get("/tasking/tasks/{task_id}", include_in_schema=False)
def task_page(
    request: Request, task_id: int, user: User = Depends(casework), session: Session = Depends(db)
) -> Response:
    task = session.get(Task, task_id)
    if task is None:
        raise HTTPException(404, "no such task")
    lineage = _lineage(request)
    live = lineage.resolve(task.unit_id, task.unit_type) if lineage else task.unit_id
    session.commit()
    _audit_case_view(request, user, f"task:{task_id}", [task.unit_id])
    return render(
        request,
        "products/task.html",
        {
            "title": f"Task {task.id}",
            "task": task,
            "live": live,
            "teams": _teams(session),
            "statuses": TASK_STATUSES,
            "error": request.query_params.get("error"),
        },
    )


@router.post("/tasking/tasks/{task_id}", include_in_schema=False)
def update_task(
    request: Request,
    task_id: int,
    status: str = Form(""),
    team: str = Form(""),
    outcome: str = Form(""),
    note: str = Form(""),
    user: User = Depends(casework),
    session: Session = Depends(db),
) -> Response:
    task = session.get(Task, task_id)
    if task is None:
        raise HTTPException(404, "no such task")
    try:
        tasking.update_task(
            session,
            task,
            by=user.username,
            status=status or None,
            team=team or None,
            outcome=outcome or None,
            note=note or None,
        )
    except ProductsError as exc:
        session.rollback()
        from urllib.parse import quote

        return RedirectResponse(
            f"/tasking/tasks/{task_id}?error={quote(str(exc))}", status_code=303
        )
    state(request).audit.record_in(
        session,
        "task.update",
        "allowed",
        user=user,
        nominal_ids=[task.unit_id],
        client=client_address(request),
        detail={"task": task_id, "status": status},
    )
    session.commit()
    return RedirectResponse(f"/tasking/tasks/{task_id}", status_code=303)


@router.get("/tasking/case/{unit_type}/{unit_id}", include_in_schema=False)
def case_page(
    request: Request,
    unit_type: str,
    unit_id: str,
    purpose: str | None = Query(None),
    user: User = Depends(casework),
    session: Session = Depends(db),
) -> Response:
    """One nominal or household: tasks, pathways and (for a purpose) every agency's involvement."""
    if unit_type not in ("nominal", "household"):
        raise HTTPException(404, "no such case type")
    lineage = _lineage(request)
    live = lineage.resolve(unit_id, unit_type) if lineage else unit_id
    items = tasking.queue(
        session,
        lineage,
        statuses=tuple(TASK_STATUSES),
        unit_id=live or unit_id,
        unit_type=unit_type,
    )
    enrolments = pathways.compliance(session, lineage, unit_id=live or unit_id, unit_type=unit_type)
    involvement: list[dict[str, Any]] = []
    enforcer = enforcer_for(request, user, session, purpose)
    if enforcer is not None:
        con = lake_cursor(request)
        permitted = permitted_for(con, enforcer)
        column = "nominal_id" if unit_type == "nominal" else "household_id"
        involvement = [
            dict(zip(("agency", "events", "first", "last"), r, strict=True))
            for r in con.execute(
                f"SELECT agency, count(*), min(event_date)::DATE, max(event_date)::DATE FROM gold.events "
                f"WHERE {column} = ? AND dataset IN (SELECT unnest(?)) GROUP BY agency ORDER BY agency",
                [live or unit_id, list(permitted.datasets)],
            ).fetchall()
        ]
        enforcer.audit(
            "view_case",
            None,
            nominal_ids=[live or unit_id] if unit_type == "nominal" else [],
            detail={"unit_type": unit_type, "datasets": list(permitted.datasets)},
        )
    else:
        session.commit()
        _audit_case_view(request, user, f"case:{unit_type}:{unit_id}", [unit_id])
    purposes = session.scalars(sa.select(Purpose).order_by(Purpose.name)).all()
    return render(
        request,
        "products/case.html",
        {
            "title": f"Case {unit_id}",
            "unit_type": unit_type,
            "unit_id": unit_id,
            "live": live,
            "items": items,
            "enrolments": enrolments,
            "involvement": involvement,
            "purposes": purposes,
            "purpose": enforcer.purpose if enforcer else None,
            "pathways": session.scalars(
                sa.select(Pathway).where(Pathway.unit_type == unit_type)
            ).all(),
        },
    )


@router.get("/tasking/cohorts", include_in_schema=False)
def cohorts_page(request: Request, user: User = Depends(casework)) -> Response:
    con = lake_cursor(request)
    rows = (
        con.execute(
            "SELECT cohort, any_value(title), any_value(unit_type), count(*), any_value(as_of) "
            "FROM gold.cohorts GROUP BY cohort ORDER BY cohort"
        ).fetchall()
        if has_table(con, "gold.cohorts")
        else []
    )
    return render(request, "products/cohorts.html", {"title": "Cohorts", "cohorts": rows})


@router.get("/tasking/cohorts/{cohort}", include_in_schema=False)
def cohort_page(
    request: Request,
    cohort: str,
    purpose: str | None = Query(None),
    user: User = Depends(casework),
    session: Session = Depends(db),
) -> Response:
    enforcer = enforcer_for(request, user, session, purpose)
    if enforcer is None:
        return choose_purpose(request, session, f"Cohort {cohort}")
    con = lake_cursor(request)
    permitted = permitted_for(con, enforcer)
    if not has_table(con, "gold.cohorts"):
        raise HTTPException(404, "there are no cohorts yet")
    members = [
        dict(
            zip(
                ("rank", "unit_type", "unit_id", "unit_pseudo", "oa_code", "score", "title"),
                r,
                strict=True,
            )
        )
        for r in con.execute(
            "SELECT rank, unit_type, unit_id, unit_pseudo, oa_code, score, title FROM gold.cohorts "
            "WHERE cohort = ? ORDER BY rank",
            [cohort],
        ).fetchall()
    ]
    if not members:
        raise HTTPException(404, f"no cohort {cohort!r}")
    identified = shows_identity(user, permitted)
    enforcer.audit(
        "view_cohort",
        None,
        nominal_ids=[m["unit_id"] for m in members] if identified else [],
        detail={"cohort": cohort, "identified": identified},
    )
    return render(
        request,
        "products/cohort.html",
        {
            "title": members[0]["title"] or cohort,
            "cohort": cohort,
            "members": members,
            "identified": identified,
            "teams": _teams(session),
            "purpose": enforcer.purpose,
            "due": (date.today() + timedelta(days=14)).isoformat(),
        },
    )


@router.post("/tasking/cohorts/{cohort}/tasks", include_in_schema=False)
async def cohort_tasks(
    request: Request,
    cohort: str,
    user: User = Depends(casework),
    session: Session = Depends(db),
) -> Response:
    form = await request.form()
    chosen = [str(v) for v in form.getlist("unit_id")]
    team = str(form.get("team") or "")
    title = str(form.get("title") or "")
    due = str(form.get("due_on") or "")
    purpose = str(form.get("purpose") or "")
    con = lake_cursor(request)
    try:
        made = tasking.tasks_from_cohort(
            session,
            con,
            cohort,
            team=team,
            created_by=user.username,
            title=title,
            unit_ids=chosen or None,
            purpose=purpose or None,
            due_on=date.fromisoformat(due) if due else None,
        )
    except (ProductsError, ValueError) as exc:
        session.rollback()
        raise HTTPException(422, str(exc)) from None
    session.commit()
    state(request).audit.record(
        "task.create",
        "allowed",
        user=user,
        purpose=purpose or None,
        nominal_ids=[t.unit_id for t in made],
        client=client_address(request),
        detail={"cohort": cohort, "tasks": [t.id for t in made]},
    )
    return RedirectResponse(f"/tasking?team={team}&created={len(made)}", status_code=303)


@router.get("/tasking/meeting", include_in_schema=False)
def meeting_page(
    request: Request,
    purpose: str | None = Query(None),
    user: User = Depends(casework),
    session: Session = Depends(db),
) -> Response:
    enforcer = enforcer_for(request, user, session, purpose)
    if enforcer is None:
        return choose_purpose(request, session, "Multi-agency meeting")
    con = lake_cursor(request)
    permitted = permitted_for(con, enforcer)
    cases = tasking.meeting_view(session, con, Lineage.load(con), datasets=permitted.datasets)
    enforcer.audit(
        "view_meeting",
        None,
        nominal_ids=[c["unit_id"] for c in cases if c["unit_type"] == "nominal"],
        detail={"cases": len(cases), "datasets": list(permitted.datasets)},
    )
    return render(
        request,
        "products/meeting.html",
        {
            "title": "Multi-agency meeting",
            "cases": cases,
            "purpose": enforcer.purpose,
            "as_of": as_of_date(con),
        },
    )


@router.get("/tasking/pathways", include_in_schema=False)
def pathways_page(
    request: Request, user: User = Depends(casework), session: Session = Depends(db)
) -> Response:
    lineage = _lineage(request)
    status = pathways.compliance(session, lineage)
    session.commit()
    _audit_case_view(request, user, "pathways", [c.enrolment.unit_id for c in status])
    return render(
        request,
        "products/pathways.html",
        {
            "title": "Pathways",
            "pathways": session.scalars(sa.select(Pathway).order_by(Pathway.name)).all(),
            "status": status,
            "teams": _teams(session),
        },
    )


@router.post("/tasking/pathways/enrol", include_in_schema=False)
def enrol(
    request: Request,
    pathway: str = Form(...),
    unit_id: str = Form(...),
    started_on: str = Form(""),
    user: User = Depends(casework),
    session: Session = Depends(db),
) -> Response:
    try:
        e = pathways.enrol(
            session,
            pathway,
            unit_id,
            by=user.username,
            started_on=date.fromisoformat(started_on) if started_on else None,
        )
    except (ProductsError, ValueError) as exc:
        session.rollback()
        raise HTTPException(422, str(exc)) from None
    session.commit()
    state(request).audit.record(
        "pathway.enrol",
        "allowed",
        user=user,
        nominal_ids=[unit_id],
        client=client_address(request),
        detail={"enrolment": e.id, "pathway": pathway},
    )
    return RedirectResponse(f"/tasking/enrolments/{e.id}", status_code=303)


@router.get("/tasking/enrolments/{enrolment_id}", include_in_schema=False)
def enrolment_page(
    request: Request,
    enrolment_id: int,
    user: User = Depends(casework),
    session: Session = Depends(db),
) -> Response:
    e = session.get(Enrolment, enrolment_id)
    if e is None:
        raise HTTPException(404, "no such enrolment")
    session.commit()
    _audit_case_view(request, user, f"enrolment:{enrolment_id}", [e.unit_id])
    return render(
        request, "products/enrolment.html", {"title": e.pathway.name, "e": e, "today": date.today()}
    )


@router.post("/tasking/enrolments/{enrolment_id}/steps/{step_id}", include_in_schema=False)
def record_step(
    request: Request,
    enrolment_id: int,
    step_id: int,
    status: str = Form(...),
    note: str = Form(""),
    user: User = Depends(casework),
    session: Session = Depends(db),
) -> Response:
    step = session.get(EnrolmentStep, step_id)
    if step is None or step.enrolment_id != enrolment_id:
        raise HTTPException(404, "no such step")
    try:
        pathways.record_step(session, step, status, note=note or None)
    except ProductsError as exc:
        session.rollback()
        raise HTTPException(422, str(exc)) from None
    session.commit()
    state(request).audit.record(
        "pathway.step",
        "allowed",
        user=user,
        nominal_ids=[step.enrolment.unit_id],
        client=client_address(request),
        detail={"step": step_id, "status": status},
    )
    return RedirectResponse(f"/tasking/enrolments/{enrolment_id}", status_code=303)


@router.post("/tasking/pathways/escalate", include_in_schema=False)
def escalate(
    request: Request, user: User = Depends(casework), session: Session = Depends(db)
) -> Response:
    missed = pathways.escalate_overdue(session, by=user.username)
    session.commit()
    state(request).audit.record(
        "pathway.escalate",
        "allowed",
        user=user,
        client=client_address(request),
        detail={"escalated": len(missed)},
    )
    return RedirectResponse("/tasking/pathways", status_code=303)


# -- analyst workbench ---------------------------------------------------------------------
def _bench(request: Request, enforcer: Enforcer) -> workbench.Workbench:
    """The analyst's restricted connection, kept per user, purpose and snapshot."""
    con = lake_cursor(request)
    permitted = permitted_for(con, enforcer)
    hub = state(request)
    snapshot = Lake(hub.home.lake).current()
    key = (
        "workbench",
        enforcer.user.id,
        enforcer.purpose.code,
        snapshot.id if snapshot else "",
        permitted.datasets,
    )
    return _recent(
        request,
        "workbenches",
        key,
        lambda: workbench.restricted_connection(con, permitted.datasets),
        WORKBENCHES_KEPT,
    )


EXAMPLE_SQL = (
    "SELECT agency, strftime(date_trunc('month', event_date), '%Y-%m') AS month, count(*) AS events\n"
    "FROM events\nGROUP BY ALL\nORDER BY month, agency"
)


@router.get("/workbench", include_in_schema=False)
def workbench_page(
    request: Request,
    purpose: str | None = Query(None),
    user: User = Depends(analysts),
    session: Session = Depends(db),
) -> Response:
    enforcer = enforcer_for(request, user, session, purpose)
    if enforcer is None:
        return choose_purpose(request, session, "Analyst workbench")
    bench = _bench(request, enforcer)
    return render(
        request,
        "products/workbench.html",
        {
            "title": "Analyst workbench",
            "purpose": enforcer.purpose,
            "bench": bench,
            "sql": EXAMPLE_SQL,
            "result": None,
            "error": None,
            "chart": None,
            "schema": {
                t: [r[0] for r in bench.con.cursor().execute(f'DESCRIBE "{t}"').fetchall()]
                for t in bench.tables
            },
        },
    )


@router.post("/workbench", include_in_schema=False)
def workbench_run(
    request: Request,
    purpose: str = Form(...),
    sql: str = Form(...),
    output: str = Form("table"),
    user: User = Depends(analysts),
    session: Session = Depends(db),
) -> Response:
    enforcer = enforcer_for(request, user, session, purpose)
    assert enforcer is not None
    bench = _bench(request, enforcer)
    session.commit()
    hub = state(request)

    def audit(action: str, detail: dict[str, Any]) -> None:
        hub.audit.record(
            action,
            "allowed" if detail.get("outcome") == "ok" else "denied",
            user=user,
            purpose=enforcer.purpose.code,
            client=client_address(request),
            detail={**detail, "datasets": list(bench.datasets)},
        )

    bench.audit = audit
    error = None
    result = None
    try:
        result = bench.run(sql)
    except workbench.QueryRejected as exc:
        error = str(exc)
    finally:
        bench.audit = None
    if result is not None and output == "csv":
        out = io.StringIO()
        writer = escaping_writer(out)
        writer.writerow(result.columns)
        writer.writerows(
            [[v.isoformat() if hasattr(v, "isoformat") else v for v in r] for r in result.rows]
        )
        return csv_response(out.getvalue(), "query.csv")
    chart = None
    if result is not None and output == "chart" and len(result.columns) >= 2:
        records = result.records()
        first, second = result.columns[0], result.columns[-1]
        chart = charts.bar(
            "query",
            "Query result",
            records,
            first,
            second,
            (first, second),
            f"Bars: {second} by {first}.",
            limit=50,
        )
    return render(
        request,
        "products/workbench.html",
        {
            "title": "Analyst workbench",
            "purpose": enforcer.purpose,
            "bench": bench,
            "sql": sql,
            "result": result,
            "error": error,
            "chart": chart,
            "schema": {
                t: [r[0] for r in bench.con.cursor().execute(f'DESCRIBE "{t}"').fetchall()]
                for t in bench.tables
            },
        },
        status_code=422 if error else 200,
    )


# -- benefits realisation ------------------------------------------------------------------
MEASURE_DATASETS = {
    "asb": ("anti_social_behaviour",),
    "offending": ("crimes",),
    "police_callouts": ("police_incidents",),
    "domestic_abuse": ("domestic_abuse",),
    "treatment": ("substance_misuse",),
    "school_absence": ("school_attendance",),
}


def _realisation(
    request: Request, enforcer: Enforcer, session: Session
) -> tuple[benefits.Realisation, Permitted]:
    con = lake_cursor(request)
    permitted = permitted_for(con, enforcer)
    extra = [
        (t.unit_id, t.created_at.date())
        for t in session.scalars(
            sa.select(Task).where(Task.unit_type == "household", Task.status != "cancelled")
        )
    ]
    extra += [
        (e.unit_id, e.started_on)
        for e in session.scalars(sa.select(Enrolment).where(Enrolment.unit_type == "household"))
    ]
    # Work raised against a household since merged or re-formed counts for the household
    # it lives on as (tasks keep the id they were raised against).
    lineage = Lineage.load(con)
    extra = [
        (live, started)
        for unit_id, started in extra
        if (live := lineage.resolve(unit_id, "household")) is not None
    ]
    hub = state(request)
    snapshot = Lake(hub.home.lake).current()
    key = (snapshot.id if snapshot else "", tuple(sorted(extra)))
    result = _recent(
        request,
        "benefits",
        key,
        lambda: benefits.realise(con, extra_families=extra),
        BENEFITS_KEPT,
    )
    # A measure is shown only if the datasets it counts are shared for this purpose.
    shown = [
        m for m in result.measures if set(MEASURE_DATASETS[m.measure]) <= set(permitted.datasets)
    ]
    out = benefits.Realisation(
        result.as_of, result.worked, result.with_followup, result.matched, shown
    )
    return out, permitted


@router.get("/benefits", include_in_schema=False)
def benefits_page(
    request: Request,
    purpose: str | None = Query(None),
    user: User = Depends(managers),
    session: Session = Depends(db),
) -> Response:
    enforcer = enforcer_for(request, user, session, purpose)
    if enforcer is None:
        return choose_purpose(request, session, "Benefits realisation")
    result, permitted = _realisation(request, enforcer, session)
    rows = [
        {
            "label": m.label,
            "estimate": (m.effect or m.change)[0],
            "low": (m.effect or m.change)[1],
            "high": (m.effect or m.change)[2],
            "rag": m.rag,
        }
        for m in result.measures
    ]
    chart = charts.interval(
        "effects",
        "Estimated effect per family, with 95% confidence intervals",
        rows,
        "Points with interval bars: change per family after minus before, relative to "
        "the matched comparison group; the dashed line is no change.",
    )
    risks = session.scalars(sa.select(ProgrammeRisk).order_by(ProgrammeRisk.id)).all()
    matrix = {
        (lk, im): [r for r in risks if r.likelihood == lk and r.impact == im and r.status == "open"]
        for lk in range(1, 6)
        for im in range(1, 6)
    }
    enforcer.audit("view_benefits", None, detail={"datasets": list(permitted.datasets)})
    return render(
        request,
        "products/benefits.html",
        {
            "title": "Benefits realisation",
            "result": result,
            "chart": chart,
            "purpose": enforcer.purpose,
            "risks": risks,
            "matrix": matrix,
            "costs": benefits.load_unit_costs(),
        },
    )


@router.get("/benefits/data.csv", include_in_schema=False)
def benefits_csv(
    request: Request,
    purpose: str = Query(...),
    user: User = Depends(managers),
    session: Session = Depends(db),
) -> Response:
    enforcer = enforcer_for(request, user, session, purpose)
    assert enforcer is not None
    result, permitted = _realisation(request, enforcer, session)
    out = io.StringIO()
    writer = escaping_writer(out)
    writer.writerow(
        [
            "measure",
            "families",
            "baseline_mean",
            "followup_mean",
            "change",
            "change_low",
            "change_high",
            "effect",
            "effect_low",
            "effect_high",
            "saving_gbp",
            "rag",
        ]
    )
    for m in result.measures:
        e = m.effect or (None, None, None)
        writer.writerow(
            [
                m.measure,
                m.families,
                m.baseline_mean,
                m.followup_mean,
                *m.change,
                *e,
                m.saving_gbp,
                m.rag,
            ]
        )
    enforcer.audit(
        "export", None, detail={"what": "benefits", "datasets": list(permitted.datasets)}
    )
    return csv_response(out.getvalue(), "benefits.csv")


@router.get("/benefits/unit-costs.csv", include_in_schema=False)
def unit_costs_csv(user: User = Depends(current_user)) -> Response:
    return csv_response(benefits.UNIT_COSTS.read_text(encoding="utf-8"), "unit_costs.csv")


@router.post("/benefits/risks", include_in_schema=False)
def add_risk(
    request: Request,
    title: str = Form(""),
    owner: str = Form(""),
    likelihood: int = Form(...),
    impact: int = Form(...),
    mitigation: str = Form(""),
    purpose: str = Form(""),
    user: User = Depends(managers),
    session: Session = Depends(db),
) -> Response:
    if not title.strip() or not owner.strip():
        raise HTTPException(422, "a risk needs a title and an owner")
    if not (1 <= likelihood <= 5 and 1 <= impact <= 5):
        raise HTTPException(422, "likelihood and impact are scored 1 to 5")
    session.add(
        ProgrammeRisk(
            title=title.strip(),
            owner=owner.strip(),
            likelihood=likelihood,
            impact=impact,
            mitigation=mitigation or None,
        )
    )
    session.commit()
    state(request).audit.record(
        "risk.create", "allowed", user=user, client=client_address(request), detail={"title": title}
    )
    return RedirectResponse(f"/benefits?purpose={purpose}#risks", status_code=303)


# -- system usage --------------------------------------------------------------------------
@router.get("/usage", include_in_schema=False)
def usage_page(
    request: Request,
    weeks: int = Query(12),
    user: User = Depends(usage_viewers),
    session: Session = Depends(db),
) -> Response:
    rows = usage.usage(session, weeks=max(1, min(weeks, 104)))
    by_week = [
        {"week": w, "kind": k, "count": n}
        for w, kinds in usage.totals(rows, "week").items()
        for k, n in kinds.items()
    ]
    chart = charts.Chart(
        "usage",
        "Use by week",
        "Stacked bars: sign-ins, searches, views, queries and changes per week.",
        [("week", "Week"), ("kind", "Kind"), ("count", "Count")],
        by_week,
        charts.stacked_months(
            "u",
            "Use by week",
            [{"month": r["week"], "agency": r["kind"], "events": r["count"]} for r in by_week],
            "Stacked bars: use per week by kind.",
        ).spec,
    )
    return render(
        request,
        "products/usage.html",
        {
            "title": "System usage",
            "rows": rows,
            "chart": chart,
            "kinds": usage.KINDS,
            "by_partner": usage.totals(rows, "partner"),
            "by_role": usage.totals(rows, "role"),
            "weeks": weeks,
        },
    )


@router.get("/usage/data.csv", include_in_schema=False)
def usage_csv(
    weeks: int = Query(12), user: User = Depends(usage_viewers), session: Session = Depends(db)
) -> Response:
    out = io.StringIO()
    writer = escaping_writer(out)
    writer.writerow(["week", "partner", "role", "kind", "allowed", "denied"])
    for r in usage.usage(session, weeks=max(1, min(weeks, 104))):
        writer.writerow([r.week.isoformat(), r.partner, r.role, r.kind, r.allowed, r.denied])
    return csv_response(out.getvalue(), "usage.csv")


@router.get("/api/products/dashboard", tags=["products"], responses=errors(400))
def dashboard_api(
    request: Request,
    purpose: str = Query(..., description="why the data is needed (a purpose code)"),
    user: User = Depends(current_user),
    session: Session = Depends(db),
) -> dict[str, Any]:
    """The dashboard's figures as JSON (the same filters as the page)."""
    found = _board(request, user, session, purpose)
    if found is None:  # an empty purpose
        raise HTTPException(400, "say why you need the data: choose a purpose")
    enforcer, permitted, board, _ = found
    identified = shows_identity(user, permitted)
    enforcer.audit("view_dashboard", None, detail={"filters": board.filters.to_json(), "api": True})
    return {
        **board.summary(),
        "datasets": list(permitted.datasets),
        "by_agency": board.volumes.by_agency,
        "by_month": board.volumes.by_month,
        "duplicates": [
            {k: v for k, v in r.items() if k != "involvements"}
            for r in _duplicate_rows(board.duplicates, identified)
        ],
    }


__all__ = ["NAV", "PlainTextResponse", "router"]
