"""Where a request's time went: phases measured in the server, sent as ``Server-Timing``.

A handler (or a dependency) times a phase with ``with phase(request, "policy"): ...``;
the route then adds :func:`server_timing` to its response, e.g.
``Server-Timing: auth;dur=1.2, policy;dur=0.1, search;dur=6.3, audit;dur=4.0``
(milliseconds, wall time in the worker). Load generators read the header to split a
latency into its parts under load (``benchmarks/search_load.py``); the figures say
nothing about the data, only how long each step took.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _timings(request: Any) -> dict[str, float]:
    found: dict[str, float] | None = getattr(request.state, "timings", None)
    if found is None:
        found = {}
        request.state.timings = found
    return found


@contextmanager
def phase(request: Any, name: str) -> Iterator[None]:
    """Add the wall time of the block to the request's phase ``name`` (seconds)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timings = _timings(request)
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - started


def server_timing(request: Any) -> str:
    """The request's phases as a ``Server-Timing`` header value (milliseconds)."""
    return ", ".join(
        f"{name};dur={seconds * 1000:.2f}" for name, seconds in _timings(request).items()
    )
