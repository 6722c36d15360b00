"""Snapshots and live-view frames go through the one JPEG encoder (images.encode_jpeg / write_jpeg)."""

from __future__ import annotations

import cv2
import numpy as np

from maskwatch.faces import Faces
from maskwatch.monitor.sinks import LiveViewSink
from maskwatch.monitor.snapshots import SnapshotWriter
from maskwatch.video.sources import Frame


def _picture() -> np.ndarray:
    image = np.zeros((60, 80, 3), np.uint8)
    image[:, 40:] = (0, 0, 255)
    return image


def test_snapshot_is_a_jpeg_and_an_unencodable_one_is_skipped(tmp_path):
    writer = SnapshotWriter(tmp_path / "snaps", mode="full", max_files=None, max_age_days=None)
    path = writer.save(_picture(), None, "ev1")
    decoded = cv2.imread(path)
    assert decoded.shape == (60, 80, 3) and decoded[30, 70, 2] > 200 and decoded[30, 10].max() < 40
    # an empty frame cannot be encoded: no snapshot, counted, no exception (the event is stored anyway)
    assert writer.save(np.zeros((0, 0, 3), np.uint8), None, "ev2") is None
    assert (writer.saved, writer.skipped) == (1, 1) and not (tmp_path / "snaps" / "ev2.jpg").exists()


def test_live_view_publishes_jpeg_bytes_and_skips_what_cannot_be_encoded():
    sent: list[bytes] = []
    sink = LiveViewSink(sent.append, lambda: True, interval_s=0.0)
    sink.handle(Frame(0, _picture(), None, 0.0), Faces.empty(), [])
    assert len(sent) == 1 and sent[0][:2] == b"\xff\xd8"  # a JPEG
    assert cv2.imdecode(np.frombuffer(sent[0], np.uint8), cv2.IMREAD_COLOR).shape == (60, 80, 3)
    sink.handle(Frame(1, np.zeros((0, 0, 3), np.uint8), None, 1.0), Faces.empty(), [])
    assert len(sent) == 1
