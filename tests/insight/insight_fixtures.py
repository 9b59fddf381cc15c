"""The trained hub the insight tests share (a module of its own: ``conftest`` is ambiguous)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nominal.config import Home
from nominal.insight import risk


@dataclass
class Trained:
    home: Home
    town: Path
    results: dict[str, risk.RunResult]
    scored: dict[str, Any]
