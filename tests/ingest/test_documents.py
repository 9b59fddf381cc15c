"""Documents: text extracted from real PDF and DOCX; bad files quarantined, never a crash."""

from __future__ import annotations

from pathlib import Path

from docx import Document
from fpdf import FPDF

from nominal.config import Home
from nominal.ingest import ingest_paths

from .helpers import contract_dict, query, write_contract

DOC_CONTRACT = {**contract_dict(feed="notes", pattern="case_note_*"), "fields": {},
                "format": {"type": "document"}, "retention": {"years": 7, "from": "received"}}  # fmt: skip


def _pdf(path: Path, text: str) -> None:
    pdf = FPDF()
    pdf.set_title("Strategy meeting")
    pdf.set_author("Children's Social Care")
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 6, text)
    pdf.output(str(path))


def test_pdf_docx_and_text_are_extracted_bad_ones_quarantined(
    hub_home: Home, tmp_path: Path
) -> None:
    write_contract(tmp_path / "c", DOC_CONTRACT)
    docs = tmp_path / "docs"
    docs.mkdir()
    _pdf(docs / "case_note_1.pdf", "Subject: Amelia Hart (date of birth 04/05/2015).")
    doc = Document()
    doc.core_properties.title = "Case note"
    doc.add_paragraph("Also present: Daniel Hart, born 1 March 1984.")
    doc.save(str(docs / "case_note_2.docx"))
    (docs / "case_note_3.txt").write_text("Telephone call with school about attendance.")
    # corrupt and hostile files
    (docs / "case_note_4.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R")
    (docs / "case_note_5.docx").write_bytes(b"PK\x03\x04 this is not really a zip")
    (docs / "case_note_6.pdf").write_bytes(
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 1 0 R>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF"
    )  # a page tree that points at itself
    summary = ingest_paths(hub_home, [docs], contracts=tmp_path / "c")
    assert all(d.status == "ingested" for d in summary.deliveries), summary.to_dict()
    assert summary.rows_in == 6 == summary.rows_accepted + summary.rows_quarantined
    texts = dict(query(hub_home, "SELECT file_name, text FROM silver.documents"))
    assert "Amelia Hart" in texts["case_note_1.pdf"]
    assert "Daniel Hart" in texts["case_note_2.docx"]
    assert "attendance" in texts["case_note_3.txt"]
    ((title, author, media),) = query(
        hub_home,
        "SELECT title, author, media_type FROM silver.documents WHERE file_name = 'case_note_1.pdf'",
    )
    assert (title, author, media) == (
        "Strategy meeting",
        "Children's Social Care",
        "application/pdf",
    )
    quarantined = dict(query(hub_home, "SELECT file_name, reason FROM silver.quarantine"))
    assert set(quarantined) <= {"case_note_4.pdf", "case_note_5.docx", "case_note_6.pdf"}
    assert {"case_note_4.pdf", "case_note_5.docx"} <= set(quarantined)
    assert all(r.startswith("document_unreadable") for r in quarantined.values())
