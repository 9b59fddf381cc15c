"""Spark sessions over a lake snapshot, and Spark output written back into the lake.

The Spark engine reads and writes the same lake layout as DuckDB: each table
``layer.name`` of a snapshot becomes a temporary view ``layer_name`` over exactly the
data files the snapshot lists, and a Spark result is written as Parquet part files
that become the table's data files in the next snapshot (the manifest and the
atomic ``CURRENT`` pointer are written by the driver as before).

``NOMINAL_SPARK_MASTER`` chooses the cluster (default ``local[2]``: the hub's own
machine), ``NOMINAL_SPARK_DRIVER_MEMORY`` the driver's memory (default ``2g``) and
``NOMINAL_SPARK_SHUFFLE_PARTITIONS`` the shuffle partitions (default 8, sized for
local mode) and ``NOMINAL_SPARK_LOCAL_DIR`` the folder under which the session keeps
its scratch (default the system temporary folder): in local mode Spark's shuffle and
spill files (``spark.local.dir``), and the checkpoints Splink writes to break lineage (as large as
the scored pairs). The scratch is removed when the process exits. Splink's similarity
functions are loaded from the jar the installed package ships, so nothing is
downloaded at run time.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nominal.engines.lake import Snapshot, SnapshotWriter

_SESSION: Any = None
_SCRATCH: Path | None = None


def session() -> Any:
    """The process's Spark session (created once; local mode unless configured)."""
    global _SESSION
    if _SESSION is not None:
        return _SESSION
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    master = os.environ.get("NOMINAL_SPARK_MASTER", "local[2]")
    if master.startswith("local"):
        # Python workers (model scoring) run this interpreter, with its packages; on a
        # cluster PYSPARK_PYTHON names the shipped environment (docs/deploying-spark.md)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    partitions = os.environ.get("NOMINAL_SPARK_SHUFFLE_PARTITIONS", "8")
    scratch = scratch_dir()
    builder = SparkSession.builder
    if master.startswith("local"):
        # the one JVM is driver and executor: its shuffle and spill files go to the
        # scratch; on a cluster spark.local.dir is the cluster's (YARN's local dirs)
        builder = builder.config("spark.local.dir", str(scratch / "local"))
    _SESSION = (
        builder.master(master)
        .appName("nominal")
        .config("spark.jars", similarity_jar_location())
        .config("spark.sql.shuffle.partitions", partitions)
        .config("spark.default.parallelism", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", os.environ.get("NOMINAL_SPARK_DRIVER_MEMORY", "2g"))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # a busy driver machine starves the heartbeat thread: at the defaults (10 s,
        # 120 s) a local executor gave up after 60 missed beats at load average 45
        .config("spark.executor.heartbeatInterval", "60s")
        .config("spark.network.timeout", "600s")
        .getOrCreate()
    )
    _SESSION.sparkContext.setLogLevel("ERROR")
    # Splink writes every intermediate table here (break_lineage_method "parquet");
    # a temporary folder nobody removed was left in /tmp after every run
    _SESSION.sparkContext.setCheckpointDir(str(scratch / "checkpoints"))
    return _SESSION


def scratch_dir() -> Path:
    """The session's scratch folder (created once; removed when the process exits)."""
    global _SCRATCH
    if _SCRATCH is None:
        parent = os.environ.get("NOMINAL_SPARK_LOCAL_DIR") or None
        if parent:
            Path(parent).mkdir(parents=True, exist_ok=True)
        _SCRATCH = Path(tempfile.mkdtemp(prefix="nominal-spark-", dir=parent))
        (_SCRATCH / "local").mkdir()
        atexit.register(_clean_up)
    return _SCRATCH


def _clean_up() -> None:
    """Stop the session (Spark then drops its shuffle files) and remove the scratch."""
    global _SESSION
    if _SESSION is not None:
        with contextlib.suppress(Exception):  # the JVM may be gone at interpreter exit
            _SESSION.stop()
        _SESSION = None
    if _SCRATCH is not None:
        shutil.rmtree(_SCRATCH, ignore_errors=True)


def view_name(table: str) -> str:
    """The temporary view of lake table ``layer.name`` (``layer_name``)."""
    return table.replace(".", "_")


def attach_snapshot(spark: Any, snapshot: Snapshot, tables: Iterable[str]) -> list[str]:
    """Create (or replace) a temporary view over each chosen table's data files."""
    made: list[str] = []
    for table in tables:
        files = snapshot.files(table)
        if not files:
            continue
        if snapshot.deletes(table):
            # rows deleted by position: DuckDB writes the live rows to one scratch file
            files = [_live_copy(snapshot, table)]
        frame = spark.read.option("mergeSchema", "true").parquet(*[str(f) for f in files])
        frame.createOrReplaceTempView(view_name(table))
        made.append(table)
    return made


def _live_copy(snapshot: Snapshot, table: str) -> Path:
    from nominal.engines import duck

    folder = Path(tempfile.mkdtemp(prefix="nominal-spark-live-"))
    path = folder / f"{view_name(table)}.parquet"
    con = duck.connect()
    try:
        con.execute(
            f"COPY ({duck.live_rows_sql(snapshot, table)}) TO "
            f"{duck.sql_literal(str(path))} (FORMAT parquet)"
        )
    finally:
        con.close()
    return path


def write_table(tx: SnapshotWriter, table: str, frame: Any) -> list[Path]:
    """Write a Spark DataFrame as data files of ``table`` in the snapshot being built.

    Spark writes its part files into a scratch folder beside the table's files; each
    is then moved to a path the transaction hands out, so the files are registered
    (and removed again if the transaction fails) like any other data file.
    """
    layer, _, name = table.partition(".")
    scratch = tx.lake.root / "data" / layer / name / f"_spark-{uuid.uuid4().hex}"
    try:
        frame.write.mode("overwrite").option("compression", "zstd").parquet(str(scratch))
        paths: list[Path] = []
        for part in sorted(scratch.glob("part-*.parquet")):
            target = tx.new_file(table)
            os.replace(part, target)
            paths.append(target)
        if not paths:  # an empty result still needs one (empty) file with its schema
            target = tx.new_file(table)
            import pyarrow.parquet as pq

            pq.write_table(_empty_arrow(frame), target, compression="zstd")
            paths.append(target)
        return paths
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _empty_arrow(frame: Any) -> Any:
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = to_arrow_schema(frame.schema)
    return schema.empty_table()
