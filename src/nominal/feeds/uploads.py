"""Deliveries pushed over HTTPS: create, resume, complete (the feed API's logic).

The protocol is tus-like. ``POST`` declares the delivery (id, file name, length,
optionally its SHA-256) and returns the upload's address; ``PATCH`` sends bytes at
``Upload-Offset``; ``HEAD`` says how many bytes the hub holds. Bytes are appended to
``home/uploads/<upload id>.part`` and the offset recorded in the control plane as
they arrive, so an upload interrupted by a dropped connection (or a restarted
server) resumes from the last byte the hub has, not from the start.

A complete upload is checked against its declared checksum and moved atomically into
the inbox, where the pipeline (``nominal run`` or the scheduler watching the inbox)
ingests it like any other delivery. A delivery id used twice by the same partner
returns the same upload, and ingest recognises a file it already has by its SHA-256,
so retrying a delivery never adds rows twice.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from nominal.config import Home
from nominal.contracts.model import Contract
from nominal.feeds.models import FeedToken, FeedUpload

_DELIVERY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class UploadError(Exception):
    """A refused request: the HTTP status and a message that says what to change."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def uploads_dir(home: Home) -> Path:
    folder = home.root / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def part_path(home: Home, upload_id: str) -> Path:
    return uploads_dir(home) / f"{upload_id}.part"


def contract_for_feed(home: Home, feed: str) -> Contract | None:
    from nominal.contracts.registry import registered_contracts

    return next((c for c in registered_contracts(home) if c.feed == feed), None)


def create_upload(
    session: Session,
    home: Home,
    token: FeedToken,
    feed: str,
    delivery_id: str,
    file_name: str,
    length: int,
    checksum: str | None,
    max_bytes: int,
) -> tuple[FeedUpload, bool]:
    """Declare a delivery; returns the upload and whether it is new (False on a retry)."""
    if feed not in token.feeds:
        raise UploadError(403, f"this token may not push to feed {feed!r}")
    contract = contract_for_feed(home, feed)
    if contract is None:
        raise UploadError(404, f"no feed {feed!r} is registered")
    if contract.partner.code != token.partner_code:
        raise UploadError(403, f"feed {feed!r} belongs to partner {contract.partner.code}")
    if not _DELIVERY_ID.match(delivery_id or ""):
        raise UploadError(400, "Delivery-Id: 1-200 letters, digits, '.', '_', ':' or '-'")
    if not file_name or Path(file_name).name != file_name or file_name.startswith("."):
        raise UploadError(400, f"Delivery-Filename: {file_name!r} is not a plain file name")
    if not fnmatch(file_name, contract.deliveries.pattern):
        raise UploadError(
            400,
            f"Delivery-Filename: {file_name!r} does not match the feed's pattern "
            f"{contract.deliveries.pattern!r}",
        )
    if length <= 0:
        raise UploadError(400, "Upload-Length: must be a positive number of bytes")
    if length > max_bytes:
        raise UploadError(413, f"Upload-Length: {length} bytes is over the limit of {max_bytes}")
    if checksum is not None and not _SHA256.match(checksum):
        raise UploadError(400, "Delivery-Checksum: give sha256=<64 lower-case hex digits>")
    existing = session.scalar(
        sa.select(FeedUpload).where(
            FeedUpload.partner_code == token.partner_code, FeedUpload.delivery_id == delivery_id
        )
    )
    if existing is not None:
        same = (existing.feed, existing.file_name, existing.length) == (feed, file_name, length)
        if not same:
            raise UploadError(
                409,
                f"delivery {delivery_id} was already declared for {existing.file_name} "
                f"({existing.length} bytes): use a new Delivery-Id for a different file",
            )
        return existing, False
    upload = FeedUpload(
        id=uuid.uuid4().hex,
        partner_code=token.partner_code,
        delivery_id=delivery_id,
        feed=feed,
        file_name=file_name,
        length=length,
        offset=0,
        checksum=checksum,
        status="uploading",
    )
    session.add(upload)
    session.flush()
    part_path(home, upload.id).touch()
    return upload, True


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(4 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def complete(session: Session, home: Home, upload: FeedUpload) -> None:
    """All bytes are in: check the checksum and hand the file to the inbox."""
    part = part_path(home, upload.id)
    digest = sha256_file(part)
    if upload.checksum and digest != upload.checksum:
        # Start again under the same delivery id: the bytes are wrong, not the delivery.
        part.write_bytes(b"")
        upload.offset = 0
        upload.message = f"checksum mismatch: declared {upload.checksum}, received {digest}"
        raise UploadError(460, upload.message + "; upload again from offset 0")
    home.inbox.mkdir(parents=True, exist_ok=True)
    target = home.inbox / upload.file_name
    if target.exists() and sha256_file(target) != digest:
        raise UploadError(
            409,
            f"another {upload.file_name} is waiting in the inbox: "
            "retry when it has been ingested, or use another file name",
        )
    os.replace(part, target)  # atomic: the inbox never holds half a delivery
    upload.sha256 = digest
    upload.status = "received"
    upload.completed_at = datetime.now(UTC)
    upload.message = None


def upload_json(upload: FeedUpload, base: str = "/api/feeds") -> dict[str, Any]:
    return {
        "upload_id": upload.id,
        "delivery_id": upload.delivery_id,
        "feed": upload.feed,
        "file_name": upload.file_name,
        "length": upload.length,
        "offset": upload.offset,
        "status": upload.status,
        "sha256": upload.sha256,
        "message": upload.message,
        "location": f"{base}/uploads/{upload.id}",
    }


def ingest_outcome(home: Home, sha256: str | None) -> dict[str, Any] | None:
    """What ingest made of the delivery (from ``silver.deliveries``), if it has run."""
    if not sha256:
        return None
    from nominal.engines.lake import Lake

    snap = Lake(home.lake).current()
    if snap is None or not snap.has("silver.deliveries"):
        return None
    import pyarrow.compute as pc

    table = snap.read(
        "silver.deliveries",
        ["delivery_id", "status", "rows_in", "rows_accepted", "rows_quarantined", "message"],
    )
    found = table.filter(pc.equal(table["delivery_id"], sha256)).to_pylist()
    return found[-1] if found else None
