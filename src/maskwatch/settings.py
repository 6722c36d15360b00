"""Where MaskWatch keeps and finds things: the one place that reads its environment variables.

=====================  =========================================================================
``MASKWATCH_CACHE``    model cache root (models in ``<root>/models``); default: the platform's user
                       cache directory (``~/.cache/maskwatch`` on Linux)
``MASKWATCH_DB``       the event store: SQLAlchemy URL or SQLite file; default:
                       ``events.db`` in the platform's user data directory
``MASKWATCH_SHARED``   the shared data folder (datasets, peer weights, mask templates); no default
``MASKWATCH_SPOOL``     where failed event writes are kept (a ``.jsonl`` file or a folder); default:
                      ``spool/`` in the user data directory
``MASKWATCH_ORT_SPINNING``  ``1``: let ONNX Runtime's idle threads spin (its own default; off here)
=====================  =========================================================================

Snapshots default to ``snapshots/`` in the user data directory. The environment is read once, on the
first :func:`get_settings`; :func:`reload_settings` reads it again (tests that change it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from .errors import MaskWatchError

APP_NAME = "maskwatch"


@dataclass(frozen=True)
class Settings:
    cache_dir: Path
    """Root of MaskWatch's cache (downloaded models in :attr:`models_dir`, training crops)."""
    data_dir: Path
    """The user data directory: the default event store and snapshots."""
    db_url: str
    """The event store when none is given: a SQLAlchemy URL or a SQLite file path."""
    shared_dir: Path | None
    """The shared data folder, when ``MASKWATCH_SHARED`` is set."""
    ort_spinning: bool = False
    spool_dir: Path | None = None
    """``MASKWATCH_SPOOL`` when set: where failed event writes are kept."""

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"

    @property
    def snapshot_dir(self) -> Path:
        return self.data_dir / "snapshots"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        from platformdirs import user_cache_dir, user_data_dir

        cache = Path(env.get("MASKWATCH_CACHE") or user_cache_dir(APP_NAME))
        data = Path(user_data_dir(APP_NAME))
        shared = env.get("MASKWATCH_SHARED")
        return cls(
            cache_dir=cache,
            data_dir=data,
            db_url=env.get("MASKWATCH_DB") or f"sqlite:///{data / 'events.db'}",
            shared_dir=Path(shared).expanduser() if shared else None,
            ort_spinning=env.get("MASKWATCH_ORT_SPINNING", "0").strip() not in ("", "0"),
            spool_dir=Path(env["MASKWATCH_SPOOL"]) if env.get("MASKWATCH_SPOOL") else None,
        )

    def shared_path(self, *parts: str, what: str) -> Path:
        """``$MASKWATCH_SHARED/<parts>``; a :class:`MaskWatchError` naming ``what`` when the variable is
        unset or the path is missing (never a guess such as ``../shared``)."""
        if self.shared_dir is None:
            raise MaskWatchError(f"{what}: MASKWATCH_SHARED is not set (point it at the shared data folder, "
                                 "or pass the path explicitly)")
        path = self.shared_dir.joinpath(*parts)
        if not path.exists():
            raise MaskWatchError(f"{what}: {path} does not exist (MASKWATCH_SHARED={self.shared_dir})")
        return path


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings, read from the environment on the first call."""
    return Settings.from_env()


def reload_settings() -> Settings:
    """Read the environment again (after it changed)."""
    get_settings.cache_clear()
    return get_settings()


__all__ = ["Settings", "get_settings", "reload_settings"]
