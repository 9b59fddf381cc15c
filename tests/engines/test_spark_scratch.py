"""The Spark session keeps its scratch under ``NOMINAL_SPARK_LOCAL_DIR`` and removes it.

Splink checkpoints every intermediate table of a link (as large as the scored pairs)
to the session's checkpoint folder, and Spark spills shuffles to ``spark.local.dir``.
Both used to land in the system temporary folder and the checkpoints were never
removed. The session runs in a child process here so that its exit (and the clean-up
at exit) is part of what is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.timeout(900)]

CHILD = """
import json
from nominal.engines.spark import session

spark = session()
frame = spark.range(1000).repartition(3)
frame.checkpoint().count()  # writes checkpoint files, as Splink does
frame.groupBy((frame.id % 7).alias("k")).count().collect()  # a shuffle
conf = spark.sparkContext.getConf()
print(json.dumps({
    "local_dir": conf.get("spark.local.dir"),
    "checkpoint_dir": spark.sparkContext._jsc.sc().getCheckpointDir().get(),
}))
"""


def test_scratch_under_configured_folder_and_removed_at_exit(tmp_path: Path) -> None:
    parent = tmp_path / "scratch"
    env = {**os.environ, "NOMINAL_SPARK_LOCAL_DIR": str(parent)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=800
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    local_dir = Path(seen["local_dir"])
    checkpoint_dir = Path(seen["checkpoint_dir"].removeprefix("file:"))
    assert local_dir.is_relative_to(parent)
    assert checkpoint_dir.is_relative_to(parent)
    assert local_dir.parent == checkpoint_dir.parent.parent  # one scratch folder per session
    # gone after the process ended: checkpoints and shuffle files alike
    assert parent.is_dir() and list(parent.iterdir()) == []
