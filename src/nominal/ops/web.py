"""What the ops, pipeline and feed routers need from the web app, in one place.

The app (``nominal.web.app.create_app``) keeps the hub's home and control plane on
``app.state``; these dependencies read them from there, and fall back to the
configured home (``NOMINAL_HOME``) and one control plane per database URL, so the
routers also work mounted on a bare FastAPI app.
"""

from __future__ import annotations

import threading

from fastapi import Request

from nominal.config import Home
from nominal.config import home as configured_home
from nominal.db import ControlPlane

_controls: dict[str, ControlPlane] = {}
_lock = threading.Lock()


def control_for(url: str) -> ControlPlane:
    """One (migrated) control plane per URL for the process."""
    with _lock:
        if url not in _controls:
            _controls[url] = ControlPlane(url)
        return _controls[url]


def get_home(request: Request) -> Home:
    hub = getattr(request.app.state, "hub", None)
    found = getattr(hub, "home", None) or getattr(request.app.state, "home", None)
    return found if isinstance(found, Home) else configured_home()


def get_control(request: Request) -> ControlPlane:
    hub = getattr(request.app.state, "hub", None)
    for found in (getattr(hub, "control", None), getattr(request.app.state, "control", None)):
        if isinstance(found, ControlPlane):
            return found
    return control_for(get_home(request).database_url)
