"""Batch generation: a folder of face images or a VOC folder in, masked images + manifest out.

Outputs (DST):
- face images: ``mask/`` and ``incorrect/`` (classifier label folders);
  VOC scenes: ``images/`` + ``annotations/`` (VOC XML; masked boxes relabelled ``with_mask`` /
  ``mask_weared_incorrect``, all other boxes as they were).
- ``manifest.jsonl``: one line per result (source, face box, landmarks, style, mode, label, output).
- ``sources.txt``: every source image a synthetic face was made from, one path per line, so a
  trainer can keep those faces out of the unmasked examples of the same split.
- ``summary.json``: counts written and skipped (by reason), template problems.
"""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import DatasetError, InputError
from ..faces import Label
from ..images import find_images, read_image, write_jpeg
from .generator import MaskSynthesizer, SkipFace
from .geometry import WEAR_MODES
from .preview import ContactSheet, face_thumbnail, fit_tile

#: the class names a synthesised VOC scene gives the boxes it masked (those of the Kaggle face-mask set)
VOC_NAMES = {Label.MASK: "with_mask", Label.INCORRECT: "mask_weared_incorrect"}


@dataclass
class SynthReport:
    """What a run did: results per label/mode/style, faces skipped by reason (with examples)."""

    sources: int = 0
    faces_used: int = 0
    written: Counter = field(default_factory=Counter)  # by label
    modes: Counter = field(default_factory=Counter)
    styles: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    template_problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    preview_tiles: int = 0

    def skip(self, reason: str, detail: str) -> None:
        self.skipped[reason] += 1
        bucket = self.examples.setdefault(reason, [])
        if len(bucket) < 3:
            bucket.append(detail)

    def to_dict(self) -> dict:
        return {
            "sources": self.sources, "faces_used": self.faces_used, "written": dict(self.written),
            "modes": dict(self.modes), "styles": dict(self.styles), "skipped": dict(self.skipped),
            "skip_examples": self.examples, "template_problems": self.template_problems,
            "seconds": round(self.seconds, 2),
            "faces_per_second": round(self.faces_used / self.seconds, 2) if self.seconds else None,
        }


def face_rng(seed: int, key: str) -> np.random.Generator:
    """One generator per source (seeded by its relative path), so --limit or order do not change results."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(key.encode("utf-8"))])


def is_voc_folder(root: Path) -> bool:
    from ..data.voc import VocFolder

    return VocFolder.find(root) is not None


def _safe_stem(rel: Path) -> str:
    return "__".join(rel.with_suffix("").parts)


def _manifest_row(source: Path, fit, result, output: Path, out_root: Path) -> dict:
    return {
        "source": str(Path(source).resolve()), "face_box": [round(float(v), 1) for v in fit.box],
        "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in fit.landmarks],
        "landmarks_from": "centerface", "yaw": round(fit.pose.yaw, 3),
        "roll_deg": round(float(np.degrees(fit.pose.roll)), 1),
        "style": result.style, "mode": result.mode, "label": result.label,
        "output": str(output.relative_to(out_root)),
    }


def synthesize_folder(
    src: str | Path,
    out: str | Path,
    synth: MaskSynthesizer,
    seed: int = 0,
    limit: int | None = None,
    preview: str | Path | None = None,
    progress: Callable[[int], object] | None = None,
    on_total: Callable[[int], object] | None = None,
) -> SynthReport:
    """Run the generator over ``src`` (face images, or a VOC folder) into ``out``.

    ``progress(n)`` is called after each source image; ``on_total(n)`` once the count is known.
    """
    src, out = Path(src), Path(out)
    if not src.exists():
        raise InputError(src, "no such file or folder")
    report = SynthReport(template_problems=list(synth.templates.problems) if synth.templates else [])
    sheet = ContactSheet() if preview else None
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    used_sources: list[str] = []
    with open(out / "manifest.jsonl", "w", encoding="utf-8") as manifest:
        runner = _voc_items if is_voc_folder(src) else _image_items
        for rows, source in runner(src, out, synth, seed, limit, report, sheet, on_total):
            for row in rows:
                manifest.write(json.dumps(row) + "\n")
            if rows:
                used_sources.append(str(Path(source).resolve()))
            if progress:
                progress(1)
    (out / "sources.txt").write_text("".join(f"{s}\n" for s in sorted(set(used_sources))), encoding="utf-8")
    report.seconds = time.perf_counter() - started
    if sheet is not None:
        report.preview_tiles = sheet.save(preview)
    (out / "summary.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    return report


def _record(report: SynthReport, result, sheet: ContactSheet | None, thumb: np.ndarray) -> None:
    report.written[result.label] += 1
    report.modes[result.mode] += 1
    report.styles[result.style.split(":")[0]] += 1
    if sheet is not None:
        sheet.add(result.mode, result.style, thumb)


def _image_items(src, out, synth, seed, limit, report, sheet, on_total) -> Iterator[tuple[list[dict], Path]]:
    found = find_images([src])
    if limit is not None:
        found = found[:limit]
    if on_total:
        on_total(len(found))
    base = src if src.is_dir() else src.parent
    for item in found:
        report.sources += 1
        if item.error:
            report.skip("corrupt file", str(item.error))
            yield [], item.path
            continue
        rel = Path(item.path).relative_to(base) if Path(item.path).is_relative_to(base) else Path(Path(item.path).name)
        rows = []
        try:
            image = read_image(item.path)
            fit = synth.fit_face(image)
        except InputError as exc:
            report.skip("corrupt file", str(exc))
            yield [], item.path
            continue
        except SkipFace as exc:
            report.skip(exc.reason, f"{item.path}: {exc.detail or exc.reason}")
            yield [], item.path
            continue
        rng = face_rng(seed, str(rel))
        report.faces_used += 1
        for k, (mode, style) in enumerate(synth.plan(rng)):
            result = synth.put_mask_in_frame(image, fit.pose, mode, style, rng)
            if result is None:
                report.skip("mask out of frame", f"{item.path}: no {WEAR_MODES[mode]} mode keeps the mask inside the image")
                continue
            target = out / result.label / f"{_safe_stem(rel)}__{k}_{result.mode}_{style}.jpg"
            write_jpeg(target, result.image, quality=92)
            rows.append(_manifest_row(Path(item.path), fit, result, target, out))
            _record(report, result, sheet, fit_tile(result.image))
        yield rows, item.path


def _voc_items(src, out, synth, seed, limit, report, sheet, on_total) -> Iterator[tuple[list[dict], Path]]:
    """Each ``without_mask`` box of each scene is masked; other boxes keep their labels."""
    from ..data.labels import map_label
    from ..data.voc import VocFolder, image_for, read_voc_file, write_voc

    folder = VocFolder.find(src)
    xml_files = folder.xml_files()
    if limit is not None:
        xml_files = xml_files[:limit]
    if on_total:
        on_total(len(xml_files))
    by_stem = folder.images_by_stem()
    for xml_path in xml_files:
        report.sources += 1
        image_path = None
        try:  # malformed XML, no image for it, an unreadable image
            annotation = read_voc_file(xml_path)
            image_path = image_for(annotation, xml_path, by_stem)
            if image_path is None:
                raise InputError(xml_path, "no image for this annotation")
            image = read_image(image_path)
        except (DatasetError, InputError) as exc:
            report.skip("corrupt file", str(exc))
            yield [], image_path or xml_path
            continue
        targets = []  # (index of the object, fit)
        for index, obj in enumerate(annotation.objects):
            if map_label(obj.name) != Label.NO_MASK:
                continue
            box = np.array(obj.box, np.float32)
            if not np.isfinite(box).all():
                report.skip("landmarks missing", f"{xml_path}: unreadable box")
                continue
            try:
                targets.append((index, _fit_in_crop(synth, image, box)))
            except SkipFace as exc:
                report.skip(exc.reason, f"{image_path} box {box.round().astype(int).tolist()}: {exc.detail or exc.reason}")
        if not targets:
            yield [], image_path
            continue
        rng = face_rng(seed, image_path.name)
        plans = [synth.plan(rng) for _ in targets]
        report.faces_used += len(targets)
        rows = []
        for k in range(max(len(p) for p in plans)):
            edited, objects = image, list(annotation.objects)
            out_name = f"{image_path.stem}__synth{k}.jpg"
            target_img = out / "images" / out_name
            done = []
            for (index, fit), plan in zip(targets, plans):
                if k >= len(plan):
                    continue
                mode, style = plan[k]
                result = synth.put_mask_in_frame(edited, fit.pose, mode, style, rng)
                if result is None:
                    report.skip("mask out of frame", f"{image_path}: no {WEAR_MODES[mode]} mode keeps the mask inside the image")
                    continue
                edited = result.image
                objects[index] = replace(objects[index], name=VOC_NAMES[result.label])
                done.append((fit, result))
            if not done:
                continue
            write_jpeg(target_img, edited, quality=92)
            height, width = edited.shape[:2]
            write_voc(out / "annotations" / f"{Path(out_name).stem}.xml",
                      replace(annotation, filename=out_name, width=width, height=height, objects=tuple(objects)))
            for fit, result in done:
                rows.append(_manifest_row(image_path, fit, result, target_img, out))
                _record(report, result, sheet, face_thumbnail(edited, fit.box))
        yield rows, image_path


def _fit_in_crop(synth: MaskSynthesizer, image: np.ndarray, box: np.ndarray):
    """Detect inside a margin around an annotated box (small faces get upscaled by the detector)."""
    h, w = image.shape[:2]
    size = float(min(box[2] - box[0], box[3] - box[1]))
    if size < synth.min_face:
        raise SkipFace("too small", f"{size:.0f} px < --min-face {synth.min_face:g}")
    m = 0.5 * max(box[2] - box[0], box[3] - box[1])
    x0, y0 = int(max(0, box[0] - m)), int(max(0, box[1] - m))
    x1, y1 = int(min(w, box[2] + m)), int(min(h, box[3] + m))
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise SkipFace("box outside image", f"box {[round(float(v)) for v in box]} has no part inside {w}x{h}")
    offset = np.array([x0, y0], np.float32)
    fit = synth.fit_face(image[y0:y1, x0:x1], near_box=box - np.tile(offset, 2))
    from .geometry import face_pose

    landmarks = fit.landmarks + offset
    return type(fit)(box=fit.box + np.tile(offset, 2), landmarks=landmarks, pose=face_pose(landmarks))
