"""Model rows: one unit as of one date, its features, its groups and its outcome.

Rows for several as-of dates make a training set; the outcome of a row is read from
events in the window after its as-of date (never used as a feature). Rows as of a date
whose window is not over yet have an incomplete outcome and are only ever scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from nominal.engines.lake import Snapshot
from nominal.insight import features
from nominal.insight.specs import ModelSpec

KEY_COLUMNS = ("unit_id", "as_of", "household_id", "oa_code", "sex", "ethnicity")


def window_end(as_of: date, months: int) -> date:
    years, rem = divmod(months, 12)
    month = as_of.month + rem
    year = as_of.year + years + (month - 1) // 12
    month = (month - 1) % 12 + 1
    day = min(as_of.day, 28) if (month == 2 and as_of.day > 28) else as_of.day
    return date(year, month, day)


def _columns(con: duckdb.DuckDBPyConnection, table: str, prefix: str) -> list[str]:
    names = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    return [n for n in names if n.startswith(prefix)]


def unit_rows_sql(con: duckdb.DuckDBPyConnection, spec: ModelSpec, as_of: date) -> str:
    """SQL for ``spec``'s population as of ``as_of`` (after :func:`features.build_tables`).

    Features come out as 4-byte floats with NULL as zero (a unit with no household at
    the as-of date has no household or area features): half the memory of doubles,
    which is what lets a million people's rows be trained on.
    """
    t = f"DATE '{as_of.isoformat()}'"
    end = f"DATE '{window_end(as_of, spec.window_months).isoformat()}'"
    population = spec.population_sql.format(t=t, end=end)
    outcome = spec.outcome_sql

    def cols(alias: str, names: list[str]) -> str:
        return ", ".join(f"CAST(coalesce({alias}.{c}, 0) AS FLOAT) AS {c}" for c in names)

    h_names = _columns(con, "fh", "h_")
    a_cols = cols("a", _columns(con, "fa", "a_"))
    if spec.unit == "household":
        return f"""
        WITH ref AS (
          SELECT m.household_id, arg_max(n.sex, m.age) AS sex,
                 arg_max(n.ethnicity, m.age) AS ethnicity
          FROM members m JOIN gold.nominals n USING (nominal_id)
          WHERE m.age >= 18 GROUP BY m.household_id),
        lab AS (
          SELECT DISTINCT m.household_id AS unit_id FROM gold.events e
          JOIN members m USING (nominal_id)
          WHERE e.event_date >= {t} AND e.event_date < {end} AND {outcome})
        SELECT u.household_id AS unit_id, u.as_of, u.household_id, u.oa_code,
               ref.sex, ref.ethnicity, {cols("u", h_names)}, {a_cols},
               CAST(lab.unit_id IS NOT NULL AS INTEGER) AS label
        FROM fh u
        LEFT JOIN fa a ON a.oa_code = u.oa_code
        LEFT JOIN ref USING (household_id)
        LEFT JOIN lab ON lab.unit_id = u.household_id
        WHERE {population}
        ORDER BY unit_id"""
    p_cols = cols("u", _columns(con, "fp", "p_"))
    return f"""
        WITH lab AS (
          SELECT DISTINCT e.nominal_id AS unit_id FROM gold.events e
          WHERE e.event_date >= {t} AND e.event_date < {end} AND {outcome})
        SELECT u.nominal_id AS unit_id, u.as_of, u.household_id, h.oa_code,
               u.sex, u.ethnicity, {p_cols}, {cols("h", h_names)}, {a_cols},
               CAST(lab.unit_id IS NOT NULL AS INTEGER) AS label
        FROM fp u LEFT JOIN fh h USING (household_id)
        LEFT JOIN fa a ON a.oa_code = h.oa_code
        LEFT JOIN lab ON lab.unit_id = u.nominal_id
        WHERE {population}
        ORDER BY unit_id"""


def unit_rows(con: duckdb.DuckDBPyConnection, spec: ModelSpec, as_of: date) -> pd.DataFrame:
    """Rows of ``spec``'s population as of ``as_of`` (after :func:`features.build` on ``con``)."""
    return frame_of(con.sql(unit_rows_sql(con, spec, as_of)).to_arrow_reader(BATCH_ROWS))


BATCH_ROWS = 100_000


@dataclass
class Slice:
    """Model rows as their non-feature columns (ids, groups, label) and their features,
    one float32 matrix (column-major) in the same row order."""

    keys: pd.DataFrame
    x: np.ndarray
    features: list[str]

    def __len__(self) -> int:
        return len(self.keys)

    def frame(self) -> pd.DataFrame:
        """The rows as one frame (the features a view of ``x``, not a copy)."""
        feats = pd.DataFrame(self.x, columns=self.features, copy=False)
        return pd.concat([self.keys, feats], axis=1, copy=False)


def read_batches(batches: pa.RecordBatchReader, rows: int | None = None) -> Slice:
    """Model rows read batch by batch, the features straight into one float32 matrix.

    With ``rows`` (how many the batches hold) the matrix is allocated once and filled,
    so no second copy of the features is ever held; without it the batches' blocks
    are joined at the end.
    """
    names = batches.schema.names
    features = [n for n in names if n[:2] in ("p_", "h_", "a_")]
    others = [n for n in names if n not in features]
    keys: list[pd.DataFrame] = []
    blocks: list[np.ndarray] = []
    full = None if rows is None else np.empty((rows, len(features)), np.float32, order="F")
    at = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        if full is not None:
            block = full[at : at + batch.num_rows]
        else:
            block = np.empty((batch.num_rows, len(features)), dtype=np.float32, order="F")
            blocks.append(block)
        for j, name in enumerate(features):
            block[:, j] = batch.column(name).to_numpy(zero_copy_only=False)
        at += batch.num_rows
        keys.append(batch.select(others).to_pandas(date_as_object=False))
    if full is not None:
        if at != rows:
            raise ValueError(f"expected {rows} model rows, read {at}")
        x = full
    elif blocks:
        x = np.asfortranarray(blocks[0] if len(blocks) == 1 else np.concatenate(blocks))
    else:
        x = np.empty((0, len(features)), np.float32, order="F")
    del blocks
    if not keys:
        keys.append(batches.schema.empty_table().select(others).to_pandas(date_as_object=False))
    key_frame = keys[0] if len(keys) == 1 else pd.concat(keys, ignore_index=True)
    return Slice(key_frame.reset_index(drop=True), x, features)


def frame_of(batches: pa.RecordBatchReader) -> pd.DataFrame:
    """Model rows as a frame: the non-feature columns (ids, groups, label), then the
    float32 features."""
    return read_batches(batches).frame()


def split(frame: pd.DataFrame, dates: dict[str, list[date]]) -> dict[str, Slice]:
    """The train / calibrate / validate slices of in-memory model rows."""
    features = feature_columns(frame)
    others = [c for c in frame.columns if c not in features]
    as_of = pd.to_datetime(frame["as_of"]).dt.date
    out = {}
    for name, chosen in dates.items():
        mask = as_of.isin(chosen).to_numpy()
        out[name] = Slice(
            frame.loc[mask, others].reset_index(drop=True),
            np.asfortranarray(frame.loc[mask, features].to_numpy(np.float32)),
            features,
        )
    return out


def read_slices(files: list[Path], dates: dict[str, list[date]]) -> dict[str, Slice]:
    """The slices of one model's rows spilled by :func:`rows_to_parquet`, each read
    straight into its float32 matrix (only one model's rows are ever in memory)."""
    import pyarrow.dataset as pads

    source = pads.dataset([str(f) for f in files], format="parquet")
    out = {}
    for name, chosen in dates.items():
        wanted = pa.array(chosen, type=pa.date32())
        scanner = source.scanner(filter=pads.field("as_of").isin(wanted), batch_size=BATCH_ROWS)
        out[name] = read_batches(scanner.to_reader(), rows=scanner.count_rows())
    return out


GOLD_TABLES = [
    "gold.events",
    "gold.nominals",
    "gold.household_members",
    "gold.households",
    "reference.output_areas",
]


def rows_for_dates(
    snapshot: Snapshot,
    specs: list[ModelSpec],
    dates: list[date],
    respect_received: bool | None = None,
) -> dict[str, pd.DataFrame]:
    """Model rows of each spec over several as-of dates (features built once per date)."""
    from nominal.engines.duck import connect

    con = connect(snapshot, tables=GOLD_TABLES)
    parts: dict[str, list[pd.DataFrame]] = {s.name: [] for s in specs}
    for as_of in dates:
        features.build_tables(con, as_of, respect_received=respect_received)
        for spec in specs:
            parts[spec.name].append(unit_rows(con, spec, as_of))
    con.close()
    return {name: pd.concat(frames, ignore_index=True) for name, frames in parts.items()}


def rows_to_parquet(
    snapshot: Snapshot,
    specs: list[ModelSpec],
    dates: list[date],
    folder: Path,
    respect_received: bool | None = None,
) -> dict[str, list[Path]]:
    """:func:`rows_for_dates` written by DuckDB to Parquet files under ``folder`` (one
    per model and as-of date) instead of held in memory: at a million people the rows
    of all four models for seven dates are gigabytes, and a model is fitted on its own
    rows only (:func:`read_slices`)."""
    from nominal.engines.duck import connect

    con = connect(snapshot, tables=GOLD_TABLES)
    files: dict[str, list[Path]] = {s.name: [] for s in specs}
    con.execute("SET preserve_insertion_order = true")  # the rows' order, as in memory
    for as_of in dates:
        features.build_tables(con, as_of, respect_received=respect_received)
        for spec in specs:
            path = folder / f"{spec.name}-{as_of.isoformat()}.parquet"
            con.execute(
                f"COPY ({unit_rows_sql(con, spec, as_of)}) TO '{path}' "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
            files[spec.name].append(path)
    con.close()
    return files


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c[:2] in ("p_", "h_", "a_")]
