"""Face crops as the classifier sees them, used identically by training and inference."""

from __future__ import annotations

import cv2
import numpy as np

from ..boxes import expand_to_square

#: Defaults of the shipped model; a model's own metadata overrides them.
CROP_SIZE = 96
CROP_CONTEXT = 0.25
#: the detector and threshold that find the face inside a crop (training data, ``classify --locate``)
LOCATOR_DETECTOR = "centerface"
LOCATOR_MIN_SCORE = 0.3


def crop_faces(image: np.ndarray, boxes: np.ndarray, size: int = CROP_SIZE, context: float = CROP_CONTEXT) -> np.ndarray:
    """Square crops around ``boxes`` (with ``context`` margin), resized to ``size``; (N, size, size, 3) uint8.

    Parts of a crop outside the image are filled by replicating the border, so faces at the edge
    look like faces rather than like a black bar the classifier never saw in training.
    """
    squares = expand_to_square(boxes, context)
    out = np.empty((len(squares), size, size, 3), np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(squares):
        side = max(x2 - x1, 1e-3)
        scale = size / side
        # affine map from the square in image coordinates onto the output grid (pixel centres aligned)
        m = np.array([[scale, 0, -x1 * scale + 0.5 * scale - 0.5], [0, scale, -y1 * scale + 0.5 * scale - 0.5]], np.float32)
        out[i] = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out


def face_locator(threads: int | None = None):
    """The detector :func:`face_box_in_crop` uses to frame the face in a crop as in training:
    CenterFace at score 0.3."""
    from ..detectors import create_detector

    return create_detector(LOCATOR_DETECTOR, min_score=LOCATOR_MIN_SCORE, threads=threads)


def face_box_in_crop(image: np.ndarray, detector=None) -> np.ndarray:
    """The box to classify in an image that is already a face crop: (1, 4).

    The largest face the detector finds, so the framing matches what the classifier saw in
    training; the whole image when there is no detector or it finds no face.
    """
    h, w = image.shape[:2]
    if detector is not None:
        found = detector.detect(image)
        if len(found):
            return found.boxes[[int(np.argmax(found.widths * found.heights))]]
    return np.array([[0, 0, w, h]], np.float32)
