"""``report.json`` + ``report.md`` for an evaluation run."""

from __future__ import annotations

import json
import math
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from ..faces import LABELS

COMPARISON_COLUMNS = [
    ("name", "system"),
    ("face_ap50", "face AP@.5"),
    ("mask_recall50", "recall masked faces @.5"),
    ("map50_2class", "2-class mAP@.5"),
    ("map50_3class", "3-class mAP@.5"),
    ("precision30", "P @.3"),
    ("recall30", "R @.3"),
    ("precision50", "P @.5"),
    ("recall50", "R @.5"),
    ("median_ms", "median ms/image"),
]


def json_ready(value: Any) -> Any:
    """NaN/inf -> None (strict JSON), numpy scalars -> Python numbers, paths -> strings."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_info() -> dict:
    """What produced the report: the command line, MaskWatch's version, the time."""
    from .. import __version__

    return {
        "command": " ".join(shlex.quote(a) for a in ["maskwatch", *sys.argv[1:]]),
        "maskwatch_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def model_info(name: str, path: str | Path | None) -> dict:
    """Name, file and SHA-256 of a model file (hash None when the file is unknown or unreadable)."""
    from ..registry import sha256_of

    digest = None
    if path is not None:
        try:
            digest = sha256_of(path)
        except OSError:
            digest = None
    return {"name": name, "path": None if path is None else str(path), "sha256": digest}


def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def comparison_rows(runs: Sequence[dict]) -> list[list[Any]]:
    """Rows of the side-by-side table (milliseconds already formatted with one decimal)."""
    return [[fmt(run.get(key), 1) if key == "median_ms" else run.get(key) for key, _ in COMPARISON_COLUMNS]
            for run in runs]


def _dataset_md(dataset: dict) -> list[str]:
    out = ["## Dataset", "", f"- path: `{dataset['path']}` (format: {dataset['format']})",
           f"- images evaluated: {dataset.get('evaluated_images')} of {dataset['images']}; their faces by state: "
           + ", ".join(f"{k} {v}" for k, v in dataset["faces_by_state"].items())]
    for line in dataset.get("problem_lines", []):
        out.append(f"- dataset problem: {line}")
    for key, info in dataset.get("left_out", {}).items():
        if info["count"]:
            out.append(f"- {key.replace('_', ' ')}: {info['count']} (e.g. {', '.join(info['examples'])})")
    return out + [""]


def detection_markdown(report: dict) -> str:
    """Tables of a detection report (the dict written to report.json, before json_ready)."""
    out = ["# MaskWatch detection evaluation", "", f"`{report['run']['command']}`", ""]
    out += _dataset_md(report["dataset"])
    out += ["## Side by side", "", md_table([h for _, h in COMPARISON_COLUMNS], comparison_rows(report["runs"])), ""]
    out += [f"- detector {f['name']} could not run: {f['error']}" for f in report.get("failed_detectors", [])]
    for run in report["runs"]:
        m = run["metrics"]
        out += [f"## {run['name']}", "",
                f"Operating point: score >= {fmt(m['operating_score'], 2)}; AP over predictions with score >= "
                f"{fmt(run.get('min_score'), 2)}. Images: {m['images']}, ground-truth faces: {m['gt_faces']}.", ""]
        rows = []
        for iou in ("0.3", "0.5"):
            op = m["operating_point"][f"iou_{iou}"]
            rows.append([iou, op["tp"], op["fp"], op["fn"], op["precision"], op["recall"], op["f1"],
                         *(op["recall_by_state"][k] for k in LABELS)])
        out += ["### Faces found (class-agnostic)", "",
                md_table(["IoU", "TP", "FP", "FN", "precision", "recall", "F1", *(f"recall {k}" for k in LABELS)],
                         rows), ""]
        ap_rows = [["face", m["face_ap"]["all"]["ap50"], m["face_ap"]["all"]["ap50_95"]]]
        ap_rows += [[k, m["class_ap"]["all"][k]["ap50"], m["class_ap"]["all"][k]["ap50_95"]] for k in LABELS]
        ap_rows += [["2-class mAP (mask, no_mask; incorrect ignored)", m["map"]["2class"]["map50"],
                     m["map"]["2class"]["map50_95"]],
                    ["3-class mAP", m["map"]["3class"]["map50"], m["map"]["3class"]["map50_95"]]]
        out += ["### Average precision", "", md_table(["", "AP@.5", "AP@.5:.95"], ap_rows), ""]
        size_rows = [[b, m["face_ap"][b]["gt_faces"], m["face_ap"][b]["ap50"], m["face_ap"][b]["recall50"],
                      m["map_by_size"][b]["2class"]["map50"], m["map_by_size"][b]["3class"]["map50"]]
                     for b in ("small", "medium", "large")]
        out += ["### By face size (sqrt of box area: small < 32 px, medium 32-96, large > 96)", "",
                md_table(["size", "gt faces", "face AP@.5", "recall @.5 (operating point)", "2-class mAP@.5",
                          "3-class mAP@.5"], size_rows), ""]
        in_buckets = sum(m["face_ap"][b]["gt_faces"] for b in ("small", "medium", "large"))
        if in_buckets > m["face_ap"]["all"]["gt_faces"]:
            out += [f"{in_buckets - m['face_ap']['all']['gt_faces']} face(s) exactly 32 or 96 px count in both "
                    f"neighbouring buckets (COCO's size ranges include both ends), so the counts add to {in_buckets} "
                    f"for {m['face_ap']['all']['gt_faces']} faces.", ""]
        conf = m["confusion_iou_0.5"]
        if conf["states_available"]:
            rows = [[label, *counts] for label, counts in zip(conf["rows_true"], conf["matrix"])]
            out += ["### States of faces matched at IoU 0.5 (rows: true, columns: predicted)", "",
                    md_table(["true \\ predicted", *conf["columns_predicted"]], rows), ""]
        for title, file in run.get("plots", {}).items():
            out.append(f"![{title}]({file})")
        out.append("")
    return "\n".join(out)


def classification_markdown(report: dict) -> str:
    m = report["metrics"]
    out = ["# MaskWatch classification evaluation", "", f"`{report['run']['command']}`", ""]
    out += _dataset_md(report["dataset"])
    out += [f"Model: `{report['model']['path']}` (sha256 {report['model']['sha256']})", "",
            f"Accuracy {fmt(m['accuracy'])} on {m['samples']} faces; macro F1 {fmt(m['macro_f1'])}; "
            f"ECE {fmt(m['calibration']['ece'])}.", ""]
    two = m.get("mask_vs_no_mask")
    if two:
        out += [f"Mask vs no_mask (only those two states compete, on the {two['samples']} faces that are one of "
                f"them): accuracy {fmt(two['accuracy'])}.", ""]
    rows = [[k, v["support"], v["precision"], v["recall"], f"{fmt(v['recall_ci95'][0])}–{fmt(v['recall_ci95'][1])}",
             v["f1"], v["ap"]] for k, v in m["per_class"].items()]
    out += ["Each face gets the state with the highest probability. Recall 95 % CI: Wilson interval. AP: p(state) "
            "ranking each state against the others.", "",
            md_table(["state", "support", "precision", "recall", "recall 95% CI", "F1", "AP"], rows), ""]
    floors = list(next(iter(m["per_class"].values()))["best_recall_at_precision"])
    rows = [[k] + [f"{fmt(b['recall'])} (p ≥ {fmt(b['threshold'])}, P {fmt(b['precision'])})"
                   for b in v["best_recall_at_precision"].values()] for k, v in m["per_class"].items()]
    out += ["Best recall any threshold on p(state) reaches at a precision floor:", "",
            md_table(["state", *[f"precision ≥ {f}" for f in floors]], rows), ""]
    thresholds = [p["threshold"] for p in next(iter(m["per_class"].values()))["at_threshold"]]
    rows = [[k] + [f"{fmt(p['precision'], 2)} / {fmt(p['recall'], 2)}" for p in v["at_threshold"]]
            for k, v in m["per_class"].items()]
    out += ["Precision / recall when p(state) ≥ threshold:", "",
            md_table(["state", *[f"≥ {t}" for t in thresholds]], rows), ""]
    conf = m["confusion"]
    out += ["Confusion matrix (rows: true, columns: predicted)", "",
            md_table(["true \\ predicted", *conf["columns_predicted"]],
                     [[label, *counts] for label, counts in zip(conf["rows_true"], conf["matrix"])]), ""]
    for title, file in report.get("plots", {}).items():
        out.append(f"![{title}]({file})")
    return "\n".join(out) + "\n"


def write_report(directory: str | Path, report: dict, markdown: str) -> tuple[Path, Path]:
    """Write ``report.json`` (strict JSON: NaN becomes null) and ``report.md`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "report.json", directory / "report.md"
    json_path.write_text(json.dumps(json_ready(report), indent=2, allow_nan=False) + "\n")
    md_path.write_text(markdown)
    return json_path, md_path
