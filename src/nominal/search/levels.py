"""Splink's comparison levels evaluated on arrays: one query against many candidates.

The linkage model's comparison levels are SQL conditions that Splink generates from
the settings (``"dob_l" = "dob_r"``, ``jaro_winkler_similarity("given_std_l",
"given_std_r") >= 0.92``, ...). Running that SQL in DuckDB for every search costs more
in planning than in evaluating 200 pairs, so this module compiles each condition, once,
into a function over NumPy arrays with the same meaning:

* the condition text is parsed (``AND``/``OR`` with parentheses, over a small set of
  atoms: equality of two columns, ``IS NULL``, ``length``, ``list_intersect``,
  Jaro-Winkler, Damerau-Levenshtein, date and year differences, ``substr``);
* SQL's NULL semantics are kept: an atom with a NULL operand is NULL, and a level's
  condition counts only when TRUE. The conditions have no ``NOT``, so reading NULL as
  FALSE inside ``AND``/``OR`` gives the same result as three-valued logic;
* the string similarities are RapidFuzz's, the library DuckDB's own
  ``jaro_winkler_similarity`` and ``damerau_levenshtein`` are built from.

A condition this parser does not know raises :class:`Unsupported`; the scorer then keeps
running Splink's SQL in DuckDB, so a new kind of level in the linkage settings makes
search slower, never different. ``test_search_scores_equal_splink_prediction`` holds
the compiled levels to Splink's complete prediction SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler
from rapidfuzz.process import cdist

# Dates are held as days since 1970-01-01; this marks "no date".
NULL_DAY = np.iinfo(np.int64).min


class Unsupported(ValueError):
    """A level condition this module cannot evaluate (the caller falls back to SQL)."""


class Columns:
    """The candidate side: one NumPy array per standardised column, ``n`` rows.

    Strings and lists are object arrays (``None`` for NULL; lists as Python lists),
    dates int64 days (``NULL_DAY`` for NULL), integers float64 (NaN for NULL).
    """

    def __init__(self, arrays: dict[str, np.ndarray], n: int) -> None:
        self.arrays = arrays
        self.n = n
        self._nulls: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.arrays[name]
        except KeyError:
            raise Unsupported(f"no column {name!r} among the candidates") from None

    def nulls(self, name: str) -> np.ndarray:
        """Which rows are NULL in ``name`` (computed once per column)."""
        mask = self._nulls.get(name)
        if mask is None:
            mask = self._nulls[name] = _null_mask(self[name])
        return mask

    def take(self, rows: np.ndarray) -> Columns:
        """The given rows of every column."""
        return Columns({k: v[rows] for k, v in self.arrays.items()}, len(rows))


Query = dict[str, Any]
Condition = Callable[[Query, Columns], np.ndarray]

_IDENT = r'"?(\w+)_([lr])"?'


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _null_mask(array: np.ndarray) -> np.ndarray:
    if array.dtype == object:
        return np.asarray(array == None, dtype=bool)  # noqa: E711 - elementwise on objects
    if array.dtype.kind == "f":
        return np.isnan(array)
    return array == NULL_DAY


def _side(q: Query, c: Columns, column: str, side: str) -> tuple[bool, Any]:
    """(is the query side, value or array)."""
    if side == "l":
        if column not in q:
            raise Unsupported(f"no column {column!r} in the query")
        return True, q[column]
    return False, c[column]


Pairwise = Callable[[Any, np.ndarray, np.ndarray], np.ndarray]


def _pairwise(
    q: Query, c: Columns, left: tuple[str, str], right: tuple[str, str], compare: Pairwise
) -> np.ndarray:
    """Compare the query value on one side with the candidates' column on the other.

    ``compare(value, array, nulls)`` gets a non-NULL query value and the column with its
    NULL mask; a NULL on either side makes the atom NULL, read as FALSE.
    """
    lq, lv = _side(q, c, *left)
    rq, rv = _side(q, c, *right)
    if lq == rq:
        raise Unsupported("both sides of a comparison from the same record")
    value, column = (lv, right[0]) if lq else (rv, left[0])
    if _is_null(value):
        return np.zeros(c.n, dtype=bool)
    nulls = c.nulls(column)
    return compare(value, c[column], nulls) & ~nulls


def _equal(value: Any, array: np.ndarray, nulls: np.ndarray) -> np.ndarray:
    return np.asarray(array == value, dtype=bool)


def _strings(array: np.ndarray, nulls: np.ndarray) -> list[str]:
    return np.where(nulls, "", array).tolist()


def _jaro_winkler(threshold: float) -> Pairwise:
    def run(value: Any, array: np.ndarray, nulls: np.ndarray) -> np.ndarray:
        scores = cdist([value], _strings(array, nulls), scorer=JaroWinkler.similarity,
                       dtype=np.float64, workers=1)[0]  # fmt: skip
        return np.asarray(scores >= threshold, dtype=bool)

    return run


def _damerau_levenshtein(most: int) -> Pairwise:
    def run(value: Any, array: np.ndarray, nulls: np.ndarray) -> np.ndarray:
        distances = cdist([value], _strings(array, nulls), scorer=DamerauLevenshtein.distance,
                          dtype=np.int64, workers=1)[0]  # fmt: skip
        return np.asarray(distances <= most, dtype=bool)

    return run


def _atom(text: str) -> Condition:
    """One comparison without AND/OR."""
    t = text.strip()
    if m := re.fullmatch(_IDENT + r" IS NULL", t):
        column, side = m[1], m[2]

        def is_null(q: Query, c: Columns) -> np.ndarray:
            is_q, value = _side(q, c, column, side)
            if is_q:
                return np.full(c.n, _is_null(value), dtype=bool)
            return c.nulls(column)

        return is_null
    if m := re.fullmatch(_IDENT + r" = " + _IDENT, t):
        left, right = (m[1], m[2]), (m[3], m[4])
        return lambda q, c: _pairwise(q, c, left, right, _equal)
    if m := re.fullmatch(r"length\(" + _IDENT + r"\) = (\d+)", t):
        column, side, size = m[1], m[2], int(m[3])

        def length(q: Query, c: Columns) -> np.ndarray:
            is_q, value = _side(q, c, column, side)
            if is_q:
                return np.full(c.n, value is not None and len(value) == size, dtype=bool)
            return np.fromiter(
                (v is not None and len(v) == size for v in value), dtype=bool, count=c.n
            )

        return length
    if m := re.fullmatch(
        r"array_length\(list_intersect\(" + _IDENT + r", " + _IDENT + r"\)\) >= (\d+)", t
    ):
        left, right, least = (m[1], m[2]), (m[3], m[4]), int(m[5])

        def shares(value: Any, array: np.ndarray, nulls: np.ndarray) -> np.ndarray:
            # list_intersect keeps distinct elements; NULL elements never match.
            mine = {v for v in value if v is not None}
            return np.fromiter(
                (v is not None and len(mine.intersection(v)) >= least for v in array),
                dtype=bool,
                count=len(array),
            )

        return lambda q, c: _pairwise(q, c, left, right, shares)
    if m := re.fullmatch(
        r"jaro_winkler_similarity\(" + _IDENT + r", " + _IDENT + r"\) >= ([0-9.]+)", t
    ):
        left, right, threshold = (m[1], m[2]), (m[3], m[4]), float(m[5])
        jw = _jaro_winkler(threshold)
        return lambda q, c: _pairwise(q, c, left, right, jw)
    if m := re.fullmatch(r"damerau_levenshtein\(" + _IDENT + r", " + _IDENT + r"\) <= (\d+)", t):
        left, right, most = (m[1], m[2]), (m[3], m[4]), int(m[5])
        dl = _damerau_levenshtein(most)
        return lambda q, c: _pairwise(q, c, left, right, dl)
    if m := re.fullmatch(r"ABS\(EPOCH\(" + _IDENT + r"\) - EPOCH\(" + _IDENT + r"\)\) <= (\d+)", t):
        left, right, seconds = (m[1], m[2]), (m[3], m[4]), int(m[5])

        def within(value: Any, array: np.ndarray, nulls: np.ndarray) -> np.ndarray:
            gap = np.abs(np.where(nulls, 0, array) - value)
            return np.asarray(gap * 86400 <= seconds, dtype=bool)

        return lambda q, c: _pairwise(q, c, left, right, within)
    if m := re.fullmatch(r"abs\(" + _IDENT + r" - " + _IDENT + r"\) = (\d+)", t):
        left, right, gap = (m[1], m[2]), (m[3], m[4]), int(m[5])

        def apart(value: Any, array: np.ndarray, nulls: np.ndarray) -> np.ndarray:
            with np.errstate(invalid="ignore"):
                return np.abs(array.astype(np.float64) - float(value)) == gap

        return lambda q, c: _pairwise(q, c, left, right, apart)
    if m := re.fullmatch(
        r"substr\(" + _IDENT + r", (\d+), (\d+)\) = substr\(" + _IDENT + r", (\d+), (\d+)\)", t
    ):
        if (m[3], m[4]) != (m[7], m[8]):
            raise Unsupported(t)
        left, right = (m[1], m[2]), (m[5], m[6])
        start, size = int(m[3]) - 1, int(m[4])

        def same_part(value: Any, array: np.ndarray, nulls: np.ndarray) -> np.ndarray:
            part = value[start : start + size]
            return np.fromiter(
                (v is not None and v[start : start + size] == part for v in array),
                dtype=bool,
                count=len(array),
            )

        return lambda q, c: _pairwise(q, c, left, right, same_part)
    raise Unsupported(t)


def _strip_parens(text: str) -> str:
    t = text.strip()
    while t.startswith("(") and t.endswith(")") and _closing(t, 0) == len(t) - 1:
        t = t[1:-1].strip()
    return t


def _closing(text: str, start: int) -> int:
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    raise Unsupported(f"unbalanced parentheses in {text!r}")


def _split(text: str, word: str) -> list[str]:
    """``text`` split on `` word `` outside parentheses and quotes."""
    parts, depth, quote, last = [], 0, False, 0
    token = f" {word} "
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        elif not quote and depth == 0 and text[i : i + len(token)].upper() == token:
            parts.append(text[last:i])
            last = i + len(token)
            i = last
            continue
        i += 1
    parts.append(text[last:])
    return parts


def compile_condition(sql: str) -> Condition:
    """A function (query values, candidate columns) -> bool array, for one level's SQL."""
    text = _strip_parens(" ".join(sql.split()))
    ors = _split(text, "OR")
    if len(ors) > 1:
        parts = [compile_condition(p) for p in ors]

        def any_of(q: Query, c: Columns) -> np.ndarray:
            out = parts[0](q, c)
            for part in parts[1:]:
                out = out | part(q, c)
            return out

        return any_of
    ands = _split(text, "AND")
    if len(ands) > 1:
        parts = [compile_condition(p) for p in ands]

        def all_of(q: Query, c: Columns) -> np.ndarray:
            out = parts[0](q, c)
            for part in parts[1:]:
                out = out & part(q, c)
            return out

        return all_of
    return _atom(text)


def columns_used(conditions: Sequence[str]) -> set[str]:
    """The standardised columns the conditions read."""
    used: set[str] = set()
    for sql in conditions:
        used.update(m[1] for m in re.finditer(r'"?(\w+)_[lr]"?\b', sql))
    return used
