"""The app factory uvicorn imports (``nominal.web.serve:app``) for the hub in ``$NOMINAL_HOME``."""

from __future__ import annotations

from fastapi import FastAPI

from nominal.config import home
from nominal.web import memory
from nominal.web.app import create_app


def app() -> FastAPI:
    # before any request thread allocates: see nominal.web.memory
    memory.tune()
    return create_app(home(), trim_native_memory=True)
