"""A local Spark session for ``nominal link --engine spark``.

Splink's Spark backend needs its similarity functions (Jaro-Winkler, Damerau-
Levenshtein) from the jar it ships; the session loads that jar from the installed
package, so nothing is downloaded at run time. ``NOMINAL_SPARK_MASTER`` chooses the
cluster (default ``local[2]``: the hub's own machine).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

_SESSION: Any = None


def spark_session() -> Any:
    """The process's Spark session (created once; local mode unless configured)."""
    global _SESSION
    if _SESSION is not None:
        return _SESSION
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    master = os.environ.get("NOMINAL_SPARK_MASTER", "local[2]")
    _SESSION = (
        SparkSession.builder.master(master)
        .appName("nominal-link")
        .config("spark.jars", similarity_jar_location())
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.default.parallelism", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", os.environ.get("NOMINAL_SPARK_DRIVER_MEMORY", "2g"))
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    _SESSION.sparkContext.setLogLevel("ERROR")
    _SESSION.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="nominal-spark-"))
    return _SESSION
