"""Scoring a query against candidate nominals with the trained linkage model.

Search must never disagree with linking: a query that looks like a record linking
would join to a nominal must score as linking would score that pair. So the score is
not a search-specific formula but the linkage model itself (Splink, trained by
``nominal link`` and saved under ``$NOMINAL_HOME/models/linkage/``). The SQL that Splink
generates for scoring pairs (comparison levels, Bayes factors with frozen term
frequencies, match weight and probability) is generated once when the scorer is
built and then run for each query on a one-row query table crossed with the
candidate rows, in a DuckDB connection held in memory. Generating it once keeps a
search within milliseconds; it is the same SQL ``Linker.inference.score_pairs`` runs.

Reasons come from the same place: each comparison's level (its Splink label) and its
match weight, so "Date of birth: exact match (+9.1)" is what the model actually
counted, not a story told after the fact.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from splink import DuckDBAPI, Linker
from splink.internals.pipeline import CTEPipeline
from splink.internals.predict import predict_from_comparison_vectors_sqls_using_settings

from nominal.config import Home
from nominal.link import model as link_model
from nominal.link import settings as link_settings
from nominal.search import levels as fast_levels

QUERY_TABLE = "search_query"
# The words a practitioner reads for each comparison of the model.
DESCRIPTIONS: dict[str, str] = {
    "given_name": "Given name",
    "family_name": "Family name",
    "date_of_birth": "Date of birth",
    "sex": "Sex",
    "address": "Address",
    "nhs_number": "NHS number",
    "ni_number": "NI number",
    "pupil_number": "Pupil number",
    "police_id": "Police id",
}
CANDIDATE_TABLE = "search_candidates"
_EPOCH = date(1970, 1, 1)


def load_linkage_model(home: Home) -> link_model.LinkModel:
    """The linkage model in use (the one ``nominal link`` trained and links with)."""
    return link_model.load(home)


@dataclass(frozen=True)
class Level:
    """One comparison level of the trained model, as a practitioner would read it."""

    comparison: str
    description: str
    value: int
    label: str


@dataclass(frozen=True)
class Reason:
    """Why a candidate scored as it did on one comparison."""

    comparison: str
    text: str
    weight: float

    def to_json(self) -> dict[str, Any]:
        return {"comparison": self.comparison, "text": self.text, "weight": round(self.weight, 2)}


def _friendly(label: str) -> str:
    """Splink's generated level labels in plain words ("Exact match on dob" -> "exact match")."""
    text = label.strip()
    if text.lower().startswith("exact match"):
        return "exact match"
    if text.lower().startswith("all other"):
        return "different"
    if text.lower().startswith("jaro-winkler") or text.lower().startswith("jaro_winkler"):
        m = re.search(r">=\s*([0-9.]+)", text)
        return "similar" if m and float(m.group(1)) >= 0.9 else "loosely similar"
    return text[0].lower() + text[1:] if text[:2] != text[:2].upper() else text


class LinkageScorer:
    """Scores a one-record query against candidate rows with the trained Splink model.

    Both tables carry the standardised columns of :mod:`nominal.link.standardise` plus
    ``tf_<column>`` for each term-frequency column (looked up in the model's frozen
    term frequencies). The comparison levels are Splink's own SQL (the ``CASE``
    statements it generates from the settings), run in DuckDB; the weights of the
    levels, the term-frequency adjustments and the prior are read from Splink's
    settings object of the trained model and summed as Splink sums them.
    :meth:`score_with_splink` runs Splink's complete prediction SQL instead; the tests
    hold the two to the same numbers.
    """

    def __init__(self, model: link_model.LinkModel) -> None:
        self.model = model
        # Each search is a small query: one thread each, so concurrent searches share cores.
        self._con = duckdb.connect(config={"threads": 1})
        self._local = threading.local()
        self._template = self._empty_template()
        self._con.register("score_template", self._template)
        db_api = DuckDBAPI(self._con)
        linker = Linker(
            db_api.register("score_template"), dict(model.settings), log_level=logging.WARNING
        )
        settings = linker._settings_obj
        settings._retain_matching_columns = True
        settings._retain_intermediate_calculation_columns = True
        blocking = ", ".join(settings._columns_to_select_for_blocking)
        pairs = f"SELECT {blocking} FROM {QUERY_TABLE} AS l CROSS JOIN {CANDIDATE_TABLE} AS r"
        gammas = ", ".join(c._case_statement for c in settings.comparisons)
        # The view is bound again on every query, to the query and candidate tables
        # each thread's cursor registers under these names.
        self._con.register(QUERY_TABLE, self._template)
        self._con.register(CANDIDATE_TABLE, self._template)
        self._con.execute(
            f"CREATE VIEW search_gammas AS SELECT unique_id_r, {gammas} FROM ({pairs})"
        )
        self._con.unregister(QUERY_TABLE)
        self._con.unregister(CANDIDATE_TABLE)
        from nominal.link.standardise import INPUT_COLUMNS, register_nicknames, standardise_sql

        register_nicknames(self._con)
        self._con.execute("CREATE TABLE search_nicknames AS SELECT * FROM link_nicknames")
        raw = pa.table({"record_key": pa.array([], pa.string()),
                        **{c: pa.array([], pa.string()) for c in INPUT_COLUMNS}})  # fmt: skip
        self._con.register("search_query_raw", raw)
        self._con.execute(
            "CREATE VIEW search_query_std AS "
            + standardise_sql("search_query_raw").replace("link_nicknames", "search_nicknames")
        )
        self._con.unregister("search_query_raw")
        vectors = ", ".join(settings._columns_to_select_for_comparison_vector_values)
        pipeline = CTEPipeline()
        pipeline.enqueue_sql(f"SELECT *, 0 AS match_key FROM ({pairs})", "__splink__blocked")
        pipeline.enqueue_sql(
            f"SELECT {vectors} FROM __splink__blocked", "__splink__df_comparison_vectors"
        )
        pipeline.enqueue_list_of_sqls(predict_from_comparison_vectors_sqls_using_settings(settings))
        self.splink_sql = pipeline.generate_cte_pipeline_sql()

        probability = settings.core_model_settings.probability_two_random_records_match
        self.prior_weight = math.log2(probability / (1 - probability))
        self.levels: dict[str, dict[int, Level]] = {}
        self._weights: dict[str, dict[int, float]] = {}
        # (comparison, gamma) -> (tf column, adjustment weight, log2 u of exact match, min u)
        self._tf_levels: dict[tuple[str, int], tuple[str, float, float, float]] = {}
        for comparison in settings.comparisons:
            name = comparison.output_column_name
            levels = comparison.comparison_levels
            self.levels[name] = {}
            self._weights[name] = {}
            for level in levels:
                gamma = level.comparison_vector_value
                self.levels[name][gamma] = Level(
                    name,
                    DESCRIPTIONS.get(name, name.replace("_", " ").capitalize()),
                    gamma,
                    _friendly(level.label_for_charts),
                )
                self._weights[name][gamma] = 0.0 if level.is_null_level else level._match_weight
                if (
                    gamma != -1
                    and level._has_tf_adjustments
                    and level._tf_adjustment_weight != 0
                    and not level._is_else_level
                ):
                    self._tf_levels[(name, gamma)] = (
                        level._tf_adjustment_input_column.input_name,
                        float(level._tf_adjustment_weight),
                        math.log2(level._u_probability_corresponding_to_exact_match(levels)),
                        float(level._tf_minimum_u_value),
                    )
        self.comparisons = list(self.levels)
        self._date_columns = [f.name for f in self._template.schema if pa.types.is_date(f.type)]
        self._compile_levels(settings.comparisons)
        self._tf = {
            column: dict(
                zip(
                    model.tf_table(column).column(column).to_pylist(),
                    model.tf_table(column).column(f"tf_{column}").to_pylist(),
                    strict=True,
                )
            )
            for column in link_settings.TF_COLUMNS
        }

    def _compile_levels(self, comparisons: list[Any]) -> None:
        """Compile every level's SQL to array code (:mod:`nominal.search.levels`).

        If any condition is not understood, ``self.fast`` is False and :meth:`score` runs
        Splink's SQL in DuckDB instead: slower, never different.
        """
        compiled: list[tuple[str, list[tuple[int, fast_levels.Condition | None]]]] = []
        sqls: list[str] = []
        try:
            for comparison in comparisons:
                steps: list[tuple[int, fast_levels.Condition | None]] = []
                for level in comparison.comparison_levels:
                    if level._is_else_level:
                        steps.append((level.comparison_vector_value, None))
                        continue
                    sqls.append(level.sql_condition)
                    steps.append(
                        (level.comparison_vector_value, fast_levels.compile_condition(
                            level.sql_condition))
                    )  # fmt: skip
                compiled.append((comparison.output_column_name, steps))
            self._fast_columns = sorted(
                fast_levels.columns_used(sqls) & set(self._template.column_names)
            )
            self._levels_compiled = compiled
            # Evaluate once on the empty template: a column the code cannot find fails now.
            empty = self.columns(self._template)
            self._gammas(self.query_values(self._template.schema.empty_table()), empty)
            self.fast = True
        except fast_levels.Unsupported as exc:
            logging.getLogger(__name__).warning(
                "search scores with Splink's SQL (slower): level not compiled: %s", exc
            )
            self.fast = False
        # Weights as arrays: row per comparison, indexed by gamma + 1 (gamma -1 is null).
        self._weight_table = {
            name: np.array(
                [self._weights[name].get(g, 0.0) for g in range(-1, max(self._weights[name]) + 1)]
            )
            for name in self.comparisons
        }

    def columns(self, table: pa.Table) -> fast_levels.Columns:
        """The candidate columns the compiled levels read, plus ``tf_*``, as arrays.

        Strings and lists become object arrays holding one Python object per distinct
        value (dictionary-encoded first), so a million rows cost a pointer each; lists
        become frozensets (the levels only intersect them).
        """
        names = [*self._fast_columns, *(f"tf_{c}" for c in link_settings.TF_COLUMNS)]
        arrays: dict[str, np.ndarray] = {}
        for name in names:
            column = table.column(name)
            kind = column.type
            if pa.types.is_date(kind):
                days = pc.cast(pc.cast(column, pa.int32()), pa.int64())
                arrays[name] = np.asarray(
                    pc.fill_null(days, fast_levels.NULL_DAY).to_numpy(), dtype=np.int64
                )
            elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
                arrays[name] = np.asarray(
                    pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
                )
            else:
                arrays[name] = _objects(column)
        return fast_levels.Columns(arrays, table.num_rows)

    def standardise_values(self, record: dict[str, Any]) -> dict[str, Any]:
        """:meth:`standardise` as plain Python values (no Arrow table), with ``tf_*``."""
        from nominal.search.standard import standardise_record

        row = standardise_record(record)
        for column in link_settings.TF_COLUMNS:
            row[f"tf_{column}"] = self.term_frequency(column, row.get(column))
        return row

    def values_for_levels(self, row: dict[str, Any]) -> dict[str, Any]:
        """A standardised query row as the compiled levels read it (dates as day numbers)."""
        out: dict[str, Any] = dict.fromkeys(self._template.column_names)
        out.update(row)
        for name in self._date_columns:
            if out[name] is not None:
                out[name] = (out[name] - _EPOCH).days
        return out

    def query_values(self, query: pa.Table) -> dict[str, Any]:
        """The one query row as Python values, dates as days since 1970-01-01."""
        if query.num_rows == 0:
            return {name: None for name in query.column_names}
        row = query.slice(0, 1).to_pylist()[0]
        for name in query.column_names:
            if pa.types.is_date(query.schema.field(name).type) and row[name] is not None:
                row[name] = (row[name] - _EPOCH).days
        return row

    def _gammas(self, query: dict[str, Any], columns: fast_levels.Columns) -> np.ndarray:
        """Comparison vectors: one row per comparison, one column per candidate."""
        out = np.zeros((len(self._levels_compiled), columns.n), dtype=np.int64)
        for i, (_name, steps) in enumerate(self._levels_compiled):
            decided = np.zeros(columns.n, dtype=bool)
            row = out[i]
            for gamma, condition in steps:
                if condition is None:  # ELSE
                    row[~decided] = gamma
                    break
                hit = condition(query, columns) & ~decided
                row[hit] = gamma
                decided |= hit
        return out

    def score_arrays(
        self, query: dict[str, Any], columns: fast_levels.Columns
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(gammas, weights per comparison, total match weight) for every candidate.

        Splink's sum: the prior, plus per comparison the level's match weight, plus for
        levels with term-frequency adjustments ``weight * (log2 u_exact - log2 max(tf))``
        using the more common of the two values (the query's or the candidate's).
        """
        gammas = self._gammas(query, columns)
        weights = np.zeros(gammas.shape, dtype=np.float64)
        for i, name in enumerate(self.comparisons):
            weights[i] = self._weight_table[name][gammas[i] + 1]
        for (name, gamma), (column, adj, log2_u, min_u) in self._tf_levels.items():
            i = self.comparisons.index(name)
            mask = gammas[i] == gamma
            if not mask.any():
                continue
            left = query.get(f"tf_{column}")
            right = columns[f"tf_{column}"][mask]
            # the more common of the two; fmax ignores a missing (NaN) candidate value
            value = right if left is None else np.fmax(right, left)
            usable = ~np.isnan(value)
            adjust = np.zeros(len(value))
            adjust[usable] = adj * (log2_u - np.log2(np.maximum(value[usable], min_u)))
            weights[i, mask] += adjust
        total = self.prior_weight + weights.sum(axis=0)
        return gammas, weights, total

    def reasons(self, gammas: np.ndarray, weights: np.ndarray) -> list[Reason]:
        """The evidence for one candidate (its column of ``gammas`` and ``weights``)."""
        out = []
        for i, name in enumerate(self.comparisons):
            gamma = int(gammas[i])
            if gamma != -1:
                level = self.levels[name][gamma]
                out.append(Reason(name, f"{level.description}: {level.label}", float(weights[i])))
        out.sort(key=lambda r: -r.weight)
        return out

    @staticmethod
    def _empty_template() -> pa.Table:
        """An empty table with the standardised and term-frequency columns."""
        from nominal.link.standardise import register_nicknames, standardise_sql

        con = duckdb.connect()
        con.execute("CREATE TABLE raw (record_key VARCHAR)")
        register_nicknames(con)
        table = con.sql(standardise_sql("raw", present={"record_key"})).to_arrow_table()
        for column in link_settings.TF_COLUMNS:
            table = table.append_column(f"tf_{column}", pa.array([], pa.float64()))
        return table

    def standardise(self, record: dict[str, Any]) -> pa.Table:
        """One canonical identity record in the model's standard form, with ``tf_*``.

        Uses :func:`nominal.search.standard.standardise_record`, the linkage
        standardisation for one record (held to the SQL by the tests).
        """
        from nominal.search.standard import standardise_record

        row = standardise_record(record)
        schema = self._template.schema
        base = pa.Table.from_pylist([row], schema=pa.schema([schema.field(n) for n in row]))
        return self.with_term_frequencies(base)

    @property
    def template(self) -> pa.Table:
        return self._template

    def term_frequency(self, column: str, value: Any) -> float | None:
        """The frozen relative frequency of ``value`` in ``column`` (None if unseen)."""
        if value is None:
            return None
        return self._tf[column].get(str(value))

    def with_term_frequencies(self, table: pa.Table) -> pa.Table:
        """``table`` with a ``tf_<column>`` column per term-frequency column."""
        for column in link_settings.TF_COLUMNS:
            name = f"tf_{column}"
            lookup = self._tf[column]
            values = [
                None if v is None else lookup.get(str(v)) for v in table.column(column).to_pylist()
            ]
            array = pa.array(values, pa.float64())
            if name in table.column_names:
                table = table.set_column(table.column_names.index(name), name, array)
            else:
                table = table.append_column(name, array)
        return table

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._con.cursor()
            self._local.cursor = cursor
        return cursor

    def _run(self, sql: str, query: pa.Table, candidates: pa.Table) -> list[dict[str, Any]]:
        cursor = self._cursor()
        cursor.register(QUERY_TABLE, query)
        cursor.register(CANDIDATE_TABLE, candidates)
        try:
            return cursor.sql(sql).to_arrow_table().to_pylist()
        finally:
            cursor.unregister(QUERY_TABLE)
            cursor.unregister(CANDIDATE_TABLE)

    def score(self, query: pa.Table, candidates: pa.Table) -> list[dict[str, Any]]:
        """Score the one-row ``query`` against every row of ``candidates``.

        Returns one dict per candidate: ``unique_id``, ``match_weight``,
        ``match_probability``, ``gammas`` and ``reasons`` (strongest evidence first).
        """
        if candidates.num_rows == 0:
            return []
        if self.fast:
            gammas, weights, total = self.score_arrays(
                self.query_values(query), self.columns(candidates)
            )
            ids = candidates.column("unique_id").to_pylist()
            return [
                {
                    "unique_id": uid,
                    "match_weight": float(total[j]),
                    "match_probability": _probability(float(total[j])),
                    "gammas": {n: int(gammas[i, j]) for i, n in enumerate(self.comparisons)},
                    "reasons": self.reasons(gammas[:, j], weights[:, j]),
                }
                for j, uid in enumerate(ids)
            ]
        return self.score_sql(query, candidates)

    def score_sql(self, query: pa.Table, candidates: pa.Table) -> list[dict[str, Any]]:
        """:meth:`score` with the comparison levels run as Splink's SQL in DuckDB."""
        if candidates.num_rows == 0:
            return []
        rows = self._run("SELECT * FROM search_gammas", query, candidates)
        query_tf = {c: query.column(f"tf_{c}")[0].as_py() for c in link_settings.TF_COLUMNS}
        tf_columns = {c: candidates.column(f"tf_{c}").to_pylist() for c in link_settings.TF_COLUMNS}
        index = {uid: i for i, uid in enumerate(candidates.column("unique_id").to_pylist())}
        out = []
        for row in rows:
            i = index[row["unique_id_r"]]
            total = self.prior_weight
            reasons = []
            gammas = {}
            for name in self.comparisons:
                gamma = int(row[f"gamma_{name}"])
                gammas[name] = gamma
                weight = self._weights[name][gamma]
                tf = self._tf_levels.get((name, gamma))
                if tf is not None:
                    column, adj_weight, log2_u, min_u = tf
                    left, right = query_tf[column], tf_columns[column][i]
                    if left is not None or right is not None:
                        a = left if left is not None else right
                        b = right if right is not None else left
                        weight += adj_weight * (log2_u - math.log2(max(a, b, min_u)))
                total += weight
                if gamma != -1:
                    level = self.levels[name][gamma]
                    reasons.append(Reason(name, f"{level.description}: {level.label}", weight))
            reasons.sort(key=lambda r: -r.weight)
            out.append(
                {
                    "unique_id": row["unique_id_r"],
                    "match_weight": total,
                    "match_probability": _probability(total),
                    "gammas": gammas,
                    "reasons": reasons,
                }
            )
        return out

    def score_with_splink(self, query: pa.Table, candidates: pa.Table) -> list[dict[str, Any]]:
        """The same pairs scored by Splink's complete prediction SQL (slower; for checks)."""
        if candidates.num_rows == 0:
            return []
        return self._run(self.splink_sql, query, candidates)


def _objects(column: pa.ChunkedArray) -> np.ndarray:
    """An object array of the column's values, one Python object per distinct value."""
    n = len(column)
    out = np.empty(n, dtype=object)
    if n == 0:
        return out
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        # Lists: distinct lists via their joined text (elements never hold the separator).
        joined = pc.binary_join(column, "\x1f")
        if pc.sum(pc.list_value_length(column)).as_py() and pc.list_flatten(column).null_count:
            raise ValueError("list columns with NULL elements are not supported")
        encoded = pc.dictionary_encode(joined).combine_chunks()
        distinct = [
            frozenset(v.split("\x1f")) if v else frozenset() for v in encoded.dictionary.to_pylist()
        ]
    else:
        encoded = pc.dictionary_encode(column).combine_chunks()
        distinct = encoded.dictionary.to_pylist()
    values = np.empty(len(distinct) + 1, dtype=object)
    for i, value in enumerate(distinct):
        values[i] = value
    values[len(distinct)] = None
    indices = pc.fill_null(encoded.indices, len(distinct)).to_numpy(zero_copy_only=False)
    out[:] = values[indices]
    return out


def _probability(weight: float) -> float:
    """Match probability from a match weight, as Splink computes it."""
    if weight > 60:
        return 1.0
    odds = 2.0**weight
    return odds / (1 + odds)
