"""Find people mentioned in documents and match them to nominals with the linkage model.

Case notes, minutes and referral letters name people with what identifies them: a
name, a date of birth (``19/10/2019``, ``6 January 1993``), an address with a
postcode, an NHS number (``967 389 0447``). For each passage (a line of the
document's text):

1. **mentions**: runs of two or three capitalised words whose last word is a family
   name the hub knows (``gold.nominals``) and that contain no word of an organisation
   or a heading ("Children's Social Care", "Kettleby Primary Care Network"); with the date of birth, postcode, address and
   NHS number found in the same passage. "who shares the address" takes the address
   of the passage's previous mention;
2. **candidates**: nominals with the same family name, NHS number, or date of birth
   and postcode (blocking, as linkage does);
3. **scoring**: each mention against its candidates with the hub's trained linkage
   model (:func:`nominal.link.model.score_pairs`, the same standardisation and
   Fellegi-Sunter weights as record linkage); the best candidate at or above
   ``threshold`` is the match. Without a trained model (a hub whose gold tables came
   from elsewhere) a conservative rule stands in: an NHS number that agrees, or name
   and date of birth that both agree.

The result is ``gold.document_mentions``: ``document_id, nominal_id, passage, score``,
and ``file_name, mention, date_of_birth, postcode, nhs_number, method`` to show why.
The table holds names from restricted documents, so it is read only through
:func:`mentions_for` by routes that have checked the policy decision point.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pyarrow as pa

from nominal.config import Home
from nominal.engines.lake import Lake

TABLE = "gold.document_mentions"
THRESHOLD = 0.9
MONTHS = {
    m: i
    for i, m in enumerate(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ],
        start=1,
    )
}
_NAME = re.compile(r"\b([A-Z][a-z'’-]+(?:\s+[A-Z][a-z'’-]+){1,2})\b")
_DATE_NUM = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\b")
_DATE_TEXT = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+([A-Z][a-z]+)\s+(\d{4})\b")
_DATE_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_POSTCODE = re.compile(r"\b([A-Z]{1,2}\d[A-Z\d]?)\s*(\d[A-Z]{2})\b")
_NHS = re.compile(r"\b(\d{3})[\s-]?(\d{3})[\s-]?(\d{4})\b")
_ADDRESS = re.compile(
    r"(?:living at|lives at|address:?|resident at)\s+([^.;]*?\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})"
)
# Words of organisations and headings: a run containing one is not a person's name.
NOT_NAMES = frozenset(
    [
        "social",
        "care",
        "council",
        "service",
        "services",
        "team",
        "network",
        "police",
        "hospital",
        "school",
        "trust",
        "nhs",
        "health",
        "children's",
        "childrens",
        "adult",
        "adults",
        "primary",
        "county",
        "city",
        "borough",
        "academy",
        "unit",
        "meeting",
        "minutes",
        "subject",
        "date",
        "author",
        "referral",
        "letter",
        "case",
        "note",
        "plan",
        "strategy",
        "early",
        "help",
        "fire",
        "rescue",
        "ambulance",
        "probation",
        "housing",
        "department",
        "office",
        "centre",
        "center",
    ]
)
SCHEMA = pa.schema(
    [
        ("document_id", pa.string()),
        ("nominal_id", pa.string()),
        ("passage", pa.string()),
        ("score", pa.float64()),
        ("file_name", pa.string()),
        ("mention", pa.string()),
        ("date_of_birth", pa.date32()),
        ("postcode", pa.string()),
        ("nhs_number", pa.string()),
        ("method", pa.string()),
    ]
)


@dataclass
class Mention:
    document_id: str
    file_name: str
    passage: str
    given_name: str
    family_name: str
    date_of_birth: date | None = None
    postcode: str | None = None
    address_line_1: str | None = None
    nhs_number: str | None = None

    @property
    def text(self) -> str:
        return f"{self.given_name} {self.family_name}"


def _date(match: re.Match[str], kind: str) -> date | None:
    try:
        if kind == "num":
            return date(int(match.group(3)), int(match.group(2)), int(match.group(1)))
        if kind == "iso":
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        month = MONTHS.get(match.group(2).lower())
        return date(int(match.group(3)), month, int(match.group(1))) if month else None
    except ValueError:
        return None


def _first_date(text: str) -> date | None:
    found: list[tuple[int, date]] = []
    for pattern, kind in ((_DATE_NUM, "num"), (_DATE_TEXT, "text"), (_DATE_ISO, "iso")):
        for m in pattern.finditer(text):
            d = _date(m, kind)
            if d is not None and 1900 <= d.year <= datetime.now().year:
                found.append((m.start(), d))
    return min(found)[1] if found else None


def _nhs_ok(digits: str) -> bool:
    total = sum(int(d) * (10 - i) for i, d in enumerate(digits[:9]))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def extract(document_id: str, file_name: str, text: str, family_names: set[str]) -> list[Mention]:
    """The person mentions of one document's text."""
    mentions: list[Mention] = []
    for line in (text or "").splitlines():
        passage = " ".join(line.split())
        if not passage:
            continue
        names = [
            m
            for m in _NAME.finditer(passage)
            if m.group(1).split()[-1].lower() in family_names
            and not any(w.lower() in NOT_NAMES for w in m.group(1).split())
        ]
        if not names:
            continue
        postcode = _POSTCODE.search(passage)
        address = _ADDRESS.search(passage)
        nhs = ["".join(m.groups()) for m in _NHS.finditer(passage) if _nhs_ok("".join(m.groups()))]
        for i, m in enumerate(names):
            parts = m.group(1).split()
            # What follows the name up to the next name belongs to this person.
            end = names[i + 1].start() if i + 1 < len(names) else len(passage)
            tail = passage[m.end() : end]
            mention = Mention(
                document_id,
                file_name,
                passage,
                given_name=parts[0],
                family_name=parts[-1],
                date_of_birth=_first_date(tail),
            )
            if len(names) == 1:
                mention.postcode = f"{postcode.group(1)} {postcode.group(2)}" if postcode else None
                mention.nhs_number = nhs[0] if nhs else None
                if address:
                    mention.address_line_1 = address.group(1).split(",")[0].strip()
            if "shares the address" in tail and mentions:
                mention.postcode = mention.postcode or mentions[-1].postcode
                mention.address_line_1 = mention.address_line_1 or mentions[-1].address_line_1
            mentions.append(mention)
        # "NHS number 967 389 0447." on a line of its own belongs to the last person named
    _attach_loose_identifiers(text or "", mentions)
    return mentions


def _attach_loose_identifiers(text: str, mentions: list[Mention]) -> None:
    """An NHS number on a line with no name belongs to the person named just before."""
    last: Mention | None = None
    # the last person named in each passage
    by_passage = {m.passage: m for m in mentions}
    for line in text.splitlines():
        passage = " ".join(line.split())
        if passage in by_passage:
            last = by_passage[passage]
            continue
        if last is None:
            continue
        for m in _NHS.finditer(passage):
            digits = "".join(m.groups())
            if _nhs_ok(digits) and last.nhs_number is None:
                last.nhs_number = digits


def _mention_record(i: int, m: Mention) -> dict[str, Any]:
    return {
        "record_key": f"m{i}",
        "given_name": m.given_name,
        "family_name": m.family_name,
        "date_of_birth": m.date_of_birth.isoformat() if m.date_of_birth else None,
        "postcode": m.postcode,
        "address_line_1": m.address_line_1,
        "nhs_number": m.nhs_number,
    }


def _candidates(con: Any, mentions: list[Mention]) -> dict[int, list[dict[str, Any]]]:
    """Nominals sharing a family name, an NHS number, or date of birth and postcode."""
    rows = [
        (i, m.family_name.lower(), m.nhs_number, m.date_of_birth, m.postcode)
        for i, m in enumerate(mentions)
    ]
    con.register(
        "mention_keys",
        pa.table(
            {
                "i": [r[0] for r in rows],
                "family": [r[1] for r in rows],
                "nhs": [r[2] for r in rows],
                "dob": pa.array([r[3] for r in rows], pa.date32()),
                "postcode": [r[4] for r in rows],
            }
        ),
    )
    found = con.execute(
        """SELECT DISTINCT k.i, n.nominal_id, n.given_name, n.family_name,
                  CAST(n.date_of_birth AS VARCHAR), n.postcode, n.address_line_1, n.nhs_number
           FROM mention_keys k JOIN gold.nominals n
             ON lower(n.family_name) = k.family
             OR (k.nhs IS NOT NULL AND n.nhs_number = k.nhs)
             OR (k.dob IS NOT NULL AND n.date_of_birth = k.dob AND n.postcode = k.postcode)"""
    ).fetchall()
    out: dict[int, list[dict[str, Any]]] = {}
    for i, nominal_id, given, family, dob, postcode, address, nhs in found:
        out.setdefault(i, []).append(
            {
                "record_key": nominal_id,
                "given_name": given,
                "family_name": family,
                "date_of_birth": dob,
                "postcode": postcode,
                "address_line_1": address,
                "nhs_number": nhs,
            }
        )
    return out


def _rule_score(m: Mention, c: dict[str, Any]) -> float:
    """Stand-in without a trained model: NHS number, or name and date of birth, agree."""
    if m.nhs_number and c.get("nhs_number") == m.nhs_number:
        return 0.99
    same_name = (c.get("given_name") or "").lower() == m.given_name.lower() and (
        c.get("family_name") or ""
    ).lower() == m.family_name.lower()
    same_dob = m.date_of_birth is not None and c.get("date_of_birth") == m.date_of_birth.isoformat()
    if same_name and same_dob:
        return 0.95
    return 0.0


def _scores(
    home: Home, mentions: list[Mention], candidates: dict[int, list[dict[str, Any]]]
) -> tuple[dict[tuple[int, str], float], str]:
    """Match probability of each (mention, nominal) candidate pair, and the method used."""
    try:
        from nominal.link.model import ModelError, load, score_pairs
    except ImportError:
        ModelError, load, score_pairs = RuntimeError, None, None  # type: ignore[assignment,misc]
    try:
        model = load(home) if load is not None else None
    except ModelError:
        model = None
    scores: dict[tuple[int, str], float] = {}
    if model is None or score_pairs is None:
        for i, cands in candidates.items():
            for c in cands:
                scores[(i, c["record_key"])] = _rule_score(mentions[i], c)
        return scores, "rule"
    for i, cands in candidates.items():
        pairs = score_pairs(home, [_mention_record(i, mentions[i])], cands, model=model)
        for p in pairs:
            scores[(i, str(p["record_key_r"]))] = float(p["match_probability"])
    return scores, f"linkage model {model.version}"


def find_mentions(home: Home, threshold: float = THRESHOLD) -> dict[str, Any]:
    """Write ``gold.document_mentions`` for every document in the lake; return counts."""
    from nominal.engines.duck import connect

    lake = Lake(home.lake)
    snap = lake.require_current()
    if not snap.has("silver.documents") or not snap.has("gold.nominals"):
        missing = [t for t in ("silver.documents", "gold.nominals") if not snap.has(t)]
        raise RuntimeError(f"finding mentions needs {', '.join(missing)}")
    con = connect(snap, tables=["silver.documents", "gold.nominals"])
    families = {
        r[0].lower()
        for r in con.execute(
            "SELECT DISTINCT family_name FROM gold.nominals WHERE family_name IS NOT NULL"
        ).fetchall()
    }
    mentions: list[Mention] = []
    for document_id, file_name, text in con.execute(
        "SELECT document_id, file_name, text FROM silver.documents ORDER BY document_id"
    ).fetchall():
        mentions.extend(extract(document_id, file_name, text, families))
    candidates = _candidates(con, mentions) if mentions else {}
    scores, method = _scores(home, mentions, candidates)
    rows: list[dict[str, Any]] = []
    for i, m in enumerate(mentions):
        best = max(
            (
                (scores.get((i, c["record_key"]), 0.0), c["record_key"])
                for c in candidates.get(i, [])
            ),
            default=(0.0, None),
        )
        if best[1] is None or best[0] < threshold:
            continue
        rows.append(
            {
                "document_id": m.document_id,
                "nominal_id": best[1],
                "passage": m.passage,
                "score": round(best[0], 6),
                "file_name": m.file_name,
                "mention": m.text,
                "date_of_birth": m.date_of_birth,
                "postcode": m.postcode,
                "nhs_number": m.nhs_number,
                "method": method,
            }
        )
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    with lake.transaction("document-mentions") as tx:
        tx.replace(TABLE, [tx.write_arrow(TABLE, table)])
        tx.commit({"mentions": len(mentions), "matched": len(rows), "method": method})
    return {
        "documents": snap.rows("silver.documents"),
        "mentions": len(mentions),
        "matched": len(rows),
        "method": method,
    }


def mentions_for(
    home: Home, nominal_id: str, datasets: Iterable[str] | None = None, con: Any = None
) -> list[dict[str, Any]]:
    """The document passages that mention one nominal, best match first.

    Each row names the ``dataset`` the document was delivered as (from
    ``silver.deliveries``). ``datasets`` keeps only documents of those datasets: the
    caller (the person view) passes the datasets the policy decision point allows for
    the user and purpose, and audits what it shows. ``con``: a DuckDB connection on the
    current snapshot to use (the caller's), rather than opening one.
    """
    from nominal.engines.duck import connect

    snap = Lake(home.lake).current()
    if snap is None or not snap.has(TABLE):
        return []
    allowed = None if datasets is None else sorted(set(datasets))
    if allowed == []:
        return []
    has_deliveries = snap.has("silver.deliveries")
    own = con is None
    if own:
        con = connect(snap, tables=[TABLE, "silver.deliveries"] if has_deliveries else [TABLE])
    try:
        dataset = "d.dataset" if has_deliveries else "CAST(NULL AS VARCHAR)"
        join = (
            "LEFT JOIN (SELECT DISTINCT delivery_id, dataset FROM silver.deliveries) d "
            "ON d.delivery_id = m.document_id"
            if has_deliveries
            else ""
        )
        where, params = "m.nominal_id = ?", [nominal_id]
        if allowed is not None:
            where += f" AND {dataset} IN ({', '.join('?' for _ in allowed)})"
            params += allowed
        cursor = con.execute(
            f"SELECT m.document_id, {dataset} AS dataset, m.file_name, m.mention, m.passage, "
            f"m.score, m.method FROM {TABLE} m {join} WHERE {where} "
            "ORDER BY m.score DESC, m.file_name, m.passage",
            params,
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        if own:
            con.close()
