"""Detection on photos: what ``maskwatch detect`` and ``POST /v1/detect`` both run.

A :class:`DetectConfig` says which detector (and its options), which classifier, the thresholds and
the limits; :class:`DetectService` builds the pipeline from it once and turns image files or
uploaded bytes into :class:`Detection` results: the :class:`~maskwatch.faces.Faces`, the one JSON
record of :func:`~maskwatch.faces.detection_record`, per-stage times and, when asked, the annotated
image (written as a JPEG file, or encoded in memory for an upload).

    >>> service = DetectService(DetectConfig(detector="yunet", min_score=0.6, threads=2))
    >>> found = service.detect_file("shots/a.jpg", out="shots/a.maskwatch.jpg")
    >>> found.record()["counts"]
    {'mask': 1, 'no_mask': 0, 'incorrect': 0}
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import InputError, MaskWatchError
from ..faces import Faces, detection_record
from ..images import DEFAULT_MAX_PIXELS
from ..pipeline import FUSIONS, StageTimer

if TYPE_CHECKING:
    from ..detectors import DetectorConfig

#: JPEG quality of annotated images (files and ``?annotate=true`` answers)
JPEG_QUALITY = 90


class ProcessingError(InputError):
    """A readable image the pipeline could not process (out of memory, an OpenCV error);
    ``reason`` is the exception's type and last message line."""

    def __init__(self, path: object, reason: str):
        self.reason = reason
        super().__init__(path, f"cannot process image ({reason})")


class EncodingError(MaskWatchError):
    """The annotated image could not be encoded as JPEG."""


class DetectConfig(BaseModel):
    """The detection pipeline and its limits. A detector option left None means the detector's own
    default; ``detector_options`` holds the options only some detectors take (``input_size``), and
    one the chosen detector does not take is a one-line error naming the option and the detector."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    detector: str | None = Field(None, description="Detector name (None: maskwatch.detectors.DEFAULT_DETECTOR).")
    detector_model: str | None = Field(None, description="Model file for the detector (default: the registry's).")
    detector_options: dict[str, Any] = Field(default_factory=dict,
                                             description="Further detector options, e.g. {'input_size': 640}.")
    min_score: float | None = Field(None, ge=0, le=1, description="Face confidence threshold (None: the detector's).")
    min_face: float = Field(0, ge=0, description="Drop faces whose shorter side is below this many pixels.")
    classifier: bool = Field(True, description="Run the crop classifier (False: the detector's own mask state only).")
    classifier_model: str | None = Field(None, description="Classifier ONNX file (None: the shipped one).")
    fusion: str | None = Field(None, description="Whose mask state counts: detector, classifier or fused "
                               "(None: the detector's default).")
    threads: int | None = Field(None, ge=0, description="CPU threads for inference (None or 0: all).")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, description="Refuse images larger than this many pixels.")
    annotate: bool = Field(True, description="Draw the faces (a JPEG file, or the answer of an upload).")

    @field_validator("detector_model", "classifier_model", mode="before")
    @classmethod
    def _path_as_text(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("fusion")
    @classmethod
    def _fusion(cls, value: str | None) -> str | None:
        if value is not None and value not in FUSIONS:
            raise ValueError(f"unknown fusion '{value}'; choose from: {', '.join(FUSIONS)}")
        return value

    @classmethod
    def of(cls, **options: Any) -> "DetectConfig":
        """``DetectConfig(**options)`` with a one-line :class:`MaskWatchError` per problem."""
        try:
            return cls(**options)
        except ValidationError as exc:
            raise MaskWatchError(validation_message(exc)) from None

    def detector_config(self) -> "DetectorConfig":
        """The chosen detector's own typed config, validated (unknown or inapplicable options are errors)."""
        from ..detectors import DEFAULT_DETECTOR, detector_config

        given = dict(self.detector_options, min_face=self.min_face, threads=self.threads, min_score=self.min_score,
                     model_path=self.detector_model)
        return detector_config(self.detector or DEFAULT_DETECTOR, **{k: v for k, v in given.items() if v is not None})


def validation_message(exc: ValidationError) -> str:
    """A pydantic error as one line: ``option: problem`` per problem (a validator's own words kept)."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]).replace("_", "-")
        message = str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
        problems.append(message if error["type"] == "value_error" else f"{where}: {message}")
    return "; ".join(problems)


@dataclass
class Detection:
    """One photo's result. ``image``: its path or an upload's name; ``width`` / ``height``: the original
    photo's size (the boxes are in its pixels); ``stages_ms``: milliseconds per stage (decode, detect,
    classify, draw); ``total_ms``: all of them, from the first byte read to the annotated image.
    ``annotated``: the drawn image (an upload's at its reduced decode size); ``jpeg``: it encoded (uploads);
    ``written``: the JPEG file written (files)."""

    image: str
    faces: Faces
    width: int
    height: int
    stages_ms: dict[str, float] = field(default_factory=dict)
    total_ms: float = 0.0
    annotated: np.ndarray | None = None
    jpeg: bytes | None = None
    written: Path | None = None

    def record(self) -> dict[str, Any]:
        """The one JSON record of a detection (``detect --json`` lines, ``POST /v1/detect``)."""
        return detection_record(self.faces, self.image, self.width, self.height, self.total_ms)

    def timings_ms(self) -> dict[str, float]:
        """``stages_ms`` and ``total``, rounded to 0.01 ms (the API's ``timings_ms``)."""
        out = {k: round(v, 2) for k, v in self.stages_ms.items()}
        out["total"] = round(self.total_ms, 2)
        return out


#: what :class:`DetectService` runs: an image (and a timer) in, faces out (a ``MaskPipeline``)
Pipeline = Callable[..., Faces]


class DetectService:
    """The pipeline of ``config`` (built here, once, unless one is given) and the steps around it:
    decoding with the pixel limit, an optional extra score threshold, drawing, JPEG output.
    Safe to call from several threads when the pipeline is (ONNX Runtime sessions are)."""

    def __init__(self, config: DetectConfig | None = None, pipeline: Pipeline | None = None):
        self.config = config if config is not None else DetectConfig()
        if pipeline is None:
            pipeline = build_detect_pipeline(self.config)
        self.pipeline = pipeline

    # -- what the pipeline is ------------------------------------------------------------------
    @property
    def detector(self) -> Any:
        return getattr(self.pipeline, "detector", None)

    def detector_info(self) -> dict[str, Any]:
        """``{"name", "min_score"}`` of the detector (``/v1/health``)."""
        found = self.detector
        return {"name": getattr(found, "name", type(found).__name__), "min_score": getattr(found, "min_score", None)}

    def classifier_path(self) -> str | None:
        path = getattr(getattr(self.pipeline, "classifier", None), "path", None)
        return None if path is None else str(path)

    # -- photos ----------------------------------------------------------------------------------
    def detect_file(self, path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Detection:
        """Read the image at ``path`` (InputError naming it when it cannot be used) and detect; with
        ``config.annotate`` draw the faces, and with ``out`` write the drawing there as a JPEG."""
        from ..images import read_image

        timer = StageTimer()
        t0 = time.perf_counter()
        with _processing(path):
            image = read_image(path, max_pixels=self.config.max_pixels)
            timer.add("decode", t0)
            found = self._detect(image, str(path), timer, t0, min_score=None, annotate=self.config.annotate)
        if out is not None and found.annotated is not None:
            from ..images import write_jpeg

            found.written = write_jpeg(out, found.annotated, JPEG_QUALITY)
        return found

    def detect_bytes(self, data: bytes, name: str = "upload", min_score: float | None = None,
                     annotate: bool | None = None) -> Detection:
        """Detect on an uploaded image. Large JPEGs are decoded at 1/2..1/8 (and annotated at that size);
        the boxes are given in the original photo's pixels. ``min_score`` drops faces scored below it
        (it can only raise the detector's threshold); ``annotate`` (default ``config.annotate``) adds
        the annotated JPEG. Raises ImageTooLargeError, InputError (not a readable image),
        :class:`ProcessingError` and :class:`EncodingError`."""
        from ..images import decode_upload

        timer = StageTimer()
        t0 = time.perf_counter()
        image, scale, (width, height) = decode_upload(data, name, self.config.max_pixels)
        timer.add("decode", t0)
        with _processing(name):
            found = self._detect(image, name, timer, t0, min_score,
                                 self.config.annotate if annotate is None else annotate, encode=True)
        if scale != (1.0, 1.0):
            found.faces = _scaled(found.faces, scale)
        found.width, found.height = width, height
        found.total_ms = (time.perf_counter() - t0) * 1000
        return found

    def detect_image(self, image: np.ndarray, name: str = "image", min_score: float | None = None,
                     annotate: bool | None = None) -> Detection:
        """Detect on a decoded BGR ``uint8`` image."""
        timer = StageTimer()
        with _processing(name):
            return self._detect(image, name, timer, time.perf_counter(), min_score,
                                self.config.annotate if annotate is None else annotate)

    def _detect(self, image: np.ndarray, name: str, timer: StageTimer, t0: float, min_score: float | None,
                annotate: bool, encode: bool = False) -> Detection:
        faces = self.pipeline(image, timer)
        if min_score is not None:
            from ..detectors import filter_faces

            faces = filter_faces(faces, min_score, 0)
        found = Detection(str(name), faces, int(image.shape[1]), int(image.shape[0]))
        if annotate:
            from ..draw import annotate as draw_faces

            t1 = time.perf_counter()
            found.annotated = draw_faces(image, faces)
            if encode:
                from ..images import encode_jpeg

                try:
                    found.jpeg = encode_jpeg(found.annotated, JPEG_QUALITY)
                except ValueError as exc:
                    raise EncodingError(f"{name}: could not encode the annotated image ({exc})") from None
            timer.add("draw", t1)
        found.stages_ms = dict(timer.ms)
        found.total_ms = (time.perf_counter() - t0) * 1000
        return found


def build_detect_pipeline(config: DetectConfig) -> Any:
    """The ``MaskPipeline`` of ``config``; OpenCV's threads follow ``config.threads``."""
    from ..pipeline import build_pipeline

    if config.threads:
        import cv2

        cv2.setNumThreads(config.threads)
    return build_pipeline(config.detector_config(), threads=config.threads, classifier=config.classifier,
                          classifier_model=config.classifier_model, fusion=config.fusion)


def annotated_path(image: Path, out: Path | None = None, roots: Iterable[Path] = ()) -> Path:
    """Where ``detect`` writes the drawing of ``image``: ``<stem>.maskwatch.jpg`` beside it, or in
    ``out``, mirroring its sub-folder when it was found inside one of the folders ``roots``."""
    name = f"{image.stem}.maskwatch.jpg"
    if out is None:
        return image.with_name(name)
    resolved = image.resolve()
    for root in roots:
        if root.is_dir() and root.resolve() in resolved.parents:
            try:
                return out / image.parent.relative_to(root) / name
            except ValueError:
                pass
            break
    return out / name


@contextlib.contextmanager
def _processing(name: object) -> Iterator[None]:
    """Out of memory or an OpenCV error inside the pipeline: a :class:`ProcessingError` naming the image."""
    import cv2

    try:
        yield
    except (MemoryError, cv2.error) as exc:
        last_line = (str(exc).strip().splitlines() or [""])[-1]
        raise ProcessingError(name, f"{type(exc).__name__}: {last_line}") from None


def _scaled(faces: Faces, scale: tuple[float, float]) -> Faces:
    """``faces`` found in a reduced decode, in the original photo's pixels."""
    sx, sy = scale
    landmarks = None if faces.landmarks is None else faces.landmarks * np.array([sx, sy], np.float32)
    return faces.with_(boxes=faces.boxes * np.array([sx, sy, sx, sy], np.float32), landmarks=landmarks)
