"""HTTP API and web dashboard for venue operators (needs the ``server`` extra: FastAPI, uvicorn).

``create_app(...)`` returns the FastAPI application; ``maskwatch serve`` runs it with uvicorn.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
