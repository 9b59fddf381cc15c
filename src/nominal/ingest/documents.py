"""Documents (case notes, letters): stored whole in bronze, their text in silver.documents.

Text is extracted with pypdf (PDF), python-docx (DOCX) or read as UTF-8 (plain text).
A file that cannot be parsed -- corrupt, truncated, encrypted, or crafted to break a
parser -- goes to ``silver.quarantine`` with the reason; it never stops the run.
"""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from nominal.contracts.model import Contract
from nominal.ingest.limits import ParseFailed, run_limited

if TYPE_CHECKING:
    from nominal.ingest.pipeline import DeliveryResult, RunContext

MAX_PAGES = 2000  # a "document" with more pages than this is not a case note
MEDIA_TYPES = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".txt": "text/plain",
}

DOCUMENTS_SCHEMA = pa.schema(
    [
        ("document_id", pa.string()),
        ("file_name", pa.string()),
        ("partner", pa.string()),
        ("bronze_path", pa.string()),
        ("media_type", pa.string()),
        ("title", pa.string()),
        ("author", pa.string()),
        ("created", pa.timestamp("us")),
        ("pages", pa.int64()),
        ("text", pa.string()),
        ("received_at", pa.timestamp("us")),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        ("delivery_id", pa.string()),
        ("feed", pa.string()),
        ("dataset", pa.string()),
        ("file_name", pa.string()),
        ("row_number", pa.int64()),
        ("field", pa.string()),
        ("reason", pa.string()),
        ("raw", pa.string()),
        ("quarantined_at", pa.timestamp("us")),
    ]
)


class DocumentError(ValueError):
    """A document's text cannot be extracted."""


def _naive(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def extract(path: Path) -> dict[str, Any]:
    """Text and metadata of one document; raises :class:`DocumentError` if unreadable."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return _pdf(path)
    if suffix == ".docx":
        return _docx(path)
    if suffix == ".txt":
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DocumentError(f"not UTF-8 text ({exc.reason})") from None
        return {"title": None, "author": None, "created": None, "pages": 1, "text": text}
    raise DocumentError(f"unsupported document type {suffix or '(none)'}")


# PDF names that make a document do something when opened: scripts, launching programs,
# embedded files, forms posting elsewhere. Case notes need none of them, so a PDF that
# has any is quarantined rather than stored where staff would open it.
ACTIVE_PDF_NAMES = frozenset(
    {"/JS", "/JavaScript", "/Launch", "/EmbeddedFile", "/EmbeddedFiles", "/RichMedia",
     "/XFA", "/SubmitForm", "/ImportData", "/GoToR", "/GoToE"}
)  # fmt: skip
MAX_PDF_OBJECTS = 200_000  # objects walked looking for active content


def _pdf_active_content(reader: Any) -> str | None:
    """The first active-content name found walking the PDF's objects, else None.

    Iterative (a crafted PDF can nest arrays deeply enough to overflow recursion) and
    bounded (a PDF with more objects than the budget is refused as too complex).
    """
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

    stack: list[Any] = [reader.trailer]
    seen: set[tuple[int, int]] = set()
    visited = 0
    while stack:
        node = stack.pop()
        if isinstance(node, IndirectObject):
            ref = (node.idnum, node.generation)
            if ref in seen:
                continue
            seen.add(ref)
            node = node.get_object()
        visited += 1
        if visited > MAX_PDF_OBJECTS:
            raise DocumentError(f"the PDF has more than {MAX_PDF_OBJECTS:,} objects")
        if isinstance(node, DictionaryObject):
            for key, value in node.items():
                if key in ACTIVE_PDF_NAMES:
                    return str(key)
                if isinstance(value, NameObject) and value in ACTIVE_PDF_NAMES:
                    return str(value)
                stack.append(value)
        elif isinstance(node, ArrayObject):
            stack.extend(node)
    return None


def _pdf(path: Path) -> dict[str, Any]:
    from pypdf import PdfReader

    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            raise DocumentError("the PDF is encrypted")
        active = _pdf_active_content(reader)
        if active is not None:
            raise DocumentError(f"the PDF has active content ({active}), which is not accepted")
        pages = len(reader.pages)
        if pages > MAX_PAGES:
            raise DocumentError(f"the PDF has {pages} pages (more than {MAX_PAGES})")
        text = "\n".join((page.extract_text() or "") for page in reader.pages)
        meta = reader.metadata
        title = meta.title if meta else None
        author = meta.author if meta else None
        created = _naive(meta.creation_date) if meta else None
    except DocumentError:
        raise
    except Exception as exc:
        raise DocumentError(f"not a readable PDF ({type(exc).__name__}: {exc})") from None
    return {"title": title, "author": author, "created": created, "pages": pages, "text": text}


def _docx(path: Path) -> dict[str, Any]:
    from docx import Document

    from nominal.ingest.readers import ReadError, check_zip

    try:
        check_zip(path)
    except ReadError as exc:
        raise DocumentError(str(exc).removeprefix(f"{path.name}: ")) from None
    try:
        doc = Document(str(path))
        text = "\n".join(p.text for p in doc.paragraphs)
        props = doc.core_properties
        title, author, created = props.title or None, props.author or None, _naive(props.created)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise DocumentError(f"not a readable DOCX ({type(exc).__name__}: {exc})") from None
    except Exception as exc:
        raise DocumentError(f"not a readable DOCX ({type(exc).__name__}: {exc})") from None
    return {"title": title, "author": author, "created": created, "pages": None, "text": text}


def ingest_document(
    ctx: RunContext, path: Path, contract: Contract, delivery_id: str, bronze_rel: str
) -> DeliveryResult:
    from nominal.ingest.pipeline import DeliveryResult

    result = DeliveryResult(
        file=str(path), feed=contract.feed, dataset=contract.dataset,
        delivery_id=delivery_id, status="ingested", rows_in=1,
    )  # fmt: skip
    ctx.seq += 1
    try:
        # pypdf and python-docx are Python: a crafted file could keep them busy for
        # hours, so extraction runs in a child process under the parse time limit.
        info = run_limited(extract, path)
    except (DocumentError, ParseFailed) as exc:
        row = {
            "delivery_id": delivery_id,
            "feed": contract.feed,
            "dataset": contract.dataset,
            "file_name": path.name,
            "row_number": 1,
            "field": "document",
            "reason": f"document_unreadable: {exc}",
            "raw": json.dumps({"file_name": path.name, "bytes": path.stat().st_size}),
            "quarantined_at": ctx.received_at,
        }
        out = ctx.tx.write_arrow(
            "silver.quarantine", pa.Table.from_pylist([row], QUARANTINE_SCHEMA)
        )
        ctx.new_files.setdefault("silver.quarantine", []).append((ctx.seq, out))
        result.rows_quarantined = 1
        result.message = f"{path.name}: {exc}"
        return result
    row = {
        "document_id": delivery_id,
        "file_name": path.name,
        "partner": contract.partner.code,
        "bronze_path": bronze_rel,
        "media_type": MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream"),
        "received_at": ctx.received_at,
        **info,
    }
    out = ctx.tx.write_arrow("silver.documents", pa.Table.from_pylist([row], DOCUMENTS_SCHEMA))
    ctx.new_files.setdefault("silver.documents", []).append((ctx.seq, out))
    result.rows_accepted = 1
    return result
