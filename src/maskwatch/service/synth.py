"""Synthetic masked faces: what ``maskwatch synth`` runs.

A :class:`SynthConfig` says where from and to, which wear modes and mask styles (with sampling weights),
the templates and the limits; :func:`run_synth` builds the face detector and the
:class:`~maskwatch.synth.MaskSynthesizer` from it and runs :func:`~maskwatch.synth.synthesize_folder`.

    >>> config = SynthConfig.from_options(src="faces/", out="synth-out", modes="correct=2,chin", styles="surgical")
    >>> report = run_synth(config)   # a SynthReport: report.written counts results by label
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import MaskWatchError

if TYPE_CHECKING:  # the synth package (OpenCV) loads when a run starts, not with the CLI
    from ..synth.run import SynthReport

#: ``--modes`` and ``--styles`` when not given
DEFAULT_MODES = "correct,nose,chin,loose"
DEFAULT_STYLES = "templates,surgical,cloth,n95,kn95"
#: CenterFace's input size for the landmarks (640 px is tried when nothing is found at 320)
DETECTOR_INPUT_SIZE = 320


def _weights(value: Any, what: str) -> dict[str, float]:
    """``"correct=2,nose"`` or ``{"correct": 2, "nose": 1}`` -> checked weights (ValueError naming the problem)
    of wear modes (``what="wear mode"``) or mask styles (``what="style"``)."""
    from ..synth.generator import STYLES, parse_weights
    from ..synth.geometry import WEAR_MODES

    allowed = tuple(WEAR_MODES) if what == "wear mode" else STYLES
    if isinstance(value, dict):
        value = ",".join(f"{name}={weight}" for name, weight in value.items())
    if not isinstance(value, str):
        raise ValueError(f"{what}s: expected 'name=weight,...' or a mapping, got {value!r}")
    return parse_weights(value, allowed, what)


class SynthConfig(BaseModel):
    """One synth run. ``modes`` / ``styles``: name -> sampling weight (a ``"correct=2,nose"`` string is
    parsed); ``templates`` None: ``$MASKWATCH_SHARED/masks/masktheface`` when the ``templates`` style is used."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    src: Path = Field(description="Folder of unmasked face images, or a VOC folder (each without_mask box is used).")
    out: Path = Field(description="Output folder (mask/ + incorrect/, or images/ + annotations/).")
    modes: dict[str, float] = Field(default_factory=lambda: _weights(DEFAULT_MODES, "wear mode"),
                                    description="Wear modes and their weights.")
    styles: dict[str, float] = Field(default_factory=lambda: _weights(DEFAULT_STYLES, "style"),
                                     description="Mask styles and their weights.")
    templates: Path | None = Field(None, description="MaskTheFace-style template folder (masks.cfg + PNGs).")
    per_face: float = Field(1.0, ge=0.01, le=4.0, description="Results per face; fractional: 1.5 = one, and a "
                            "second for half of them.")
    seed: int = Field(0, description="Random seed; the same seed and inputs give the same outputs.")
    min_face: float = Field(40.0, ge=0, description="Skip faces whose box is smaller than this (pixels, shorter side).")
    limit: int | None = Field(None, ge=1, description="Use at most this many source images (sorted order).")
    preview: Path | None = Field(None, description="Write a contact sheet PNG of 24 results across modes and styles.")
    threads: int | None = Field(None, ge=1, description="ONNX Runtime threads for the face detector.")

    @field_validator("modes", mode="before")
    @classmethod
    def _modes(cls, value: Any) -> dict[str, float]:
        return _weights(value, "wear mode")

    @field_validator("styles", mode="before")
    @classmethod
    def _styles(cls, value: Any) -> dict[str, float]:
        return _weights(value, "style")

    @classmethod
    def from_options(cls, **options: Any) -> "SynthConfig":
        """``SynthConfig(**options)``, a problem as one :class:`MaskWatchError` line (a validator's own words)."""
        try:
            return cls(**options)
        except ValidationError as exc:
            error = exc.errors()[0]
            if error["type"] == "value_error":
                raise MaskWatchError(str(error["ctx"]["error"])) from None
            where = ".".join(str(p) for p in error["loc"]).replace("_", "-")
            raise MaskWatchError(f"synth option {where}: {error['msg']}") from None

    def template_dir(self) -> Path | None:
        """The template folder to load: ``templates``, else the shared one when the ``templates`` style is
        used (a :class:`MaskWatchError` when ``MASKWATCH_SHARED`` is unset or lacks it), else None."""
        if self.templates is not None or self.styles.get("templates", 0) <= 0:
            return self.templates
        return default_template_dir()


def default_template_dir() -> Path:
    """``$MASKWATCH_SHARED/masks/masktheface``; a MaskWatchError when it is unset or missing."""
    from ..settings import get_settings

    return get_settings().shared_path("masks", "masktheface", what="mask templates (--templates)")


def run_synth(config: SynthConfig, progress: Callable[[int], object] | None = None,
              on_total: Callable[[int], object] | None = None) -> "SynthReport":
    """Run ``config``: masked faces and a manifest under ``config.out`` (see :mod:`maskwatch.synth.run`).

    ``progress(n)`` is called after each source image, ``on_total(n)`` once their number is known.
    Bad options, templates or inputs raise :class:`MaskWatchError` (``ValueError`` from the generator
    is turned into one).
    """
    from ..detectors.centerface import CenterFaceDetector
    from ..synth import MaskSynthesizer, synthesize_folder

    try:
        synth = MaskSynthesizer.with_templates(
            config.template_dir(), modes=dict(config.modes), styles=dict(config.styles), per_face=config.per_face,
            min_face=config.min_face, detector=CenterFaceDetector(input_size=DETECTOR_INPUT_SIZE, threads=config.threads),
        )
        return synthesize_folder(config.src, config.out, synth, seed=config.seed, limit=config.limit,
                                 preview=config.preview, progress=progress, on_total=on_total)
    except ValueError as exc:  # no usable style, a template folder that is a file, ...
        raise MaskWatchError(str(exc)) from None


__all__ = ["DEFAULT_MODES", "DEFAULT_STYLES", "SynthConfig", "default_template_dir", "run_synth"]
