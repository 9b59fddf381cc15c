"""The candidate index: golden nominals held in memory, keyed by blocking keys.

Scoring every nominal against a query would take seconds at a million nominals, so a
search first retrieves candidates that share at least one blocking key with the query
and scores only those. The keys are chosen so that each kind of imperfect knowledge
still shares some key with the right person:

* a typo in the family name keeps its Soundex code (``gi_fs``), a nickname keeps its
  canonical name (``gc_*``, from the linkage model's nickname table);
* names given the wrong way round are looked up both ways round;
* only a birth year, or only a postcode sector or district, still meets a name in
  ``*_y``, ``*_sec`` and ``fm_dist``;
* identifiers, a full date of birth, a full postcode and a house number with its
  street find people whose names were not given at all.

Each key is hashed to 64 bits; the index is one sorted array of hashes with the row
of each nominal, so a lookup is a binary search (``numpy.searchsorted``) and the
whole index for a million nominals takes a few hundred megabytes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import jellyfish
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from nominal.engines.lake import Snapshot
from nominal.link.standardise import INPUT_COLUMNS, register_nicknames, standardise_sql
from nominal.search.levels import Columns
from nominal.search.scoring import LinkageScorer

# Keys with more rows than this are too common to narrow a search (a common name
# in a whole town); they are skipped rather than flooding the candidates.
MAX_POSTINGS = 5000
# The golden-record columns a search result shows (before policy filtering).
DISPLAY_COLUMNS: tuple[str, ...] = (
    "nominal_id",
    "nominal_pseudo",
    "given_name",
    "middle_names",
    "family_name",
    "date_of_birth",
    "sex",
    "address_line_1",
    "town",
    "postcode",
    "nhs_number",
    "ni_number",
    "police_id",
    "pupil_number",
    "household_id",
    "agencies",
)


def metaphone(value: str | None) -> str | None:
    return jellyfish.metaphone(value) or None if value else None


def soundex(value: str | None) -> str | None:
    return jellyfish.soundex(value) or None if value else None


def hash_keys(keys: Iterable[str] | np.ndarray) -> np.ndarray:
    """64-bit hashes of key strings (deterministic across processes)."""
    array = keys if isinstance(keys, np.ndarray) else np.asarray(list(keys), dtype=object)
    if len(array) == 0:
        return np.zeros(0, dtype=np.uint64)
    return pd.util.hash_array(array, categorize=False)


def _join(*parts: Any) -> str | None:
    if any(p is None or p == "" for p in parts):
        return None
    return "|".join(str(p) for p in parts)


def record_keys(row: dict[str, Any]) -> list[str]:
    """The blocking keys of one standardised record (nominal or query)."""
    given, family = row.get("given_std"), row.get("family_std")
    canon, initial = row.get("given_canon"), row.get("given_initial")
    fm, fs, gm = metaphone(family), soundex(family), metaphone(given)
    year, sector = row.get("dob_year"), row.get("postcode_sector")
    district = row.get("postcode_district")
    dob = row.get("dob")
    keys = [
        _join("nhs", row.get("nhs_number")),
        _join("ni", row.get("ni_number")),
        _join("pol", row.get("police_id")),
        _join("upn", row.get("pupil_number")),
        _join("gc_fm", canon, fm),
        _join("gi_fs", initial, fs),
        _join("gm_fs", gm, fs),
        _join("fm_y", fm, year),
        _join("fs_y", fs, year),
        _join("gc_y", canon, year),
        _join("dob", dob.isoformat() if isinstance(dob, date) else dob),
        _join("fm_sec", fm, sector),
        _join("gc_sec", canon, sector),
        _join("fm_dist", fm, district),
        _join("pc", row.get("postcode_std")),
        _join("hs", row.get("house_number"), _street(row.get("address_tokens"))),
    ]
    return [k for k in keys if k is not None]


def _street(tokens: list[str] | None) -> str | None:
    """The first word of the street name (the first word that is not a number)."""
    for token in tokens or []:
        if not token[:1].isdigit() and token not in {"flat", "house"}:
            return token
    return None


@dataclass
class SearchIndex:
    """Standardised golden nominals with their blocking keys, ready to search."""

    table: pa.Table  # standardised + tf_* + display columns + datasets, one row a nominal
    key_hashes: np.ndarray  # sorted uint64
    key_rows: np.ndarray  # int64 row of table per hash
    dob_days: np.ndarray  # int64 days since 1970-01-01, -1 when unknown
    postcodes: np.ndarray  # object: compact postcodes the nominal was ever recorded at, "|"-joined
    scorer: LinkageScorer
    snapshot_id: str | None
    built_seconds: float
    # The columns the linkage model's comparison levels read, as arrays (see
    # ``LinkageScorer.columns``), so scoring candidates starts with a NumPy take.
    score_columns: Columns | None = None
    # Per row, one bit per dataset the nominal has records in (see ``dataset_bit``), so
    # the datasets a caller may see filter thousands of candidates in one NumPy step.
    dataset_bits: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    dataset_bit: dict[str, int] = field(default_factory=dict)

    def bits_of(self, datasets: Iterable[str]) -> np.uint64:
        bits = 0
        for code in datasets:
            bit = self.dataset_bit.get(code)
            if bit is not None:
                bits |= 1 << bit
        return np.uint64(bits)

    @property
    def size(self) -> int:
        return self.table.num_rows

    def lookup(self, keys: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """(rows, number of the given keys each shares), rows ascending; common keys skipped."""
        hashes = np.unique(hash_keys(keys))
        lo = np.searchsorted(self.key_hashes, hashes, side="left")
        hi = np.searchsorted(self.key_hashes, hashes, side="right")
        size = hi - lo
        keep = (size > 0) & (size <= MAX_POSTINGS)
        if not keep.any():
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        postings = np.concatenate(
            [self.key_rows[a:b] for a, b in zip(lo[keep].tolist(), hi[keep].tolist(), strict=True)]
        )
        rows, counts = np.unique(postings, return_counts=True)
        return rows, counts


def _distinct_map(column: pa.ChunkedArray, function: Any) -> pa.Array:
    """``function`` applied to each distinct value of ``column`` (NULL stays NULL)."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    mapped = pa.array([function(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return pc.take(mapped, encoded.indices)


def _blank_as_null(array: Any) -> pa.Array:
    text = pc.cast(array, pa.string())
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def table_keys(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(key hashes, row) for every blocking key of every row: :func:`record_keys` for a
    whole table at once, with the phonetic codes computed once per distinct name."""
    col = {name: _blank_as_null(table.column(name)) for name in (
        "given_std", "family_std", "given_canon", "given_initial", "dob_year", "dob",
        "postcode_sector", "postcode_district", "postcode_std", "house_number",
        "nhs_number", "ni_number", "police_id", "pupil_number",
    )}  # fmt: skip
    fm = _blank_as_null(_distinct_map(table.column("family_std"), metaphone))
    fs = _blank_as_null(_distinct_map(table.column("family_std"), soundex))
    gm = _blank_as_null(_distinct_map(table.column("given_std"), metaphone))
    tokens = pc.binary_join(table.column("address_tokens"), "\x1f")
    street = _blank_as_null(
        _distinct_map(tokens, lambda v: _street(v.split("\x1f")) if v else None)
    )
    year, sector, canon = col["dob_year"], col["postcode_sector"], col["given_canon"]
    parts: list[tuple[str, list[pa.Array]]] = [
        ("nhs", [col["nhs_number"]]),
        ("ni", [col["ni_number"]]),
        ("pol", [col["police_id"]]),
        ("upn", [col["pupil_number"]]),
        ("gc_fm", [canon, fm]),
        ("gi_fs", [col["given_initial"], fs]),
        ("gm_fs", [gm, fs]),
        ("fm_y", [fm, year]),
        ("fs_y", [fs, year]),
        ("gc_y", [canon, year]),
        ("dob", [col["dob"]]),
        ("fm_sec", [fm, sector]),
        ("gc_sec", [canon, sector]),
        ("fm_dist", [fm, col["postcode_district"]]),
        ("pc", [col["postcode_std"]]),
        ("hs", [col["house_number"], street]),
    ]
    n = table.num_rows
    all_hashes: list[np.ndarray] = []
    all_rows: list[np.ndarray] = []
    for prefix, values in parts:
        keys = pc.binary_join_element_wise(pa.array([prefix] * n, pa.string()), *values, "|")
        present = pc.is_valid(keys).to_numpy(zero_copy_only=False)
        text = keys.filter(pc.is_valid(keys)).to_numpy(zero_copy_only=False)
        all_hashes.append(hash_keys(text))
        all_rows.append(np.flatnonzero(present).astype(np.int64))
    return np.concatenate(all_hashes), np.concatenate(all_rows)


def standardised_nominals(con: duckdb.DuckDBPyConnection, source: str) -> pa.Table:
    """Golden nominals in the linkage model's standard form (``unique_id`` = nominal id)."""
    columns = set(con.table(source).columns)
    register_nicknames(con)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW search_nominals_raw AS "
        f"SELECT nominal_id AS record_key, * FROM {source}"
    )
    present = {"record_key", *[c for c in INPUT_COLUMNS if c in columns]}
    return con.sql(standardise_sql("search_nominals_raw", present=present)).to_arrow_table()


def build_index(
    snapshot: Snapshot, scorer: LinkageScorer, *, threads: int | None = None
) -> SearchIndex:
    """Build the index over ``gold.nominals`` of ``snapshot``."""
    from nominal.engines import duck

    started = time.perf_counter()
    con = duck.connect(snapshot, threads=threads)
    con.execute("SET enable_progress_bar = false")
    if not snapshot.has("gold.nominals"):
        raise LookupError("no gold.nominals in the lake: run `nominal link` first")
    std = standardised_nominals(con, "gold.nominals")
    std = scorer.with_term_frequencies(std)
    display = con.sql(
        "SELECT " + ", ".join(DISPLAY_COLUMNS) + " FROM gold.nominals"
    ).to_arrow_table()
    # The datasets each nominal has records in: policy shows a nominal only to those
    # whose agreements cover at least one of them.
    source = "gold.nominal_records" if snapshot.has("gold.nominal_records") else "gold.events"
    # Every postcode a nominal was recorded at: a practitioner's "somewhere in NX1 2" may
    # be the current address of a person whose golden record still holds an older one.
    if snapshot.has("gold.nominal_records") and snapshot.has("silver.identity"):
        postcodes_all = con.sql(
            """SELECT r.nominal_id AS pc_nominal_id,
                      string_agg(DISTINCT upper(replace(i.postcode, ' ', '')), '|') AS postcodes_all
               FROM gold.nominal_records r JOIN silver.identity i USING (record_key)
               WHERE i.postcode IS NOT NULL GROUP BY r.nominal_id"""
        ).to_arrow_table()
    else:
        postcodes_all = pa.table(
            {"pc_nominal_id": pa.array([], pa.string()), "postcodes_all": pa.array([], pa.string())}
        )
    datasets = con.sql(
        f"SELECT nominal_id, list(DISTINCT dataset ORDER BY dataset) AS datasets "
        f"FROM {source} GROUP BY nominal_id"
    ).to_arrow_table()
    con.register("std_t", std)
    con.register("display_t", display)
    con.register("datasets_t", datasets)
    con.register("postcodes_t", postcodes_all)
    table = con.sql(
        """SELECT s.*, d.* EXCLUDE (nominal_id, sex, nhs_number, ni_number, police_id,
                  pupil_number), d.nominal_id, d.sex AS display_sex,
                  d.nhs_number AS display_nhs_number, d.ni_number AS display_ni_number,
                  d.police_id AS display_police_id, d.pupil_number AS display_pupil_number,
                  coalesce(ds.datasets, []::VARCHAR[]) AS datasets,
                  concat_ws('|', s.postcode_std, pc.postcodes_all) AS postcodes_all
           FROM std_t s JOIN display_t d ON d.nominal_id = s.unique_id
           LEFT JOIN datasets_t ds ON ds.nominal_id = s.unique_id
           LEFT JOIN postcodes_t pc ON pc.pc_nominal_id = s.unique_id"""
    ).to_arrow_table()
    con.close()
    # One chunk per column: taking rows from a chunked column concatenates its chunks first.
    table = table.combine_chunks()

    hashes, rows = table_keys(table)
    order = np.argsort(hashes, kind="stable")
    dob = pc.cast(table.column("dob"), pa.int32()).to_numpy(zero_copy_only=False)
    dob_days = np.where(np.isnan(dob.astype("float64")), -1, dob).astype(np.int64)
    postcodes = _postcodes(table)
    lists = table.column("datasets").to_pylist()
    codes = sorted({code for codes in lists for code in codes})
    if len(codes) > 64:
        raise ValueError(f"{len(codes)} datasets: the search index handles at most 64")
    dataset_bit = {code: i for i, code in enumerate(codes)}
    dataset_bits = np.asarray(
        [sum(1 << dataset_bit[c] for c in set(codes_)) for codes_ in lists], dtype=np.uint64
    )
    return SearchIndex(
        table=table,
        key_hashes=hashes[order],
        key_rows=rows[order],
        dob_days=dob_days,
        postcodes=postcodes,
        scorer=scorer,
        snapshot_id=snapshot.id,
        built_seconds=time.perf_counter() - started,
        score_columns=scorer.columns(table) if scorer.fast else None,
        dataset_bits=dataset_bits,
        dataset_bit=dataset_bit,
    )


# -- kept on disk ------------------------------------------------------------------------
# An index is a pure function of a lake snapshot and a linkage model version, so it is
# written once under the hub's home and read back by every later process (the command
# line, a restarted server, each server worker) instead of being rebuilt: reading a
# million nominals takes seconds, building them minutes. Only the current snapshot's
# index is kept; older ones are deleted when a new one is written, so a record erased
# from the lake does not live on here.
INDEX_FORMAT = 2
_ARRAYS = ("key_hashes", "key_rows", "dob_days", "dataset_bits")


def index_dir(root: Path, snapshot_id: str, model_version: str | None) -> Path:
    return root / f"{snapshot_id}-{model_version or 'none'}-v{INDEX_FORMAT}"


def save_index(index: SearchIndex, folder: Path) -> None:
    """Write ``index`` to ``folder`` atomically (a temporary folder renamed into place)."""
    import json
    import shutil
    import tempfile

    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".building-", dir=folder.parent))
    try:
        with (
            pa.OSFile(str(work / "table.arrow"), "wb") as sink,
            pa.ipc.new_file(sink, index.table.schema) as writer,
        ):
            # one record batch: a take from a chunked table would concatenate the chunks
            writer.write_table(index.table.combine_chunks(), max_chunksize=index.table.num_rows)
        for name in _ARRAYS:
            np.save(work / f"{name}.npy", getattr(index, name))
        meta = {"format": INDEX_FORMAT, "snapshot_id": index.snapshot_id,
                "dataset_bit": index.dataset_bit, "built_seconds": index.built_seconds}  # fmt: skip
        (work / "meta.json").write_text(json.dumps(meta))
        try:
            work.rename(folder)
        except OSError:  # another process wrote it first: theirs is the same index
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    for other in folder.parent.iterdir():
        if other != folder and other.is_dir() and not other.name.startswith(".building-"):
            shutil.rmtree(other, ignore_errors=True)


def load_index(folder: Path, scorer: LinkageScorer) -> SearchIndex | None:
    """The index saved in ``folder``, memory-mapped; None if there is none (or unreadable)."""
    import json

    meta_path = folder / "meta.json"
    if not meta_path.exists():
        return None
    started = time.perf_counter()
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != INDEX_FORMAT:
            return None
        source = pa.memory_map(str(folder / "table.arrow"), "r")
        table = pa.ipc.open_file(source).read_all()
        if any(column.num_chunks > 1 for column in table.columns):
            table = table.combine_chunks()
        arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in _ARRAYS}
    except (OSError, ValueError, pa.ArrowInvalid):
        return None
    return SearchIndex(
        table=table,
        key_hashes=arrays["key_hashes"],
        key_rows=arrays["key_rows"],
        dob_days=arrays["dob_days"],
        postcodes=_postcodes(table),
        scorer=scorer,
        snapshot_id=meta["snapshot_id"],
        built_seconds=time.perf_counter() - started,
        score_columns=scorer.columns(table) if scorer.fast else None,
        dataset_bits=arrays["dataset_bits"],
        dataset_bit={str(k): int(v) for k, v in meta["dataset_bit"].items()},
    )


def _postcodes(table: pa.Table) -> np.ndarray:
    return np.asarray([p or "" for p in table.column("postcodes_all").to_pylist()], dtype=object)
