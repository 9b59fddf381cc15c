"""The search index of a hub home, built once and kept while the lake does not change.

The web app and the command line share this: the index is built from the current
lake snapshot with the current linkage model, and rebuilt when either changes (a new
link run writes a new snapshot; a retrain writes a new model version).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from nominal.config import Home
from nominal.engines.lake import Lake, Snapshot
from nominal.link import model as link_model
from nominal.search.index import SearchIndex, build_index, index_dir, load_index, save_index
from nominal.search.scoring import LinkageScorer, load_linkage_model


def cached_index(
    home: Home, snapshot: Snapshot, scorer: LinkageScorer, version: str | None
) -> SearchIndex:
    """The index of ``snapshot`` under model ``version``: read from the home's cache, or
    built and saved there. A file lock makes concurrent processes (server workers, the
    command line) build it once; the others wait and read it."""
    import fcntl

    root = home.root / "cache" / "search"
    folder = index_dir(root, snapshot.id, version)
    index = load_index(folder, scorer)
    if index is not None:
        return index
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            index = load_index(folder, scorer)
            if index is None:
                index = build_index(snapshot, scorer)
                save_index(index, folder)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return index


class SearchUnavailable(RuntimeError):
    """No gold tables or no linkage model yet: the hub has not linked anything."""


@dataclass
class IndexHolder:
    """Holds the index of one home; :meth:`get` rebuilds it when the lake moved on."""

    home: Home
    _index: SearchIndex | None = None
    _model_version: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> SearchIndex:
        lake = Lake(self.home.lake)
        # Only the pointer is read on every search; the snapshot when it has moved.
        current = lake.pointer.read_text().strip() if lake.pointer.exists() else None
        version = link_model.current_version(self.home)
        index = self._index
        if index is not None and index.snapshot_id == current and version == self._model_version:
            return index
        with self._lock:
            index = self._index
            if index is None or index.snapshot_id != current or version != self._model_version:
                snapshot = lake.current()
                if snapshot is None or not snapshot.has("gold.nominals"):
                    raise SearchUnavailable("nothing to search yet: run `nominal link` first")
                try:
                    scorer = LinkageScorer(load_linkage_model(self.home))
                except link_model.ModelError as exc:
                    raise SearchUnavailable(str(exc)) from None
                index = cached_index(self.home, snapshot, scorer, version)
                self._index, self._model_version = index, version
            return index
