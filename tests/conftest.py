"""Shared test fixtures. Tests that need ../shared use the ``shared_dir`` fixture.

The data folder is ``$MASKWATCH_SHARED`` or ``../shared`` beside the repository. When it is
missing such tests skip with the reason, except under CI (``CI=true``), where they fail, since
CI always has it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_path() -> Path:
    return Path(os.environ.get("MASKWATCH_SHARED", REPO.parent / "shared")).resolve()


def pytest_collection_modifyitems(items):
    """A test that reaches the shared data (the ``shared_dir`` fixture, directly or through another fixture
    such as ``kaggle_dir``) carries the ``shared`` marker, so ``-m "not shared"`` selects the tests that run
    without ../shared."""
    for item in items:
        if "shared_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.shared)


@pytest.fixture(autouse=True)
def _settings_read_per_test():
    """maskwatch.settings reads the environment once; each test (and its monkeypatch.setenv in fixtures)
    starts with the environment read afresh, and leaves nothing cached behind."""
    from maskwatch.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = shared_path()
    if not (path / "data").is_dir():
        message = f"needs the shared data folder at {path} (set MASKWATCH_SHARED)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI must have it")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def kaggle_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "kaggle-face-mask"


def _need(what: str) -> None:
    """Skip (fail under CI, which installs every server) when a server binary is missing."""
    message = f"needs {what}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + "; .ci/run installs it")
    pytest.skip(message)


def _serve(starter: str):
    from tests.helpers import servers

    try:
        server = getattr(servers, starter)()
    except FileNotFoundError as exc:
        _need(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server on 127.0.0.1 for the session (``.url`` is a SQLAlchemy URL)."""
    yield from _serve("start_postgres")


@pytest.fixture()
def postgres_url(postgres_server, request) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    import re
    import subprocess

    name = "t_" + re.sub(r"[^a-z0-9]", "_", request.node.name.lower())[:40] + f"_{os.getpid()}"
    psql = str(postgres_server.info["bindir"] / "psql") if (postgres_server.info["bindir"] / "psql").exists() else "psql"
    subprocess.run([psql, "-h", "127.0.0.1", "-p", str(postgres_server.port), "-U", "postgres", "-q", "-c",
                    f"DROP DATABASE IF EXISTS {name}", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    return postgres_server.url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture()
def mqtt_broker():
    """A mosquitto broker on 127.0.0.1 for one test (``.port``; ``.stop()`` to take it down mid-test)."""
    yield from _serve("start_mosquitto")
