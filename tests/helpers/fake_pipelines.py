"""Stand-ins for the detection pipeline and a server fixture built on them, for the API tests.

``fake_client`` is a fixture: import it into a test module (``from ... import fake_client``) and request it
by name; it makes a FastAPI TestClient over ``create_app`` with a ``FakePipeline`` and a temporary database.
"""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image

from maskwatch.faces import Faces


def png_bytes(width: int = 32, height: int = 24, colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, "PNG")
    return buf.getvalue()


class FakePipeline:
    """Two faces (scores 0.9 and 0.4, one masked, one not) on any image; or raises ``error``."""

    class detector:  # noqa: N801 - mimics the attribute of MaskPipeline
        name = "fake"
        min_score = 0.1

    classifier = None

    def __init__(self, error: Exception | None = None):
        self.error = error
        self.calls = 0

    def __call__(self, image, timer=None):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return Faces(boxes=[[1, 1, 10, 10], [12, 2, 20, 12]], scores=[0.9, 0.4],
                     probs=[[0.8, 0.1, 0.1], [0.1, 0.7, 0.2]])


class BlockingPipeline(FakePipeline):
    """Holds every photo until ``release`` is set."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def __call__(self, image, timer=None):
        self.calls += 1
        assert self.release.wait(20)
        return Faces.empty().with_(probs=np.zeros((0, 3), np.float32))


@pytest.fixture
def fake_client(tmp_path):
    from fastapi.testclient import TestClient

    from maskwatch.server import create_app

    def make(**options):
        options.setdefault("pipeline", FakePipeline())
        options.setdefault("db", str(tmp_path / "events.db"))
        options.setdefault("snapshot_dir", tmp_path / "snaps")
        return TestClient(create_app(**options), raise_server_exceptions=False, base_url="http://localhost")

    return make
