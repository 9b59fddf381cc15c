"""Coverage-guided fuzzing of the ingest readers and validators with atheris (libFuzzer).

    python fuzz/run.py TARGET [--seconds N | --runs N] [--stats FILE]

TARGET is one of csv, ndjson, xlsx, parquet, pdf, docx, txt, contract. The corpus starts
from valid files built here (so the fuzzer mutates realistic deliveries) and the Python
code of the parsers (pypdf, openpyxl, python-docx, PyYAML, pydantic and the hub's
own) is instrumented for coverage; DuckDB's C++ readers are exercised but not
instrumented. Every exception other than the documented clear refusals is a crash:
it is recorded by (type, innermost hub or library frame) so distinct crashes are
counted, and fuzzing continues. ``--stats`` receives a JSON summary: executions,
seconds, distinct crashes (with one reproducing input each, base64) and findings.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import atheris

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

with atheris.instrument_imports(
    include=["nominal", "pypdf", "openpyxl", "docx", "yaml", "pydantic", "hostile"]
):
    import hostile

TARGETS = ("csv", "ndjson", "xlsx", "parquet", "pdf", "docx", "txt", "contract")


def seeds(target: str) -> list[bytes]:
    """Valid inputs of the target's format, the fuzzer's starting corpus."""
    header = ",".join(hostile.COLUMNS)
    rows = [
        ["1", "Ann", "O'Neil-Smith", "2000-01-01", "NE1 4ST", "9434765919", "2024-05-01", "low", "3"],
        ["2", "Bo", "Ng", "1980-12-31", "", "", "2023-01-02", "high", ""],
    ]  # fmt: skip
    if target == "csv":
        return [(header + "\r\n" + "\r\n".join(",".join(r) for r in rows) + "\r\n").encode()]
    if target == "ndjson":
        return [
            "".join(json.dumps(dict(zip(hostile.COLUMNS, r, strict=True))) + "\n" for r in rows)
            .encode()
        ]  # fmt: skip
    if target == "xlsx":
        from openpyxl import Workbook

        book = Workbook()
        book.active.append(list(hostile.COLUMNS))
        for r in rows:
            book.active.append(r)
        buf = io.BytesIO()
        book.save(buf)
        return [buf.getvalue()]
    if target == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        cols = {c: [r[i] for r in rows] for i, c in enumerate(hostile.COLUMNS)}
        pq.write_table(pa.table(cols), buf)
        return [buf.getvalue()]
    if target == "pdf":
        from fpdf import FPDF

        pdf = FPDF()
        pdf.add_page()
        pdf.set_font("helvetica", size=11)
        pdf.set_title("Case note")
        pdf.multi_cell(0, 8, "Visit to Ann O'Neil-Smith. Concerns noted.")
        return [bytes(pdf.output())]
    if target == "docx":
        from docx import Document

        doc = Document()
        doc.core_properties.title = "Case note"
        doc.add_paragraph("Visit to Ann O'Neil-Smith. Concerns noted.")
        buf = io.BytesIO()
        doc.save(buf)
        return [buf.getvalue()]
    if target == "txt":
        return [b"Visit to Ann. Concerns noted.\n"]
    import yaml

    return [
        yaml.safe_dump(
            hostile.contract(kind).model_dump(mode="json", by_alias=True, exclude_none=True)
        ).encode()
        for kind in ("csv", "xlsx", "document")
    ]


class Recorder:
    """Counts executions and distinct crashes; writes the stats file now and then."""

    def __init__(self, target: str, stats: Path | None) -> None:
        self.target = target
        self.stats = stats
        self.executions = 0
        self.started = time.monotonic()
        self.last_write = 0.0
        self.crashes: dict[str, dict[str, Any]] = {}
        self.findings: dict[str, dict[str, Any]] = {}

    def record(self, kind: str, exc: BaseException, data: bytes) -> None:
        frames = traceback.extract_tb(exc.__traceback__)
        where = frames[-1] if frames else None
        key = f"{type(exc).__name__} at {where.filename}:{where.lineno}" if where else repr(exc)
        bucket = self.crashes if kind == "crash" else self.findings
        if key not in bucket:
            bucket[key] = {
                "message": str(exc)[:500],
                "input_b64": base64.b64encode(data[:100_000]).decode(),
                "count": 0,
            }
            print(f"[{self.target}] new {kind}: {key}: {str(exc)[:200]}", file=sys.stderr)
        bucket[key]["count"] += 1
        self.write(force=True)

    def write(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.stats is None or (not force and now - self.last_write < 2):
            return
        self.last_write = now
        summary = {
            "target": self.target,
            "executions": self.executions,
            "seconds": round(now - self.started, 1),
            "distinct_crashes": len(self.crashes),
            "distinct_findings": len(self.findings),
            "crashes": self.crashes,
            "findings": self.findings,
        }
        tmp = self.stats.with_suffix(".tmp")
        tmp.write_text(json.dumps(summary, indent=1))
        os.replace(tmp, self.stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--runs", type=int, default=0, help="stop after this many executions")
    parser.add_argument("--stats", type=Path)
    args, rest = parser.parse_known_args()
    work = Path(tempfile.mkdtemp(prefix=f"nominal-fuzz-{args.target}-"))
    corpus = work / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(seeds(args.target)):
        (corpus / f"seed{i}").write_bytes(seed)
    recorder = Recorder(args.target, args.stats)

    def one(data: bytes) -> None:
        recorder.executions += 1
        try:
            if args.target in ("pdf", "docx", "txt"):
                hostile.document_target("." + args.target, data, work)
            elif args.target == "contract":
                hostile.contract_target(data)
            else:
                hostile.reader_target(args.target, data, work)
        except hostile.Finding as exc:
            recorder.record("finding", exc, data)
        except Exception as exc:
            recorder.record("crash", exc, data)
        recorder.write()

    import atexit

    atexit.register(recorder.write, True)
    limit = [f"-runs={args.runs}"] if args.runs else [f"-max_total_time={args.seconds}"]
    atheris.Setup(
        [sys.argv[0], *limit, "-timeout=30", "-rss_limit_mb=3072", "-max_len=65536",
         f"-artifact_prefix={work}/", *rest, str(corpus)],
        one,
    )  # fmt: skip
    atheris.Fuzz()


if __name__ == "__main__":
    main()
