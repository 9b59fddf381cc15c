"""Where the hub keeps its things, and the secrets it generates for itself.

The hub's home is one folder (``NOMINAL_HOME``, default ``./nominal-data``):

    home/
      lake/        the Parquet lake (bronze, silver, gold; snapshots)
      inbox/       drop folder for partner deliveries
      control.db   the control plane (SQLite by default)
      keys/        pseudonymisation key and session secret, kept outside the lake
      models/      trained linkage and risk models
      reports/     data-quality reports, model cards, charts

Secrets are generated on first use with ``secrets`` and never committed: a copy
of the lake alone does not let anyone reverse the pseudonyms.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "NOMINAL_HOME"
DATABASE_URL_ENV = "NOMINAL_DATABASE_URL"
DEFAULT_HOME = "nominal-data"


@dataclass(frozen=True)
class Home:
    """The folders and files of one hub installation."""

    root: Path

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def control_db_path(self) -> Path:
        return self.root / "control.db"

    @property
    def database_url(self) -> str:
        """The control plane's SQLAlchemy URL: PostgreSQL if configured, else SQLite."""
        return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{self.control_db_path}"

    def ensure(self) -> Home:
        for folder in (self.root, self.lake, self.inbox, self.models, self.reports):
            folder.mkdir(parents=True, exist_ok=True)
        self.keys.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self

    def secret(self, name: str, nbytes: int = 32) -> bytes:
        """Return the named secret, generating it on first use (file mode 0600)."""
        self.keys.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.keys / f"{name}.key"
        if not path.exists():
            value = secrets.token_hex(nbytes)
            # O_EXCL: if two processes race, exactly one writes the key.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(value)
        return bytes.fromhex(path.read_text().strip())

    @property
    def pseudonym_key(self) -> bytes:
        return self.secret("pseudonym")

    @property
    def session_secret(self) -> bytes:
        return self.secret("session")


def home(path: str | os.PathLike[str] | None = None) -> Home:
    """The hub's home: the given path, else ``$NOMINAL_HOME``, else ``./nominal-data``."""
    chosen = path if path is not None else os.environ.get(HOME_ENV, DEFAULT_HOME)
    return Home(Path(chosen).resolve())
