"""Unstructured case notes (PDF and DOCX) that mention people from the feeds.

Each note is about a child known to children's social care and names the child, a parent
and sometimes another professional's contact, with dates of birth, the address and now
and then an NHS number, in running text as practitioners write it. Which person each
mention refers to is written to ``truth/document_mentions.parquet``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from nominal.synth.events import EventTable, World
from nominal.synth.render import FIXED_TIME, normalise_office_file

_KINDS = (
    ("Strategy meeting minutes", "Children's Social Care"),
    ("Case note", "Early Help"),
    ("Referral letter", "Kettleby Primary Care Network"),
    ("Multi-agency risk assessment", "Northshire Police"),
)


@dataclass
class Mention:
    document: str
    person_id: int
    text: str
    kind: str  # name, date_of_birth, address, nhs_number


# The contract the case notes are delivered under (``format: document``): the hub
# stores each file whole with its extracted text rather than splitting it into records.
DOCUMENT_CONTRACT: dict[str, object] = {
    "contract_version": 1,
    "feed": "kcc-case-notes",
    "title": "Case notes and meeting minutes",
    "partner": {"code": "KCC", "name": "Kettleby City Council"},
    "agency": "children's social care",
    "dataset": "case_notes",
    "agreement": "ISA-T2-CSC-01",
    "description": "Case notes, minutes and letters about children known to children's "
    "social care (synthetic documents made by nominal synth)",
    "deliveries": {"pattern": "case_note_*"},
    "format": {"type": "document"},
    "fields": {},
    "retention": {"years": 7, "from": "received"},
}


def _day(d: int) -> date:
    return date(1970, 1, 1).fromordinal(date(1970, 1, 1).toordinal() + int(d))


def write_documents(
    world: World, plans: EventTable, folder: Path, count: int, rng: np.random.Generator
) -> tuple[list[Path], list[Mention]]:
    folder.mkdir(parents=True, exist_ok=True)
    pop, town = world.pop, world.town
    pools = pop.pools
    assert pools is not None
    if plans.relationship is None:
        return [], []
    children = np.flatnonzero(plans.relationship == "child")
    if len(children) == 0:
        return [], []
    chosen = rng.choice(children, min(count, len(children)), replace=False)
    chosen = np.sort(chosen)
    paths: list[Path] = []
    mentions: list[Mention] = []
    for n, row in enumerate(chosen):
        child = int(plans.person[row])
        day = int(plans.day[row])
        # others named in the note: adults in the plan's family record
        same = np.flatnonzero((plans.event_no == plans.event_no[row]) & (plans.person != child))
        people = [child, *[int(plans.person[i]) for i in same[:2]]]
        kind, author = _KINDS[n % len(_KINDS)]
        name = f"case_note_{n + 1:03d}"
        doc_name = f"{name}.{'pdf' if n % 2 == 0 else 'docx'}"
        addr = int(world.address_at(np.array([child]), np.array([day]))[0])
        address = f"{town.address_line_1[addr]}"
        if town.address_line_2[addr]:
            address += f", {town.address_line_2[addr]}"
        address += f", Kettleby {town.postcode[town.address_postcode[addr]]}"

        def full_name(p: int, day: int = day) -> str:
            fam = pop.family1[p] if day >= pop.name_change[p] else pop.family0[p]
            return f"{pools.names[pop.given[p]]} {pools.names[fam]}"

        lines = [f"{kind}", f"Date: {_day(day).strftime('%d/%m/%Y')}", f"Author: {author}", ""]
        c_name = full_name(child)
        c_dob = _day(int(pop.dob[child]))
        lines.append(
            f"Subject: {c_name} (date of birth {c_dob.strftime('%d/%m/%Y')}), living at {address}."
        )
        mentions += [
            Mention(doc_name, child, c_name, "name"),
            Mention(doc_name, child, c_dob.strftime("%d/%m/%Y"), "date_of_birth"),
            Mention(doc_name, child, address, "address"),
        ]
        if n % 3 == 0:
            nhs = pop.nhs_number[child]
            lines.append(f"NHS number {nhs[:3]} {nhs[3:6]} {nhs[6:]}.")
            mentions.append(Mention(doc_name, child, nhs, "nhs_number"))
        for p in people[1:]:
            p_name = full_name(p)
            p_dob = _day(int(pop.dob[p]))
            lines.append(
                f"Also present: {p_name}, born {p_dob.strftime('%-d %B %Y')}, "
                f"who shares the address."
            )
            mentions += [
                Mention(doc_name, p, p_name, "name"),
                Mention(doc_name, p, p_dob.strftime("%-d %B %Y"), "date_of_birth"),
            ]
        lines += [
            "",
            f"Concerns were discussed about {c_name.split(' ')[0]}'s school attendance, "
            "home conditions and the adults' capacity to keep the child safe. Agencies "
            "agreed to share information and to review the plan in six weeks.",
            "Actions: social worker to visit within five working days; school to report "
            "any absence on the day; health visitor to offer a developmental review.",
        ]
        path = folder / doc_name
        if doc_name.endswith(".pdf"):
            # the PDF core fonts are Latin-1, so names there lose letters outside it
            for mention in mentions:
                if mention.document == doc_name:
                    mention.text = mention.text.encode("latin-1", "nominal_fold").decode("latin-1")
            _write_pdf(path, kind, author, lines)
        else:
            _write_docx(path, kind, author, lines)
        paths.append(path)
    return paths, mentions


def _write_pdf(path: Path, title: str, author: str, lines: list[str]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(FIXED_TIME)
    pdf.set_title(title)
    pdf.set_author(author)
    pdf.set_creator("nominal synth")
    pdf.set_producer("nominal synth")
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for line in lines:
        # the core PDF fonts are Latin-1: write names as a legacy system would
        text = line.encode("latin-1", "nominal_fold").decode("latin-1")
        pdf.multi_cell(0, 6, text or " ", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def _write_docx(path: Path, title: str, author: str, lines: list[str]) -> None:
    from docx import Document

    doc = Document()
    doc.core_properties.title = title
    doc.core_properties.author = author
    doc.core_properties.created = FIXED_TIME
    doc.core_properties.modified = FIXED_TIME
    doc.core_properties.last_modified_by = author
    doc.add_heading(lines[0], level=1)
    for line in lines[1:]:
        doc.add_paragraph(line)
    doc.save(str(path))
    normalise_office_file(path)
