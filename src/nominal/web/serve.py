"""The app factory uvicorn imports (``nominal.web.serve:app``) for the hub in ``$NOMINAL_HOME``."""

from __future__ import annotations

from fastapi import FastAPI

from nominal.config import home
from nominal.web.app import create_app


def app() -> FastAPI:
    return create_app(home())
