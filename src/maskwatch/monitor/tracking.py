"""Track ids for faces: ByteTrack (the maintained ``trackers`` package) on detector frames, and
optical flow to carry the boxes along on the frames in between."""

from __future__ import annotations

import warnings

import cv2
import numpy as np

from ..faces import Faces


class FaceTracker:
    """Adapter that sets ``Faces.track_ids`` with ``trackers.ByteTrackTracker``.

    Times are in seconds (video time for files, wall time for cameras), so ``lost_track_s`` means the
    same whether the detector runs on every frame or every Nth. Faces ByteTrack has not confirmed
    yet get id -1.
    """

    def __init__(self, lost_track_s: float = 1.5, activation_score: float = 0.5, min_iou: float = 0.1):
        import supervision as sv  # noqa: F401  (ByteTrack's detection type; imported early to fail early)
        from trackers import ByteTrackTracker

        self.tracker = ByteTrackTracker(
            lost_track_buffer=max(1, round(lost_track_s * 30)), frame_rate=30.0,
            track_activation_threshold=activation_score, minimum_consecutive_frames=1,
            minimum_iou_threshold=min_iou, high_conf_det_threshold=activation_score,
        )

    def update(self, faces: Faces, time_s: float | None = None) -> Faces:
        import supervision as sv

        detections = sv.Detections(xyxy=faces.boxes.astype(np.float32).reshape(-1, 4),
                                   confidence=faces.scores.astype(np.float32),
                                   data={"row": np.arange(len(faces))})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tracked = self.tracker.update(detections, timestamp=time_s)
        ids = np.full(len(faces), -1, np.int64)
        if len(tracked):
            ids[np.asarray(tracked.data["row"], int)] = np.asarray(tracked.tracker_id, np.int64)
        return faces.with_(track_ids=ids)


def propagate_boxes(prev_gray: np.ndarray, gray: np.ndarray, faces: Faces, max_points: int = 24) -> Faces:
    """Move each box (and its landmarks) by the median optical-flow shift of corners found inside it.

    A box where fewer than 3 points were followed keeps its place. Costs ~1 ms for a few faces at 640x480.
    """
    if not len(faces):
        return faces
    h, w = gray.shape[:2]
    points, owners = [], []
    for i, (x1, y1, x2, y2) in enumerate(faces.boxes.astype(int)):
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        if x2 - x1 < 8 or y2 - y1 < 8:
            continue
        found = cv2.goodFeaturesToTrack(prev_gray[y1:y2, x1:x2], max_points, 0.01, 3)
        if found is None:
            continue
        found = found.reshape(-1, 2) + (x1, y1)
        points.append(found)
        owners.extend([i] * len(found))
    if not points:
        return faces
    p0 = np.concatenate(points).astype(np.float32).reshape(-1, 1, 2)
    p1, status, _ = cv2.calcOpticalFlowPyrLK(prev_gray, gray, p0, None, winSize=(15, 15), maxLevel=2)
    shift = (p1 - p0).reshape(-1, 2)
    ok = status.reshape(-1).astype(bool)
    owners_arr = np.asarray(owners)
    boxes = faces.boxes.copy()
    landmarks = None if faces.landmarks is None else faces.landmarks.copy()
    for i in range(len(faces)):
        sel = ok & (owners_arr == i)
        if sel.sum() < 3:
            continue
        d = np.median(shift[sel], axis=0)
        boxes[i] += (d[0], d[1], d[0], d[1])
        if landmarks is not None:
            landmarks[i] += d
    return faces.with_(boxes=boxes, landmarks=landmarks)
