"""Turning events into partner deliveries: identity as the partner recorded it, with errors.

For each row we take the person's true name (as it was on the event date), date of birth,
address at the time and identifiers, then apply recording errors at the configured rates
times the feed's own multiplier. Every error applied is kept as a bit in
``truth/records.parquet`` (``errors``), and the genuinely invalid values that ingest must
quarantine are named in ``invalid_reason``.
"""

from __future__ import annotations

import codecs
import io
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from nominal.synth.events import EventTable, World, blank_as_null, null_unless
from nominal.synth.feeds import FeedSpec
from nominal.synth.names import has_diacritics, strip_diacritics
from nominal.synth.population import OPEN, R
from nominal.synth.town import TOWN, UNIT_LETTERS

# bit of each recording error in truth/records.parquet `errors`
ERROR_NAMES: tuple[str, ...] = (
    "typo", "nickname", "name_order_swapped", "initial_only", "partial_double_barrel",
    "diacritics_dropped", "former_family_name", "dob_day_month_swapped", "dob_digit_error",
    "dob_missing", "sex_missing", "old_address", "postcode_partial", "postcode_mistyped",
    "postcode_missing", "identifier_missing", "nhs_number_invalid", "date_invalid",
    "postcode_invalid", "required_missing", "duplicate_nominal",
)  # fmt: skip
# how some partners' systems write addresses
_STREET_ABBREVIATIONS = {
    r"\bRoad\b": "Rd", r"\bStreet\b": "St", r"\bAvenue\b": "Ave", r"\bLane\b": "Ln",
    r"\bClose\b": "Cl", r"\bDrive\b": "Dr", r"\bCrescent\b": "Cres", r"\bGardens\b": "Gdns",
    r"\bPlace\b": "Pl", r"\bCourt\b": "Ct", r"\bTerrace\b": "Terr",
}  # fmt: skip
BIT = {name: 1 << i for i, name in enumerate(ERROR_NAMES)}
FIXED_TIME = datetime(2000, 1, 1, 0, 0, 0)
FIXED_ZIP_TIME = (2000, 1, 1, 0, 0, 0)


def _fold_error(exc: UnicodeError) -> tuple[str, int]:
    """Legacy encodings: write a letter without its accent rather than fail."""
    assert isinstance(exc, UnicodeEncodeError)
    text = exc.object[exc.start : exc.end]
    return strip_diacritics(text).encode("ascii", "replace").decode("ascii"), exc.end


codecs.register_error("nominal_fold", _fold_error)


def fmt_dates(days: np.ndarray, fmt: str) -> np.ndarray:
    """Days since 1970 (OPEN or below -80000 = blank) as strings in ``fmt``."""
    null = (days == OPEN) | (days < -80_000)
    arr = pa.array(np.where(null, 0, days).astype(np.int32), mask=null).cast(pa.date32())
    text = pc.strftime(arr.cast(pa.timestamp("s")), format=fmt)
    return np.array(text.to_pylist(), dtype=object)


def to_dates(days: np.ndarray) -> np.ndarray:
    """datetime.date objects (None for blank)."""
    null = (days == OPEN) | (days < -80_000)
    out = np.where(null, 0, days).astype("datetime64[D]").astype(object)
    out[null] = None
    return out


def _typo(rng: np.random.Generator, s: str) -> str:
    if len(s) < 3:
        return s
    i = int(rng.integers(1, len(s) - 1))
    op = int(rng.integers(0, 4))
    letters = "aeioulnrstmhdcbgp"
    if op == 0:  # substitute
        return s[:i] + letters[int(rng.integers(0, len(letters)))] + s[i + 1 :]
    if op == 1:  # delete
        return s[:i] + s[i + 1 :]
    if op == 2:  # double a letter
        return s[:i] + s[i] + s[i:]
    return s[: i - 1] + s[i] + s[i - 1] + s[i + 1 :] if s[i] != s[i - 1] else s[:i] + s[i + 1 :]


def _transpose_digits(rng: np.random.Generator, s: str) -> str:
    """Swap two adjacent different digits: a modulus-11 check digit always catches it."""
    spots = [i for i in range(9) if s[i] != s[i + 1]]
    if not spots:
        return s[:9] + str((int(s[9]) + 1) % 10)
    i = spots[int(rng.integers(0, len(spots)))]
    return s[:i] + s[i + 1] + s[i] + s[i + 2 :]


@dataclass
class Rendered:
    columns: dict[str, np.ndarray]  # source column -> values (strings, numbers or day ints)
    date_columns: set[str]
    truth: dict[str, np.ndarray]
    year: np.ndarray  # delivery year of each row


@dataclass
class Delivery:
    """One delivery file: which rendered rows it holds, and which of them it sends as still
    open (a case that closed in a later year is re-sent, closed, in that year's delivery
    under the same source record id, superseding the first version)."""

    year: int
    rows: np.ndarray
    as_open: np.ndarray  # bool per row
    version: np.ndarray  # 1 = first sent, 2 = re-sent with its closure


def plan_deliveries(spec: FeedSpec, rendered: Rendered, end_day: np.ndarray) -> list[Delivery]:
    n = len(rendered.year)
    end_year = np.where(
        end_day == OPEN,
        rendered.year,
        end_day.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970,
    )
    resend = (
        np.flatnonzero(end_year > rendered.year)
        if "event_status" in spec.columns
        else np.zeros(0, dtype=np.int64)
    )
    is_resent = np.zeros(n, dtype=bool)
    is_resent[resend] = True
    out = []
    for year in np.unique(np.concatenate([rendered.year, end_year[resend]])):
        first = np.flatnonzero(rendered.year == year)
        again = resend[end_year[resend] == year]
        out.append(
            Delivery(
                int(year),
                np.concatenate([first, again]),
                np.concatenate([is_resent[first], np.zeros(len(again), dtype=bool)]),
                np.concatenate([np.ones(len(first), np.int8), np.full(len(again), 2, np.int8)]),
            )
        )
    return out


def for_delivery(spec: FeedSpec, rendered: Rendered, delivery: Delivery) -> Rendered:
    """The rows of one delivery, with cases still open at that extract shown as open."""
    idx = delivery.rows
    columns = {k: v[idx].copy() for k, v in rendered.columns.items()}
    if delivery.as_open.any():
        columns[spec.columns["event_end_date"].source][delivery.as_open] = OPEN
        columns[spec.columns["event_status"].source][delivery.as_open] = "open"
    return Rendered(
        columns,
        rendered.date_columns,
        {k: v[idx] for k, v in rendered.truth.items()},
        rendered.year[idx],
    )


class Renderer:
    def __init__(self, world: World):
        self.w = world
        pools = world.pop.pools
        assert pools is not None
        self.names = pools.names
        self.stripped = np.array([strip_diacritics(n) for n in pools.names], dtype=object)
        self.has_dia = np.array([has_diacritics(n) for n in pools.names])
        self.pools = pools
        t = world.town
        full = t.address_line_1.copy()
        two = t.address_line_2 != ""
        full[two] = t.address_line_1[two] + ", " + t.address_line_2[two]
        self.full_address = full
        ward_root = np.array([n.split(" ")[0] for n in t.ward_name], dtype=object)
        self.primary = np.array([f"{r} Primary School" for r in ward_root], dtype=object)
        self.secondary = np.array(
            [f"{ward_root[(i // 4) * 4]} Academy" for i in range(len(ward_root))], dtype=object
        )

    def render(self, spec: FeedSpec, table: EventTable, rng: np.random.Generator) -> Rendered:
        w, pop, town = self.w, self.w.pop, self.w.town
        e = w.params.errors
        s = spec.error_scale
        n = len(table)
        person, day = table.person, table.day
        cols = spec.columns
        bits = np.zeros(n, dtype=np.int64)
        invalid = np.full(n, "", dtype=object)

        def chance(rate: float, where: np.ndarray | None = None) -> np.ndarray:
            m = rng.random(n) < rate * s
            return m if where is None else m & where

        # ---- names ---------------------------------------------------------------
        given = pop.given[person].copy()
        changed = day >= pop.name_change[person]
        family = np.where(changed, pop.family1[person], pop.family0[person])
        m = chance(e.former_family_name, changed)
        family[m] = pop.family0[person[m]]
        bits[m] |= BIT["former_family_name"]
        m = chance(e.nickname, self.pools.nickname[given] >= 0)
        given[m] = self.pools.nickname[given[m]]
        bits[m] |= BIT["nickname"]
        m = chance(e.initial_only) & ((bits & BIT["nickname"]) == 0)
        given[m] = self.pools.initial[given[m]]
        bits[m] |= BIT["initial_only"]
        dia = self.has_dia[given] | self.has_dia[family]
        drop = rng.random(n) < e.diacritics_dropped
        m = dia & drop
        g_txt = np.where(m, self.stripped[given], self.names[given])
        f_txt = np.where(m, self.stripped[family], self.names[family])
        bits[m] |= BIT["diacritics_dropped"]
        middle = pop.middle[person]
        mid_txt = np.where(middle >= 0, self.names[np.maximum(middle, 0)], "")
        hyph = np.flatnonzero(np.char.find(f_txt.astype(str), "-") > 0)
        part = hyph[rng.random(len(hyph)) < e.partial_double_barrel]
        for i in part:
            pieces = f_txt[i].split("-")
            f_txt[i] = pieces[int(rng.integers(0, len(pieces)))]
        bits[part] |= BIT["partial_double_barrel"]
        for i in np.flatnonzero(chance(e.typo)):
            if rng.random() < 0.5:
                g_txt[i] = _typo(rng, g_txt[i])
            else:
                f_txt[i] = _typo(rng, f_txt[i])
            bits[i] |= BIT["typo"]
        m = chance(e.name_order_swapped)
        g_txt[m], f_txt[m] = f_txt[m], g_txt[m].copy()
        bits[m] |= BIT["name_order_swapped"]
        other = np.full(n, "", dtype=object)
        if "other_names" in cols:
            before = np.where(changed, pop.family0[person], pop.birth_family[person])
            differs = before != np.where(changed, pop.family1[person], pop.family0[person])
            o = differs & (rng.random(n) < 0.5)
            other[o] = self.names[before[o]]

        # ---- date of birth and sex ----------------------------------------------
        dob = pop.dob[person].copy()
        dt = dob.astype("datetime64[D]")
        y = dt.astype("datetime64[Y]").astype(np.int64) + 1970
        mo = dt.astype("datetime64[M]").astype(np.int64) % 12 + 1
        dd = (dt - dt.astype("datetime64[M]")).astype(np.int64) + 1
        can_swap = (dd <= 12) & (dd != mo)
        m = chance(e.dob_day_month_swapped, can_swap)
        swapped = (
            (y[m] - 1970).astype("datetime64[Y]").astype("datetime64[M]") + (dd[m] - 1)
        ).astype("datetime64[D]") + (mo[m] - 1)
        dob[m] = swapped.astype(np.int64)
        bits[m] |= BIT["dob_day_month_swapped"]
        m = chance(e.dob_digit_error)
        dob[m] += np.where(rng.random(m.sum()) < 0.5, rng.choice([-1, 1], m.sum()),
                           rng.choice([-365, 365], m.sum()))  # fmt: skip
        bits[m] |= BIT["dob_digit_error"]
        m = chance(e.dob_missing)
        dob[m] = OPEN
        bits[m] |= BIT["dob_missing"]
        sex = np.where(pop.sex[person] == "M", spec.sex_codes[0], spec.sex_codes[1]).astype(object)
        m = chance(e.sex_missing)
        sex[m] = None
        bits[m] |= BIT["sex_missing"]

        # ---- address at the time (or the previous one, not yet updated) ---------------
        res = w.residence_at(person, day)
        r = pop.residence
        addr_true = r["address"][res]
        prev_ok = (res > 0) & (r["person"][np.maximum(res - 1, 0)] == person)
        recent = prev_ok & (day - r["from"][res] < 365)
        m = chance(e.old_address, recent)
        addr = addr_true.copy()
        addr[m] = r["address"][res[m] - 1]
        bits[m] |= BIT["old_address"]
        household = r["household"][res]
        postcode = town.postcode[town.address_postcode[addr]].copy()
        m = chance(e.postcode_partial)
        postcode[m] = [p.split(" ")[0] for p in postcode[m]]
        bits[m] |= BIT["postcode_partial"]
        m = chance(e.postcode_mistyped) & ((bits & BIT["postcode_partial"]) == 0)
        for i in np.flatnonzero(m):
            p = postcode[i]
            old = p[-1]
            new = UNIT_LETTERS[(UNIT_LETTERS.index(old) + 1 + int(rng.integers(0, 18))) % 20]
            postcode[i] = p[:-1] + new
        bits[m] |= BIT["postcode_mistyped"]
        m = chance(e.postcode_missing)
        postcode[m] = None
        bits[m] |= BIT["postcode_missing"]
        m = chance(e.postcode_invalid) & (postcode != None)  # noqa: E711
        postcode[m] = [p.replace(" ", "")[:3] + "-" + p[-2:] + "9" for p in postcode[m]]
        bits[m] |= BIT["postcode_invalid"]
        invalid[m & (invalid == "")] = "postcode_invalid"

        # ---- identifiers -----------------------------------------------------------
        ident: dict[str, np.ndarray] = {}
        for name, source in (("nhs_number", pop.nhs_number), ("ni_number", pop.ni_number),
                             ("police_id", pop.police_id), ("pupil_number", pop.pupil_number),
                             ("phone", pop.phone), ("email", pop.email)):  # fmt: skip
            if name not in cols:
                continue
            v = source[person].copy()
            v[v == ""] = None
            if name in ("nhs_number", "ni_number", "police_id", "pupil_number"):
                m = chance(e.identifier_missing) & (v != None)  # noqa: E711
                v[m] = None
                bits[m] |= BIT["identifier_missing"]
            if name == "police_id" and spec.partner[0] == "NPOL":
                # a person entered twice on the police system keeps two nominal ids
                twice = (person * 2654435761 % 10_000) < e.duplicate_nominal * 10_000
                m = twice & (rng.random(n) < 0.5) & (v != None)  # noqa: E711
                v[m] = [f"NP9{p:07d}" for p in person[m]]
                bits[m] |= BIT["duplicate_nominal"]
            if name == "nhs_number":
                m = chance(e.nhs_number_invalid) & (v != None)  # noqa: E711
                v[m] = [_transpose_digits(rng, x) for x in v[m]]
                bits[m] |= BIT["nhs_number_invalid"]
                invalid[m & (invalid == "")] = "nhs_number_invalid"
            ident[name] = v

        # ---- event fields and invalid values ----------------------------------------
        end = table.end_day.copy()
        event_day = day.copy()
        m = chance(e.required_missing)
        event_day[m] = OPEN
        bits[m] |= BIT["required_missing"]
        invalid[m & (invalid == "")] = "required_missing"
        bad_date = np.zeros(n, dtype=bool)
        if spec.fmt != "parquet":
            bad_date = chance(e.date_invalid) & ~m
            bits[bad_date] |= BIT["date_invalid"]
            invalid[bad_date & (invalid == "")] = "date_invalid"

        seq = np.arange(1, n + 1)
        record_id = np.array([f"{spec.record_prefix}{i:08d}" for i in seq], dtype=object)
        values: dict[str, Any] = {
            "record_id": record_id,
            "given_name": g_txt,
            "middle_names": mid_txt,
            "family_name": f_txt,
            "other_names": other,
            "date_of_birth": dob,
            "sex": sex,
            "postcode": postcode,
            "uprn": town.address_uprn[addr],
            "event_id": np.array(
                [f"{spec.record_prefix}-{v:09d}" for v in table.event_no], dtype=object
            ),
            "event_date": event_day,
            "event_end_date": end,
            "event_status": np.where(end == OPEN, "open", "closed").astype(object),
            "oa_code": town.oa_code[town.address_oa[addr_true]],
            **ident,
        }
        single_line = "address_line_2" not in cols
        values["address_line_1"] = (
            self.full_address[addr] if single_line else town.address_line_1[addr]
        )
        values["address_line_2"] = town.address_line_2[addr]
        values["town"] = np.full(n, TOWN, dtype=object)
        if "household_ref" in cols:
            href = table.household_ref if table.household_ref is not None else household
            href = np.where(href < 0, household, href)
            values["household_ref"] = np.array(
                [f"{spec.record_prefix}F{(h * 7919 + 104729) % 10_000_000:07d}" for h in href],
                dtype=object,
            )
        if "relationship" in cols:
            rel = table.relationship if table.relationship is not None else np.full(n, "", object)
            values["relationship"] = blank_as_null(rel)
        if "contact_name" in cols or "contact_phone" in cols:
            contact = self._contact(person, day)
            ok = contact >= 0
            c = np.maximum(contact, 0)
            c_fam = np.where(day >= pop.name_change[c], pop.family1[c], pop.family0[c])
            values["contact_name"] = null_unless(
                ok, self.names[pop.given[c]] + " " + self.names[c_fam]
            )
            values["contact_phone"] = null_unless(ok & (pop.phone[c] != ""), pop.phone[c])
        if "school_name" in cols:
            ward = town.oa_ward[town.address_oa[addr_true]]
            yg = table.attrs["year_group"]
            values["school_name"] = np.where(yg < 7, self.primary[ward], self.secondary[ward])
        for k, v in table.attrs.items():
            values[k] = blank_as_null(v) if v.dtype == object else v

        if "ethnicity" in cols:
            from nominal.synth.names import ETHNICITY_SCHEMES

            codes, not_stated = ETHNICITY_SCHEMES[cols["ethnicity"].scheme or "ons"]
            lookup = np.vectorize(codes.__getitem__, otypes=[object])
            eth = lookup(pop.ethnicity[person])
            eth[rng.random(n) < 0.08] = not_stated
            values["ethnicity"] = eth
        if spec.extra.get("upper_case"):
            for k in ("given_name", "middle_names", "family_name", "address_line_1",
                      "address_line_2", "town"):  # fmt: skip
                values[k] = _upper(values[k])
        if spec.extra.get("abbreviate_streets"):
            for k in ("address_line_1", "address_line_2"):
                values[k] = _abbreviate(values[k])
        columns: dict[str, np.ndarray] = {}
        date_columns: set[str] = set()
        for canonical, col in cols.items():
            v = values[canonical]
            if col.type == "date":
                date_columns.add(col.source)
            columns[col.source] = v
        if bad_date.any():
            ev_src = cols["event_date"].source
            columns[ev_src] = columns[ev_src].astype(object)
            columns["__bad_date__"] = bad_date
        years = day.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
        truth = {
            "person_id": person,
            "household_id": household,
            "address_id": addr_true,
            "recorded_address_id": addr,
            "event_no": table.event_no,
            "event_date": day,
            "errors": bits,
            "invalid_reason": invalid,
            "source_record_id": record_id,
        }
        return Rendered(columns, date_columns, truth, years)

    def _contact(self, person: np.ndarray, day: np.ndarray) -> np.ndarray:
        """A parent or carer in the child's household that day (-1 if none)."""
        from nominal.synth.events import household_members

        w, pop = self.w, self.w.pop
        hh = w.household_at(person, day)
        row, member = household_members(w, hh, day)
        ok = (w.age(member, day[row]) >= 18) & (member != person[row])
        row, member = row[ok], member[ok]
        # mothers first, then fathers, then other adults
        rank = np.where(
            pop.role[member] == R["partner"], 0, np.where(pop.role[member] == R["head"], 1, 2)
        )
        o = np.lexsort((rank, row))
        row, member = row[o], member[o]
        first = np.r_[True, row[1:] != row[:-1]]
        out = np.full(len(person), -1, dtype=np.int64)
        out[row[first]] = member[first]
        return out


def _upper(values: np.ndarray) -> np.ndarray:
    import pandas as pd

    return pd.Series(values, dtype=object).str.upper().to_numpy(dtype=object)


def _abbreviate(values: np.ndarray) -> np.ndarray:
    import pandas as pd

    series = pd.Series(values, dtype=object)
    for pattern, short in _STREET_ABBREVIATIONS.items():
        series = series.str.replace(pattern, short, regex=True)
    return series.to_numpy(dtype=object)


# ---- writers ---------------------------------------------------------------------------


def _impossible(fmt: str, year: int) -> str:
    return fmt.replace("%d", "30").replace("%m", "02").replace("%b", "Feb").replace("%Y", str(year))


def _as_text(spec: FeedSpec, rendered: Rendered, idx: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    bad = rendered.columns.get("__bad_date__")
    for source, v in rendered.columns.items():
        if source == "__bad_date__":
            continue
        v = v[idx]
        if source in rendered.date_columns:
            v = fmt_dates(v.astype(np.int64), spec.date_format)
        elif v.dtype != object:
            v = v.astype(str).astype(object)
        out[source] = v
    if bad is not None:
        ev = spec.columns["event_date"].source
        b = np.flatnonzero(bad[idx])
        years = rendered.year[idx][b]
        out[ev][b] = [_impossible(spec.date_format, int(y)) for y in years]
    return out


def write_delivery(spec: FeedSpec, rendered: Rendered, idx: np.ndarray, path: Path) -> None:
    if spec.fmt == "csv":
        text = _as_text(spec, rendered, idx)
        table = pa.table({k: pa.array(v, type=pa.string()) for k, v in text.items()})
        buf = io.BytesIO()
        pacsv.write_csv(
            table, buf, pacsv.WriteOptions(delimiter=spec.delimiter, quoting_style="needed")
        )
        data = buf.getvalue()
        if spec.encoding == "utf-8-sig":
            data = codecs.BOM_UTF8 + data
        elif spec.encoding.lower() not in ("utf-8", "utf8"):
            data = data.decode("utf-8").encode(spec.encoding, "nominal_fold")
        path.write_bytes(data)
    elif spec.fmt == "ndjson":
        import pandas as pd

        text = _as_text(spec, rendered, idx)
        for col in spec.columns.values():
            if col.type in ("integer", "number") and col.source in text:
                text[col.source] = rendered.columns[col.source][idx]
            if col.type == "boolean" and col.source in text:
                text[col.source] = text[col.source] == "true"
        frame = pd.DataFrame(text)
        path.write_text(frame.to_json(orient="records", lines=True, force_ascii=False))
    elif spec.fmt == "parquet":
        arrays = {}
        for source, v in rendered.columns.items():
            if source == "__bad_date__":
                continue
            v = v[idx]
            if source in rendered.date_columns:
                null = (v == OPEN) | (v < -80_000)
                arrays[source] = pa.array(np.where(null, 0, v).astype(np.int32), mask=null).cast(
                    pa.date32()
                )
            elif v.dtype == object:
                arrays[source] = pa.array(v, type=pa.string())
            else:
                arrays[source] = pa.array(v)
        pq.write_table(pa.table(arrays), path, compression="zstd")
    elif spec.fmt == "xlsx":
        _write_xlsx(spec, rendered, idx, path)
    else:  # pragma: no cover - FeedSpec formats are fixed
        raise ValueError(spec.fmt)


def _write_xlsx(spec: FeedSpec, rendered: Rendered, idx: np.ndarray, path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(spec.extra.get("sheet", "Sheet1"))
    headers = [s for s in rendered.columns if s != "__bad_date__"]
    cols: list[list[Any]] = []
    bad = rendered.columns.get("__bad_date__")
    for source in headers:
        v = rendered.columns[source][idx]
        if source in rendered.date_columns:
            vals = to_dates(v.astype(np.int64)).tolist()
        elif v.dtype == object:
            vals = v.tolist()
        else:
            vals = v.tolist()
        cols.append(vals)
    if bad is not None:
        ev = headers.index(spec.columns["event_date"].source)
        for i in np.flatnonzero(bad[idx]):
            cols[ev][i] = _impossible(spec.date_format, int(rendered.year[idx][i]))
    ws.append(headers)
    for row in zip(*cols, strict=True):
        ws.append(list(row))
    wb.properties.creator = spec.partner[1]
    wb.properties.created = FIXED_TIME
    wb.save(path)
    normalise_office_file(path)


def normalise_office_file(path: Path) -> None:
    """Fix the timestamps an XLSX/DOCX carries (zip entries and document properties), so
    that the same seed always gives byte-identical files."""
    import re

    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(path) as src:
        items = [(info, src.read(info.filename)) for info in src.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info, data in items:
            if info.filename == "docProps/core.xml":
                text = data.decode("utf-8")
                text = re.sub(
                    r"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)",
                    lambda mm: mm.group(1) + stamp + mm.group(3),
                    text,
                )
                data = text.encode("utf-8")
            zi = zipfile.ZipInfo(info.filename, date_time=FIXED_ZIP_TIME)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = info.external_attr
            dst.writestr(zi, data)
    path.write_bytes(buf.getvalue())


def delivery_name(spec: FeedSpec, year: int) -> str:
    return f"{spec.stem}_{year}.{spec.extension}"


__all__ = [
    "BIT",
    "ERROR_NAMES",
    "Delivery",
    "Renderer",
    "delivery_name",
    "fmt_dates",
    "for_delivery",
    "normalise_office_file",
    "plan_deliveries",
    "to_dates",
    "write_delivery",
]
