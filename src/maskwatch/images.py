"""Reading images and finding image files, with errors that name the file and the problem."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
#: the only decoders Pillow may use (``formats=``): never EPS (Ghostscript), PDF, SVG-like or exotic plugins,
#: whatever the file's first bytes claim (the JPEG opener also yields multi-picture MPO files from phones).
PIL_FORMATS = ("JPEG", "PNG", "BMP", "WEBP", "TIFF")

#: Default refusal limit: 64 megapixels (8000 x 8000). The decoded image alone is 192 MB and the
#: conversions hold a few copies, so one image near the limit can peak around 1 GB (docs/security.md).
DEFAULT_MAX_PIXELS = 64_000_000
# read_image checks ``max_pixels`` itself from the header, before decoding, and names the size;
# Pillow's own guard would raise first with a vaguer message.
Image.MAX_IMAGE_PIXELS = None


class ImageTooLargeError(InputError):
    """The image is decodable but over the pixel limit (the server answers 413 for it)."""


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file into a BGR ``uint8`` array of shape (H, W, 3).

    Grayscale, palette, alpha, CMYK and 16-bit images are converted; EXIF rotation is applied.
    Raises :class:`InputError` naming the file for anything that is not a readable image.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except OSError as exc:
        raise InputError(path, f"cannot access file ({exc.strerror or exc})") from None
    if path.is_dir():
        raise InputError(path, "is a directory, not an image")
    if size == 0:
        raise InputError(path, "empty file (0 bytes)")
    return _decode(path, path, max_pixels, lambda: path.read_bytes()[:512])


def decode_image_bytes(data: bytes, name: str = "<upload>", max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Like :func:`read_image` for an image already in memory (an upload); ``name`` goes in the errors."""
    if not data:
        raise InputError(name, "empty file (0 bytes)")
    return _decode(io.BytesIO(data), name, max_pixels, lambda: data[:512])


def open_image(source: str | os.PathLike | io.BytesIO, name: object = None,
               max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Image.Image:
    """``Image.open`` limited to :data:`PIL_FORMATS`, refusing more than ``max_pixels`` from the
    header (before any decoding). Use it wherever MaskWatch reads an image with Pillow."""
    img = Image.open(source, formats=PIL_FORMATS)
    width, height = img.size
    if max_pixels is not None and width * height > max_pixels:
        img.close()
        raise ImageTooLargeError(
            name if name is not None else source,
            f"image too large: {width}x{height} = {width * height / 1e6:.0f} MP "
            f"exceeds the limit of {max_pixels / 1e6:.0f} MP (raise it with --max-pixels)",
        )
    return img


def decode_upload(data: bytes, name: str = "<upload>", max_pixels: int = DEFAULT_MAX_PIXELS,
                  min_side: int = 2048) -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
    """An upload decoded at reduced size where the format allows it (JPEG draft: 1/2, 1/4, 1/8 while
    the longer side stays at least ``min_side``), so a photo near the pixel limit does not take a
    gigabyte. Returns the image, the (x, y) factors from its pixels to the original's, and the
    original (width, height), both after EXIF rotation."""
    if not data:
        raise InputError(name, "empty file (0 bytes)")
    found: dict = {}
    image = _decode(io.BytesIO(data), name, max_pixels, lambda: data[:512], min_side, found)
    width, height = found["size"]
    return image, (width / image.shape[1], height / image.shape[0]), (width, height)


def _decode(source: Path | io.BytesIO, name: object, max_pixels: int, head: Callable[[], bytes],
            min_side: int | None = None, found: dict | None = None) -> np.ndarray:
    """The checks and conversions shared by files and in-memory images."""
    try:
        with open_image(source, name, max_pixels) as img:
            width, height = img.size
            if min_side and img.format == "JPEG" and max(width, height) > 2 * min_side:
                ratio = min_side / max(width, height)
                img.draft("RGB", (max(1, round(width * ratio)), max(1, round(height * ratio))))
            img.load()
            if found is not None:
                swapped = img.getexif().get(0x0112) in (5, 6, 7, 8)
                found["size"] = (height, width) if swapped else (width, height)
            return pil_to_bgr(ImageOps.exif_transpose(img))
    except InputError:
        raise
    except PermissionError:
        raise InputError(name, "permission denied") from None
    except UnidentifiedImageError:
        raise InputError(name, f"not an image file ({_sniff(head)})") from None
    except Image.DecompressionBombError:
        raise ImageTooLargeError(name, "image too large (decompression bomb guard)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(name, f"truncated or corrupt image data ({exc})") from None


def pil_to_bgr(img: Image.Image) -> np.ndarray:
    """Any Pillow mode to 8-bit BGR; 16/32-bit images are scaled, alpha is composited on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        top = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        rgb = np.repeat(arr[:, :, None], 3, axis=2)
    else:
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(background, rgba)
        rgb = np.asarray(img.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _sniff(head: Callable[[], bytes]) -> str:
    """What the first bytes of a non-image look like, for the error message."""
    try:
        start = head()
    except OSError:
        return "unreadable"
    if start and all(32 <= b < 127 or b in (9, 10, 13) for b in start):
        return "looks like a text file"
    return "unknown format"


@dataclass(frozen=True)
class FoundInput:
    """One input found by :func:`find_images`: a path, or a problem with a path."""

    path: Path
    error: str | None = None


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """A BGR image as JPEG bytes; ValueError when OpenCV cannot encode it."""
    import cv2

    try:
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    except cv2.error as exc:  # an empty or malformed array
        raise ValueError(f"could not encode the image as JPEG ({str(exc).strip().splitlines()[-1]})") from None
    if not ok:
        raise ValueError("could not encode the image as JPEG")
    return bytes(data.tobytes())


def write_jpeg(path: str | os.PathLike, image: np.ndarray, quality: int = 90) -> Path:
    """Write ``image`` as a JPEG file (parent folders made); InputError naming the file when it cannot."""
    target = Path(path)
    try:
        data = encode_jpeg(image, quality)
    except ValueError as exc:
        raise InputError(target, str(exc)) from None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    except OSError as exc:
        raise InputError(target, f"cannot write image ({exc.strerror or exc})") from None
    return target


def find_images(paths: Iterable[str | os.PathLike]) -> list[FoundInput]:
    """Expand files and folders (recursively, sorted) into image paths, in the order given.

    A file given explicitly is kept whatever its suffix (reading it reports the problem);
    inside folders only known image suffixes are taken. Missing or unreadable folders come back
    as entries with an ``error`` so a batch can report them and go on.
    """
    found: list[FoundInput] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            if not os.access(path, os.R_OK | os.X_OK):
                found.append(FoundInput(path, "cannot read directory (permission denied)"))
                continue
            errors: list[OSError] = []
            files = []
            for root, dirs, names in os.walk(path, onerror=errors.append):
                dirs.sort()
                files.extend(Path(root) / n for n in names if Path(n).suffix.lower() in IMAGE_SUFFIXES)
            found.extend(FoundInput(f) for f in sorted(files))
            for err in errors:
                found.append(FoundInput(Path(err.filename or path), f"cannot read directory ({err.strerror})"))
        elif path.exists():
            found.append(FoundInput(path))
        else:
            found.append(FoundInput(path, "no such file or directory"))
    return found
