"""``nominal link-file``: dedupe one CSV, or link two, with the hub's linker.

Anyone can measure the linker on their own labelled data: map the file's columns to
canonical names (``--map given_name=first,family_name=surname,...``), and the same
standardisation, comparisons, unsupervised training, veto and clustering as
``nominal link`` run on the file alone (nothing is read from or written to a hub).
The output is ``record_id,nominal_id`` for every input row.

Dates of birth are accepted in any common form: ISO ``1980-03-31``, ``yyyymmdd``,
``dd/mm/yyyy``, ``dd-Mon-yyyy``; the format is detected per column (a column in which
every value is eight digits is ``yyyymmdd``).
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from nominal.link import model as link_model
from nominal.link import settings as link_settings
from nominal.link.standardise import INPUT_COLUMNS, standardise

CANONICAL = tuple(c for c in INPUT_COLUMNS if c != "dataset")
DATE_FORMATS = ("%Y%m%d", "%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d-%b-%Y", "%d %b %Y", "%d.%m.%Y")


class LinkFileError(ValueError):
    """Bad input for link-file (missing file or column, bad mapping); names the culprit."""


def parse_mapping(text: str) -> dict[str, str]:
    """``canonical=source,...`` -> {canonical: source}; canonical names are checked."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise LinkFileError(f"--map: {part!r} is not canonical=source")
        canonical, source = (x.strip() for x in part.split("=", 1))
        if canonical not in CANONICAL:
            raise LinkFileError(
                f"--map: unknown canonical name {canonical!r} (use {', '.join(CANONICAL)})"
            )
        out[canonical] = source
    return out


def parse_dates(values: pd.Series, where: str) -> pd.Series:
    """ISO dates from a column of dates in one common format (detected)."""
    text = values.astype("string").str.strip()
    present = text.dropna()
    present = present[present != ""]
    if present.empty:
        return pd.Series([None] * len(values), index=values.index, dtype="object")
    best: tuple[int, str] | None = None
    sample = present.head(2000)
    for fmt in DATE_FORMATS:
        parsed = pd.to_datetime(sample, format=fmt, errors="coerce")
        ok = int(parsed.notna().sum())
        if best is None or ok > best[0]:
            best = (ok, fmt)
    if best is None or best[0] == 0:
        raise LinkFileError(f"{where}: dates in an unknown format, e.g. {present.iloc[0]!r}")
    parsed = pd.to_datetime(text, format=best[1], errors="coerce")
    return parsed.dt.strftime("%Y-%m-%d").astype("object").where(parsed.notna(), None)


def _load(path: Path, id_column: str, mapping: dict[str, str], tag: str) -> pd.DataFrame:
    if not path.is_file():
        raise LinkFileError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise LinkFileError(f"{path}: cannot read as CSV: {exc}") from None
    frame.columns = [c.strip() for c in frame.columns]
    if id_column not in frame.columns:
        raise LinkFileError(f"{path}: no id column {id_column!r} (columns: {list(frame.columns)})")
    for canonical, source in mapping.items():
        if source not in frame.columns:
            raise LinkFileError(f"{path}: --map {canonical}={source}: no column {source!r}")
    ids = frame[id_column].str.strip()
    dup = ids[ids.duplicated()]
    if not dup.empty:
        raise LinkFileError(
            f"{path}: row {int(dup.index[0]) + 2}, field {id_column}: duplicate id {dup.iloc[0]!r}"
        )
    out = pd.DataFrame({"record_id": ids})
    out["record_key"] = [f"{tag}:{i}" for i in ids]
    out["dataset"] = tag
    for canonical, source in mapping.items():
        column = frame[source].replace("", None)
        if canonical == "date_of_birth":
            column = parse_dates(column, f"{path}: field {source}")
        out[canonical] = column
    return out


def link_files(
    inputs: list[Path],
    id_column: str,
    mapping_text: str,
    out: Path,
    *,
    threshold: float | None = None,
    seed: int = 42,
    veto: bool = False,
) -> dict[str, Any]:
    """Dedupe (one file) or link (two files); writes ``record_id,nominal_id`` to ``out``."""
    mapping = parse_mapping(mapping_text)
    if not mapping:
        raise LinkFileError("--map: give at least one canonical=source column")
    frames = [_load(p, id_column, mapping, f"f{i}") for i, p in enumerate(inputs)]
    con = duckdb.connect()
    present = {*mapping, "dataset"}
    for i, frame in enumerate(frames):
        con.register(f"raw_{i}", frame)
        standardise(con, f"raw_{i}", f"std_{i}", present=present)
    link_with = "std_1" if len(frames) == 2 else None
    trained, tf, _summary = link_model.train(
        con, "std_0", link_with=link_with, seed=seed, max_u_pairs=1e6
    )
    model = link_model.LinkModel("file", trained, tf, {})
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(con)
    inputs_sdf: Any = (
        db_api.register("std_0")
        if link_with is None
        else [db_api.register("std_0"), db_api.register("std_1")]
    )
    scoring = dict(trained)
    scoring["blocking_rules_to_generate_predictions"] = [
        *trained["blocking_rules_to_generate_predictions"],
        *({"blocking_rule": sql, "sql_dialect": "duckdb"}
          for sql in link_settings.FILE_EXTRA_BLOCKING_SQL),
    ]  # fmt: skip
    linker = Linker(inputs_sdf, scoring, log_level=logging.ERROR)
    link_model.register_tf(linker, model)
    pred = linker.inference.predict(
        threshold_match_probability=link_settings.KEEP_PROBABILITY, warning_mode="never"
    )
    both = " UNION ALL BY NAME ".join(f"SELECT * FROM std_{i}" for i in range(len(frames)))
    con.execute(f"CREATE OR REPLACE TABLE std_both AS {both}").fetchall()
    cut = threshold if threshold is not None else link_settings.FILE_MATCH_PROBABILITY
    from nominal.link.pipeline import VETO_SQL, cluster, veto_join

    con.execute(
        f"""CREATE OR REPLACE TABLE edges AS
        SELECT p.unique_id_l AS record_key_l, p.unique_id_r AS record_key_r
        FROM {pred.physical_name} p {veto_join("std_both")}
        WHERE p.match_probability >= {cut}
          AND NOT coalesce({VETO_SQL if veto else "FALSE"}, false)"""
    ).fetchall()
    union = " UNION ALL ".join(
        f"SELECT unique_id AS record_key FROM std_{i}" for i in range(len(frames))
    )
    con.execute(f"CREATE OR REPLACE TABLE nodes AS {union}").fetchall()
    cluster(con, "nodes", "edges")
    for i, frame in enumerate(frames):
        con.register(f"ids_{i}", frame[["record_key", "record_id"]])
    ids_union = " UNION ALL ".join(f"SELECT * FROM ids_{i}" for i in range(len(frames)))
    rows = con.execute(
        f"""SELECT i.record_id, c.cluster_id FROM ({ids_union}) i
        JOIN clusters c USING (record_key) ORDER BY i.record_key"""
    ).fetchall()
    nominal = {
        cid: "N" + hashlib.sha256(cid.encode()).hexdigest()[:15] for cid in {r[1] for r in rows}
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    from nominal.security.exports import write_csv  # cells escaped against formula injection

    with open(out, "w", newline="", encoding="utf-8") as handle:
        write_csv(handle, ["record_id", "nominal_id"], ((r[0], nominal[r[1]]) for r in rows))
    pairs = int(con.execute(f"SELECT count(*) FROM {pred.physical_name}").fetchall()[0][0])
    return {
        "records": len(rows),
        "nominals": len(nominal),
        "pairs_scored": pairs,
        "threshold": cut,
        "out": str(out),
        "files": [str(p) for p in inputs],
        "mapping": {k: v for k, v in mapping.items() if re.match(r"^[a-z_0-9]+$", k)},
    }
