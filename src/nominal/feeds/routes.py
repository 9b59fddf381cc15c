"""The feed API (hub of hubs): push deliveries, resumable; pull what agreements allow.

``/api/feeds`` (bearer token of a partner system, see :mod:`nominal.feeds.tokens`):

* ``POST /api/feeds/{feed}/deliveries``: declare a delivery (headers ``Delivery-Id``,
  ``Delivery-Filename``, ``Upload-Length``, optional ``Delivery-Checksum: sha256=<hex>``);
  ``201`` with ``Location`` and ``Upload-Offset: 0``, or ``200`` with the existing
  upload when the delivery id was declared before (idempotent retry);
* ``HEAD /api/feeds/uploads/{id}``: ``Upload-Offset`` and ``Upload-Length``;
* ``PATCH /api/feeds/uploads/{id}`` (``Content-Type: application/offset+octet-stream``,
  ``Upload-Offset``): append bytes; ``204`` with the new ``Upload-Offset``; ``409`` if
  the offset is not where the hub is (ask with ``HEAD``);
* ``GET /api/feeds/deliveries/{delivery_id}``: the delivery's state and, once ingested,
  its row counts;
* ``GET /api/feeds/pull/nominals``: the nominal id of each of the partner's own
  records (under live agreements; audited);
* ``GET /api/feeds/pull/alerts``: the partner's alerts.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.requests import ClientDisconnect

from nominal.config import Home
from nominal.db import ControlPlane
from nominal.feeds import uploads
from nominal.feeds.models import FeedUpload
from nominal.feeds.tokens import check_feed_token
from nominal.govern.models import User
from nominal.ops.web import get_control, get_home
from nominal.web.deps import current_user

log = logging.getLogger("nominal.feeds")
api = APIRouter(prefix="/api/feeds", tags=["feed API"])
# Persist the offset this often while bytes stream in, so a crashed server loses little.
CHECKPOINT_BYTES = 64 << 20


class Caller:
    """The partner system behind a request (from its token)."""

    def __init__(self, partner_code: str, feeds: list[str], can_pull: bool, token_id: str) -> None:
        self.partner_code = partner_code
        self.feeds = feeds
        self.can_pull = can_pull
        self.token_id = token_id


def caller(
    control: Annotated[ControlPlane, Depends(get_control)],
    authorization: Annotated[str | None, Header()] = None,
) -> Caller:
    """The token's partner; 401 without a live feed token."""
    if not authorization or not authorization.lower().startswith("bearer "):
        raise HTTPException(
            401,
            "a feed token is required (Authorization: Bearer nmf_...)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    with control.session() as session:
        token = check_feed_token(session, authorization[7:])
        if token is None:
            raise HTTPException(
                401,
                "the token is not valid, expired or revoked",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Caller(token.partner_code, token.feeds, token.can_pull, token.token_id)


CallerDep = Annotated[Caller, Depends(caller)]
HomeDep = Annotated[Home, Depends(get_home)]
ControlDep = Annotated[ControlPlane, Depends(get_control)]


def _fail(exc: uploads.UploadError) -> HTTPException:
    return HTTPException(exc.status, exc.message)


def _max_bytes() -> int:
    from nominal.ops.settings import settings

    return settings().upload_max_bytes


def _owned(session: Any, who: Caller, upload_id: str) -> FeedUpload:
    upload = session.get(FeedUpload, upload_id)
    if upload is None or upload.partner_code != who.partner_code:
        raise HTTPException(404, f"no upload {upload_id}")
    return upload


def _offset_headers(upload: FeedUpload) -> dict[str, str]:
    return {
        "Upload-Offset": str(upload.offset),
        "Upload-Length": str(upload.length),
        "Cache-Control": "no-store",
    }


@api.post("/{feed}/deliveries", status_code=201)
def declare_delivery(
    feed: str,
    who: CallerDep,
    home: HomeDep,
    control: ControlDep,
    delivery_id: Annotated[str, Header(alias="Delivery-Id")],
    file_name: Annotated[str, Header(alias="Delivery-Filename")],
    upload_length: Annotated[int, Header(alias="Upload-Length")],
    checksum: Annotated[str | None, Header(alias="Delivery-Checksum")] = None,
) -> JSONResponse:
    """Declare a delivery to push; a retry with the same Delivery-Id returns the same upload."""
    digest = None
    if checksum is not None:
        algo, _, digest = checksum.partition("=")
        if algo.strip().lower() != "sha256":
            raise HTTPException(400, "Delivery-Checksum: only sha256=<hex> is supported")
    from nominal.feeds.models import FeedToken

    with control.session() as session:
        token = session.query(FeedToken).filter_by(token_id=who.token_id).one()
        try:
            upload, created = uploads.create_upload(
                session,
                home,
                token,
                feed,
                delivery_id,
                file_name,
                upload_length,
                digest.strip().lower() if digest else None,
                _max_bytes(),
            )
        except uploads.UploadError as exc:
            raise _fail(exc) from None
        body = uploads.upload_json(upload)
        headers = {**_offset_headers(upload), "Location": body["location"]}
    log.info(
        "delivery declared" if created else "delivery declared again",
        extra={"partner": who.partner_code, "feed": feed, "delivery_id": delivery_id},
    )
    from nominal.ops import metrics

    metrics.FEED_DELIVERIES.labels(feed=feed, outcome="declared" if created else "retried").inc()
    return JSONResponse(body, status_code=201 if created else 200, headers=headers)


@api.head("/uploads/{upload_id}")
def upload_offset(upload_id: str, who: CallerDep, control: ControlDep) -> Response:
    """How many bytes of the upload the hub holds."""
    with control.session() as session:
        upload = _owned(session, who, upload_id)
        return Response(status_code=200, headers=_offset_headers(upload))


@api.get("/uploads/{upload_id}")
def upload_state(upload_id: str, who: CallerDep, control: ControlDep) -> JSONResponse:
    with control.session() as session:
        upload = _owned(session, who, upload_id)
        return JSONResponse(uploads.upload_json(upload), headers=_offset_headers(upload))


@contextmanager
def _exclusive(path: str) -> Iterator[Any]:
    """One PATCH at a time per upload (a second concurrent one gets 423)."""
    handle = open(path, "r+b")  # noqa: SIM115
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise HTTPException(423, "another request is writing this upload") from None
        yield handle
    finally:
        handle.close()


@api.patch("/uploads/{upload_id}", status_code=204)
async def append_bytes(
    upload_id: str,
    request: Request,
    who: CallerDep,
    home: HomeDep,
    control: ControlDep,
    upload_offset: Annotated[int, Header(alias="Upload-Offset")],
    content_type: Annotated[str | None, Header()] = None,
) -> Response:
    """Append the body at ``Upload-Offset``; bytes that arrive before a disconnect are kept."""
    if (content_type or "").split(";")[0].strip() != "application/offset+octet-stream":
        raise HTTPException(415, "Content-Type must be application/offset+octet-stream")
    with control.session() as session:
        upload = _owned(session, who, upload_id)
        if upload.status != "uploading":
            raise HTTPException(409, f"upload {upload_id} is {upload.status}; nothing to append")
        if upload_offset != upload.offset:
            raise HTTPException(
                409,
                f"Upload-Offset {upload_offset} is not the hub's offset {upload.offset}",
                headers=_offset_headers(upload),
            )
        length, start = upload.length, upload.offset
    part = uploads.part_path(home, upload_id)
    if not part.exists():
        raise HTTPException(410, f"upload {upload_id}'s data is gone: declare a new delivery")
    from nominal.ops import metrics

    position = start
    disconnected = False
    with _exclusive(str(part)) as handle:
        # Bytes past the recorded offset (a server that died mid-request) are not trusted.
        handle.truncate(start)
        handle.seek(start)
        checkpoint = start
        try:
            async for chunk in request.stream():
                if not chunk:
                    continue
                if position + len(chunk) > length:
                    raise HTTPException(413, f"more bytes than the declared Upload-Length {length}")
                handle.write(chunk)
                position += len(chunk)
                metrics.FEED_UPLOAD_BYTES.inc(len(chunk))
                if position - checkpoint >= CHECKPOINT_BYTES:
                    handle.flush()
                    os.fsync(handle.fileno())
                    _record_offset(control, upload_id, position)
                    checkpoint = position
        except ClientDisconnect:
            disconnected = True
        finally:
            handle.flush()
            os.fsync(handle.fileno())
            _record_offset(control, upload_id, position)
    if disconnected:
        log.info("upload interrupted", extra={"upload_id": upload_id, "offset": position})
        return Response(status_code=204, headers={"Upload-Offset": str(position)})
    with control.session() as session:
        upload = _owned(session, who, upload_id)
        if upload.offset == upload.length:
            try:
                uploads.complete(session, home, upload)
            except uploads.UploadError as exc:
                if exc.status == 460:
                    session.commit()  # keep the reset offset
                raise _fail(exc) from None
            metrics.FEED_DELIVERIES.labels(feed=upload.feed, outcome="received").inc()
            log.info(
                "delivery received",
                extra={
                    "partner": who.partner_code,
                    "feed": upload.feed,
                    "upload_id": upload_id,
                    "bytes": upload.length,
                    "sha256": upload.sha256,
                },
            )
        return Response(status_code=204, headers=_offset_headers(upload))


def _record_offset(control: ControlPlane, upload_id: str, offset: int) -> None:
    with control.session() as session:
        upload = session.get(FeedUpload, upload_id)
        if upload is not None:
            upload.offset = offset


@api.get("/deliveries/{delivery_id}")
def delivery_state(
    delivery_id: str, who: CallerDep, home: HomeDep, control: ControlDep
) -> dict[str, Any]:
    """The delivery's upload state and, once ingested, what ingest made of it."""
    import sqlalchemy as sa

    with control.session() as session:
        upload = session.scalar(
            sa.select(FeedUpload).where(
                FeedUpload.partner_code == who.partner_code,
                FeedUpload.delivery_id == delivery_id,
            )
        )
        if upload is None:
            raise HTTPException(404, f"no delivery {delivery_id}")
        body = uploads.upload_json(upload)
    body["ingest"] = uploads.ingest_outcome(home, body["sha256"])
    return body


@api.get("/pull/nominals")
def pull_nominals(
    who: CallerDep, home: HomeDep, control: ControlDep, dataset: str | None = None
) -> dict[str, Any]:
    """The nominal id of each of the partner's own records, where its agreement allows sharing."""
    from nominal.contracts.registry import registered_contracts
    from nominal.feeds.agreements import own_dataset_allowed

    if not who.can_pull:
        raise HTTPException(403, "this token may not pull")
    own = [c for c in registered_contracts(home) if c.partner.code == who.partner_code]
    if dataset is not None:
        own = [c for c in own if c.dataset == dataset]
        if not own:
            raise HTTPException(404, f"{who.partner_code} provides no dataset {dataset!r}")
    allowed: list[str] = []
    refused: dict[str, str] = {}
    with control.session() as session:
        for c in own:
            reason = own_dataset_allowed(session, c.agreement, c.dataset)
            if reason is None:
                allowed.append(c.dataset)
            else:
                refused[c.dataset] = reason
    records = _own_records(home, sorted(set(allowed)))
    _audit(
        home,
        control,
        who,
        "feeds.pull.nominals",
        "allowed" if allowed else "denied",
        {"datasets": sorted(set(allowed)), "refused": refused, "records": len(records)},
    )
    if not allowed and refused:
        raise HTTPException(403, "; ".join(f"{d}: {r}" for d, r in sorted(refused.items())))
    return {"partner": who.partner_code, "records": records, "refused": refused}


def _own_records(home: Home, datasets: list[str]) -> list[dict[str, Any]]:
    from nominal.engines.duck import connect, sql_literal
    from nominal.engines.lake import Lake

    snap = Lake(home.lake).current()
    if not datasets or snap is None or not snap.has("gold.nominal_records"):
        return []
    con = connect(snap, tables=["gold.nominal_records"])
    listed = ", ".join(sql_literal(d) for d in datasets)
    rows = con.execute(
        "SELECT dataset, source_record_id, nominal_id FROM gold.nominal_records "
        f"WHERE dataset IN ({listed}) ORDER BY dataset, source_record_id"
    ).fetchall()
    return [{"dataset": d, "source_record_id": s, "nominal_id": n} for d, s, n in rows]


def _audit(
    home: Home,
    control: ControlPlane,
    who: Caller,
    action: str,
    outcome: str,
    detail: dict[str, Any],
) -> None:
    from nominal.govern.audit import audit_log

    audit_log(control, home).record(
        action,
        outcome,
        username=f"partner:{who.partner_code}",
        purpose="feed_api",
        client=f"feed-token:{who.token_id}",
        detail=detail,
    )


@api.get("/pull/alerts")
def pull_alerts(
    who: CallerDep, home: HomeDep, control: ControlDep, after: int = 0, limit: int = 500
) -> dict[str, Any]:
    """The partner's alerts with id greater than ``after`` (page with the last id seen)."""
    from nominal.feeds.alerts import alerts_for

    if not who.can_pull:
        raise HTTPException(403, "this token may not pull")
    found = alerts_for(control, who.partner_code, after=after, limit=min(limit, 5000))
    _audit(home, control, who, "feeds.pull.alerts", "allowed", {"alerts": len(found)})
    return {"partner": who.partner_code, "alerts": found}


# -- in-app notifications (signed-in users) ---------------------------------------------
pages = APIRouter(tags=["notifications"])
NAV = [("Notifications", "/notifications")]


UserDep = Annotated[User, Depends(current_user)]


@pages.get("/notifications", response_class=HTMLResponse)
def notifications_page(request: Request, control: ControlDep, user: UserDep) -> HTMLResponse:
    """Alerts for the signed-in user's partner, newest first (the read is audited)."""
    from nominal.feeds.alerts import alerts_for
    from nominal.web.templating import render

    partner = user.partner.code
    found = list(reversed(alerts_for(control, partner, limit=5000)))[:200]
    dead = _dead_webhooks(control, partner)
    request.app.state.hub.audit.record(
        "alerts.read",
        "allowed",
        user=user,
        nominal_ids=[a["nominal_id"] for a in found],
        detail={"alerts": len(found)},
    )
    return render(request, "notifications.html", {"alerts": found, "dead": dead})


@pages.post(
    "/notifications/read",
    status_code=303,
    response_class=RedirectResponse,
    responses={303: {"description": "Back to /notifications", "content": {}}},
)
def mark_read(control: ControlDep, user: UserDep) -> RedirectResponse:
    """Mark every alert of the user's partner as read."""
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from nominal.feeds.models import Alert

    with control.session() as session:
        session.execute(
            sa.update(Alert)
            .where(Alert.partner_code == user.partner.code, Alert.read_at.is_(None))
            .values(read_at=datetime.now(UTC))
        )
    return RedirectResponse("/notifications", status_code=303)


def _dead_webhooks(control: ControlPlane, partner: str) -> int:
    import sqlalchemy as sa

    from nominal.feeds.models import Alert, WebhookDelivery

    with control.session() as session:
        return int(
            session.scalar(
                sa.select(sa.func.count())
                .select_from(WebhookDelivery)
                .join(Alert, Alert.id == WebhookDelivery.alert_id)
                .where(Alert.partner_code == partner, WebhookDelivery.status == "dead")
            )
            or 0
        )


# What the web app mounts: the feed API and the notifications pages.
router = APIRouter()
router.include_router(api)
router.include_router(pages)
