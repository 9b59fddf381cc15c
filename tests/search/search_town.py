"""The linked synthetic town the search tests share (see ``conftest.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nominal.config import Home
from nominal.db import ControlPlane
from nominal.govern.audit import AuditLog
from nominal.search.index import SearchIndex


@dataclass
class Town:
    home: Home
    synth: Path
    index: SearchIndex
    control: ControlPlane
    audit: AuditLog
    users: dict[str, str]
