"""Training, saving and loading the linkage model (Splink, unsupervised).

No labels are needed: the prior is estimated from near-certain deterministic rules,
the u probabilities (how often non-matches agree by chance) by random sampling, and the
m probabilities (how often true matches agree) by expectation maximisation over
several blocking rules, each of which frees the comparisons the others hold fixed.

A trained model is saved under ``$NOMINAL_HOME/models/linkage/`` as
``<version>.json`` (the Splink model), ``<version>.tf.parquet`` (term frequencies
frozen at training time) and ``<version>.meta.json``; ``CURRENT`` names the version in
use. Freezing the term frequencies with the model makes a score depend only on the
pair and the model version, so an incremental run scores exactly as a full run would,
and search can reuse :func:`score_pairs` for one record against candidates.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from nominal.config import Home
from nominal.link import thresholds

if TYPE_CHECKING:  # Splink is imported where a linker is built (half a CPU second)
    import pyarrow as pa
    from splink import Linker

MODEL_DIR = ("models", "linkage")
logging.getLogger("splink").setLevel(logging.WARNING)


class ModelError(RuntimeError):
    """No usable linkage model (none trained yet, or a named version is missing)."""


@dataclass(frozen=True)
class LinkModel:
    """A trained model: Splink settings with parameters, and frozen term frequencies."""

    version: str
    settings: dict[str, Any]
    # column, value, tf: the table, or the Parquet file it is read from when first
    # needed (a run replaying recorded SQL reads the file with DuckDB instead)
    tf_data: pa.Table | Path
    meta: dict[str, Any]

    @property
    def tf(self) -> pa.Table:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if isinstance(self.tf_data, Path):
            # ParquetFile, not read_table: read_table imports pyarrow.dataset and
            # pandas (about a second), which a link run has no other use for.
            object.__setattr__(self, "tf_data", pq.ParquetFile(self.tf_data).read())
        assert isinstance(self.tf_data, pa.Table)
        return self.tf_data

    def tf_table(self, column: str) -> pa.Table:
        """The term-frequency lookup of one column, shaped as Splink expects."""
        import pyarrow as pa

        # Slices, not pyarrow.compute or pa.array: both import pandas (about a second
        # of a short incremental run) to check their arguments.
        names = self.tf.column("column").to_pylist()
        parts, start = [], 0
        for i in range(1, len(names) + 1):
            if i == len(names) or names[i] != names[start]:
                if names[start] == column:
                    parts.append(self.tf.slice(start, i - start))
                start = i
        rows = pa.concat_tables(parts) if parts else self.tf.slice(0, 0)
        return pa.Table.from_arrays(
            [rows.column("value"), rows.column("tf")], names=[column, f"tf_{column}"]
        )


def model_dir(home: Home) -> Path:
    return home.root.joinpath(*MODEL_DIR)


def term_frequencies(con: duckdb.DuckDBPyConnection, table: str) -> pa.Table:
    """Relative frequency of every value of the term-frequency columns in ``table``."""
    parts = []
    for column in thresholds.TF_COLUMNS:
        parts.append(
            f"SELECT '{column}' AS column, CAST({column} AS VARCHAR) AS value, "
            f"count(*) / sum(count(*)) OVER () AS tf "
            f"FROM {table} WHERE {column} IS NOT NULL GROUP BY {column}"
        )
    return con.sql(" UNION ALL ".join(parts)).to_arrow_table()


def register_tf(linker: Linker, model: LinkModel) -> None:
    """Give the linker the model's frozen term frequencies (not the input's)."""
    db_api = linker._db_api
    for column in thresholds.TF_COLUMNS:
        sdf = db_api.register(model.tf_table(column))
        linker.table_management.register_term_frequency_lookup(sdf, column)


# Above EM_RECORDS records each expectation-maximisation session samples records
# until its blocked pairs are at most EM_MAX_PAIRS (for scale: the date-of-birth
# session of a 89,980-record synthetic town compares about 0.7M pairs, unsampled).
EM_RECORDS = 300_000
EM_MAX_PAIRS = 3e6


def train(
    con: duckdb.DuckDBPyConnection,
    table: str,
    *,
    seed: int = 42,
    max_u_pairs: float = 2e6,
    link_with: str | None = None,
) -> tuple[dict[str, Any], pa.Table, dict[str, Any]]:
    """Train the model on the standardised records in ``table`` (DuckDB).

    With ``link_with`` (a second standardised table) the model links the two tables
    (``link_only``) instead of deduplicating one. Returns the Splink settings with
    trained parameters, the term frequencies and a summary of the training.
    """
    from splink import DuckDBAPI, Linker

    from nominal.link import settings as link_settings

    n = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
    db_api = DuckDBAPI(con)
    if link_with is None:
        tf = term_frequencies(con, table)
        inputs: Any = db_api.register(table)
        creator = link_settings.settings()
    else:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE tf_union AS "
            f"SELECT * FROM {table} UNION ALL BY NAME SELECT * FROM {link_with}"
        ).fetchall()
        tf = term_frequencies(con, "tf_union")
        inputs = [db_api.register(table), db_api.register(link_with)]
        creator = link_settings.settings(link_type="link_only")
    linker = Linker(inputs, creator, log_level=logging.ERROR)
    register_tf(linker, LinkModel("training", {}, tf, {}))
    # wall and CPU seconds (all of the process's threads) of each training step
    timings: dict[str, list[float]] = {}
    last = [time.perf_counter(), time.process_time()]

    def lap(name: str) -> None:
        now = [time.perf_counter(), time.process_time()]
        timings[name] = [round(now[0] - last[0], 3), round(now[1] - last[1], 3)]
        last[:] = now

    lap("prepare")
    linker.training.estimate_probability_two_random_records_match(
        link_settings.deterministic_rules(), recall=0.7
    )
    lap("prior")
    linker.training.estimate_u_using_random_sampling(max_pairs=max_u_pairs, seed=seed)
    lap("u")
    # Above EM_RECORDS records each EM session samples the records. Splink's
    # ``record_sample_proportion`` alone samples nothing: it is only the proportion of
    # the probe that estimates the blocked pairs when ``max_pairs`` is given, and
    # without that cap EM compared every blocked pair of every record (at a million
    # records: several times the CPU of the whole link, spilling gigabytes to disk).
    sample = min(1.0, EM_RECORDS / max(n, 1))
    em_options: dict[str, Any] = (
        {} if sample >= 1.0 else {"max_pairs": EM_MAX_PAIRS, "record_sample_proportion": sample}
    )
    sessions = []
    sampled: list[dict[str, Any]] = []
    for i, rule in enumerate(link_settings.training_blocking_rules()):
        session = linker.training.estimate_parameters_using_expectation_maximisation(
            rule, **em_options
        )
        info = getattr(session, "_sample_info", None) or {}
        sampled.append(
            {
                k: info[k]
                for k in ("estimated_total_pairs", "p_star", "sampling_applied")
                if k in info
            }
        )
        sessions.append(str(rule.get_blocking_rule("duckdb").blocking_rule_sql))
        lap(f"em {i + 1}")
    trained = linker.misc.save_model_to_json()
    summary = {
        "records": n,
        "em_blocking_rules": sessions,
        "em_sample_proportion": sample,
        "em_max_pairs": em_options.get("max_pairs"),
        "em_sampling": sampled,
        "seconds_wall_cpu": timings,
    }
    return trained, tf, summary


def save(home: Home, trained: dict[str, Any], tf: pa.Table, summary: dict[str, Any]) -> str:
    """Save a trained model as a new version and point ``CURRENT`` at it."""
    import pyarrow.parquet as pq

    folder = model_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    (folder / f"{version}.json").write_text(json.dumps(trained, indent=1))
    pq.write_table(tf, folder / f"{version}.tf.parquet")
    meta = {
        "version": version,
        "trained_at": datetime.now(UTC).isoformat(),
        "match_probability": thresholds.MATCH_PROBABILITY,
        "review_probability": thresholds.REVIEW_PROBABILITY,
        **summary,
    }
    (folder / f"{version}.meta.json").write_text(json.dumps(meta, indent=1))
    tmp = folder / ".CURRENT.tmp"
    tmp.write_text(version + "\n")
    tmp.replace(folder / "CURRENT")
    return version


def current_version(home: Home) -> str | None:
    pointer = model_dir(home) / "CURRENT"
    return pointer.read_text().strip() if pointer.exists() else None


def load(home: Home, version: str | None = None) -> LinkModel:
    """The named (default: current) model version."""
    chosen = version or current_version(home)
    if chosen is None:
        raise ModelError(f"no linkage model in {model_dir(home)}: run `nominal link --retrain`")
    folder = model_dir(home)
    path = folder / f"{chosen}.json"
    if not path.exists():
        raise ModelError(f"linkage model version {chosen} not found in {folder}")
    meta_path = folder / f"{chosen}.meta.json"
    return LinkModel(
        version=chosen,
        settings=json.loads(path.read_text()),
        tf_data=folder / f"{chosen}.tf.parquet",
        meta=json.loads(meta_path.read_text()) if meta_path.exists() else {},
    )


def settings_for_dialect(model: LinkModel, dialect: str) -> dict[str, Any]:
    """The model's settings with SQL written for ``dialect`` (e.g. ``spark``).

    A saved model holds SQL in the dialect it was trained in (DuckDB). For another
    backend the comparisons are rebuilt from :mod:`nominal.link.settings` in that
    dialect and the trained parameters copied level by level.
    """
    if dialect == "duckdb":
        return dict(model.settings)
    from nominal.link import settings as link_settings

    fresh = link_settings.settings().get_settings(dialect).as_dict()
    fresh["probability_two_random_records_match"] = model.settings[
        "probability_two_random_records_match"
    ]

    def shape(settings: dict[str, Any]) -> list[int]:
        return [len(c["comparison_levels"]) for c in settings["comparisons"]]

    if shape(fresh) != shape(model.settings):
        raise ModelError(
            f"linkage model {model.version} was trained with other comparisons than this "
            "version of nominal defines: run `nominal link --retrain`"
        )
    for new_cmp, old_cmp in zip(fresh["comparisons"], model.settings["comparisons"], strict=True):
        for new_level, old_level in zip(
            new_cmp["comparison_levels"], old_cmp["comparison_levels"], strict=True
        ):
            for key in ("m_probability", "u_probability"):
                if key in old_level:
                    new_level[key] = old_level[key]
    return fresh


def linker_for(db_api: Any, table: Any, model: LinkModel) -> Linker:
    """A Splink linker over ``table`` (registered on ``db_api``) with ``model`` loaded."""
    from splink import Linker

    sdf = db_api.register(table)
    dialect = db_api.sql_dialect.sql_dialect_str
    # The settings were validated when the model was trained; Splink's check of every
    # comparison's SQL against the input columns only logs, and parses each level's
    # SQL with sqlglot (a third of a second, most of an incremental run's linker).
    linker = Linker(
        sdf,
        settings_for_dialect(model, dialect),
        log_level=logging.ERROR,
        validate_settings=False,
    )
    register_tf(linker, model)
    return linker


def score_pairs(
    home: Home,
    left: list[dict[str, Any]],
    right: list[dict[str, Any]],
    model: LinkModel | None = None,
) -> list[dict[str, Any]]:
    """Score every left record against every right record with the current model.

    Records carry the canonical identity columns (``record_key``, ``given_name``,
    ``family_name``, ``date_of_birth``, ``postcode``, ...); they are standardised the
    same way as in a link run. Returns one dict per pair with ``record_key_l``,
    ``record_key_r``, ``match_weight`` and ``match_probability``. Search uses this to
    rank candidates for a query that is not yet in the lake.
    """
    import pyarrow as pa
    from splink import DuckDBAPI

    from nominal.link.standardise import INPUT_COLUMNS, standardise

    chosen = model or load(home)
    con = duckdb.connect()
    for name, records in (("score_left", left), ("score_right", right)):
        columns = ["record_key", *[c for c in INPUT_COLUMNS if any(c in r for r in records)]]
        data = {c: [None if r.get(c) is None else str(r.get(c)) for r in records] for c in columns}
        con.register(f"{name}_raw", pa.table(data))
        standardise(con, f"{name}_raw", f"{name}_std", present=set(columns))
    db_api = DuckDBAPI(con)
    linker = linker_for(db_api, "score_left_std", chosen)
    left_sdf = db_api.register("score_left_std")
    right_sdf = db_api.register("score_right_std")
    scored = linker.inference.score_pairs(left_sdf, right_sdf)
    out = scored.as_pandas_dataframe()
    return [
        {
            "record_key_l": row["unique_id_l"],
            "record_key_r": row["unique_id_r"],
            "match_weight": float(row["match_weight"]),
            "match_probability": float(row["match_probability"]),
        }
        for row in out.to_dict("records")
    ]
