"""The Spark session ``nominal link --engine spark`` uses (see :mod:`nominal.engines.spark`).

Splink's Spark backend needs its similarity functions (Jaro-Winkler, Damerau-
Levenshtein) from the jar it ships; the shared session loads that jar from the
installed package. ``NOMINAL_SPARK_MASTER`` chooses the cluster (default ``local[2]``).
"""

from __future__ import annotations

from typing import Any


def spark_session() -> Any:
    """The process's Spark session (created once; local mode unless configured)."""
    from nominal.engines.spark import session

    return session()
