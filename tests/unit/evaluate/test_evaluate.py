"""maskwatch.evaluate and `maskwatch eval`: exact small cases, a pycocotools cross-check, the CLI on synthetic VOC."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from maskwatch.data.dataset import AnnotatedImage
from maskwatch.detectors.centerface import DEFAULT_MIN_SCORE
from maskwatch.evaluate import evaluate_classification, evaluate_detections, match_image
from maskwatch.faces import LABELS, Faces


def gt_image(key: str, boxes, labels, size=(640, 480)) -> AnnotatedImage:
    return AnnotatedImage(path=Path(f"/nonexistent/{key}.jpg"), width=size[0], height=size[1],
                          boxes=np.asarray(boxes, np.float32).reshape(-1, 4), labels=list(labels))


def faces(boxes, scores, probs=None) -> Faces:
    return Faces(boxes=np.asarray(boxes, np.float32).reshape(-1, 4), scores=scores, probs=probs)


# -- exact small cases --------------------------------------------------------------------------------
def test_operating_point_counts_and_face_ap_are_exact():
    gt = gt_image("a", [[0, 0, 100, 100], [200, 200, 300, 300]], ["mask", "no_mask"])
    pred = faces([[0, 0, 100, 100], [400, 0, 450, 50], [0, 0, 100, 100], [200, 200, 300, 300]],
                 [0.9, 0.8, 0.7, 0.2])  # TP, FP, duplicate (FP), TP below the operating point
    m = evaluate_detections([gt], {"a": pred}, operating_score=0.5).metrics
    op = m["operating_point"]["iou_0.5"]
    assert (op["tp"], op["fp"], op["fn"]) == (1, 2, 1)
    assert op["precision"] == pytest.approx(1 / 3) and op["recall"] == pytest.approx(0.5)
    assert op["f1"] == pytest.approx(2 * (1 / 3) * 0.5 / (1 / 3 + 0.5))
    by_state = op["recall_by_state"]
    assert (by_state["mask"], by_state["no_mask"]) == (1.0, 0.0) and np.isnan(by_state["incorrect"])
    # AP over all predictions: ranks TP(1/1), FP, FP, TP(2/4): envelope 1.0 up to recall .5, then .5 up to 1
    assert m["face_ap"]["all"]["ap50"] == pytest.approx((51 * 1.0 + 50 * 0.5) / 101)
    assert np.isnan(m["map"]["3class"]["map50"])  # no probs: class APs n/a
    assert m["confusion_iou_0.5"]["matrix"][1][3] == 1  # the no_mask face is missed at the operating point


def test_iou_03_accepts_a_loose_box_that_iou_05_rejects():
    gt = gt_image("a", [[0, 0, 100, 100]], ["mask"])
    loose = faces([[0, 0, 100, 40]], [0.9])  # IoU 0.4
    m = evaluate_detections([gt], {"a": loose}, operating_score=0.5).metrics
    assert m["operating_point"]["iou_0.3"]["tp"] == 1 and m["operating_point"]["iou_0.3"]["fp"] == 0
    assert m["operating_point"]["iou_0.5"]["tp"] == 0 and m["operating_point"]["iou_0.5"]["fn"] == 1


def test_incorrect_faces_are_ignored_in_two_class_map_but_count_in_three_class():
    gt = gt_image("a", [[0, 0, 100, 100], [200, 0, 300, 100]], ["mask", "incorrect"])
    pred = faces([[0, 0, 100, 100], [200, 0, 300, 100]], [1.0, 1.0],
                 probs=[[0.8, 0.2, 0.0], [0.9, 0.0, 0.1]])  # the incorrect face is called 'mask' most surely
    m = evaluate_detections([gt], {"a": pred}, operating_score=0.5).metrics
    ap = m["class_ap"]["all"]
    assert ap["mask"]["ap50"] == pytest.approx(0.5)  # FP at rank 1, TP at rank 2
    assert ap["mask_2class"]["ap50"] == pytest.approx(1.0)  # the match to the ignored face counts neither way
    assert ap["incorrect"]["ap50"] == pytest.approx(1.0)  # 0.1 on its face outranks 0.0 on the mask face
    assert np.isnan(ap["no_mask"]["ap50"])  # no no_mask ground truth: left out of the mean
    assert m["map"]["2class"]["map50"] == pytest.approx(1.0)
    assert m["map"]["3class"]["map50"] == pytest.approx((0.5 + 1.0) / 2)
    conf = np.array(m["confusion_iou_0.5"]["matrix"])
    assert conf[0, 0] == 1 and conf[2, 0] == 1 and conf.sum() == 2


def test_match_image_prefers_real_faces_over_ignored_ones_and_crowds_absorb_duplicates():
    gts = np.array([[0, 0, 100, 100], [10, 0, 110, 100]], np.float32)
    preds = np.array([[5, 0, 105, 100], [5, 0, 105, 100]], np.float32)
    pm, pig, gm = match_image(preds, np.array([0.9, 0.8]), gts, 0.5, gt_ignore=np.array([True, False]))
    assert pm[0] == 1 and not pig[0]  # the counted gt wins although IoUs tie
    assert pig[1] and pm[1] == -1  # the duplicate falls back to the ignored crowd region
    assert list(gm) == [-1, 0]


def test_size_buckets_split_faces_at_32_and_96_pixels():
    gt = gt_image("a", [[0, 0, 20, 20], [100, 100, 160, 160], [300, 0, 500, 200]], ["mask"] * 3)
    pred = faces([[0, 0, 20, 20], [300, 0, 500, 200]], [0.9, 0.9])
    m = evaluate_detections([gt], {"a": pred}, operating_score=0.5).metrics["face_ap"]
    assert [m[b]["gt_faces"] for b in ("small", "medium", "large")] == [1, 1, 1]
    assert m["small"]["ap50"] == pytest.approx(1.0) and m["large"]["ap50"] == pytest.approx(1.0)
    assert m["medium"]["ap50"] == pytest.approx(0.0) and m["medium"]["recall50"] == 0.0


# -- cross-check against pycocotools -----------------------------------------------------------------
def _random_case(seed: int, n_images: int = 25):
    rng = np.random.default_rng(seed)
    images, preds = [], {}
    for i in range(n_images):
        n = int(rng.integers(0, 8))
        xy = rng.uniform(0, 500, (n, 2))
        wh = rng.choice([rng.uniform(8, 30), rng.uniform(33, 90), rng.uniform(100, 200)], size=(n, 1)) * \
            rng.uniform(0.7, 1.3, (n, 2))
        boxes = np.hstack([xy, xy + wh])
        labels = list(rng.choice(LABELS, size=n, p=[0.6, 0.3, 0.1]))
        images.append(gt_image(f"img{i}", boxes, labels))
        kept = boxes[rng.random(n) < 0.8]
        jitter = kept + rng.normal(0, 0.12, kept.shape) * np.repeat(kept[:, 2:] - kept[:, :2], 2, axis=1)
        extra = rng.uniform(0, 500, (int(rng.integers(0, 4)), 2))
        extra = np.hstack([extra, extra + rng.uniform(10, 150, extra.shape)])
        pb = np.vstack([jitter, extra]) if len(jitter) or len(extra) else np.zeros((0, 4))
        pb[:, 2:] = np.maximum(pb[:, 2:], pb[:, :2] + 1)
        probs = rng.dirichlet(np.ones(3) * 0.7, size=len(pb)).astype(np.float32)
        preds[f"img{i}"] = faces(pb, rng.uniform(0.05, 1, len(pb)), probs)
    return images, preds


def _coco_stats(images, preds, class_wise: bool) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    cats = list(LABELS) if class_wise else ["face"]
    gt = {"images": [], "annotations": [], "categories": [{"id": i + 1, "name": n} for i, n in enumerate(cats)]}
    dets = []
    for image_id, img in enumerate(images, 1):
        gt["images"].append({"id": image_id, "width": img.width, "height": img.height})
        for box, label in zip(img.boxes, img.labels):
            w, h = float(box[2] - box[0]), float(box[3] - box[1])
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": image_id,
                                      "category_id": cats.index(label) + 1 if class_wise else 1,
                                      "bbox": [float(box[0]), float(box[1]), w, h], "area": w * h, "iscrowd": 0})
        f = preds[img.key]
        for j, box in enumerate(f.boxes):
            bbox = [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]
            if class_wise:
                dets += [{"image_id": image_id, "category_id": c + 1, "bbox": bbox,
                          "score": float(f.scores[j] * f.probs[j, c])} for c in range(3)]
            else:
                dets.append({"image_id": image_id, "category_id": 1, "bbox": bbox, "score": float(f.scores[j])})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


@pytest.mark.parametrize("seed", [0, 1])
def test_ap_matches_pycocotools_on_random_detections(seed):
    images, preds = _random_case(seed)
    m = evaluate_detections(images, preds, operating_score=0.5).metrics
    face = _coco_stats(images, preds, class_wise=False)
    assert m["face_ap"]["all"]["ap50"] == pytest.approx(face[1], abs=1e-3)
    assert m["face_ap"]["all"]["ap50_95"] == pytest.approx(face[0], abs=1e-3)
    for k, bucket in zip((3, 4, 5), ("small", "medium", "large")):
        assert m["face_ap"][bucket]["ap50_95"] == pytest.approx(face[k], abs=1e-3)
    per_class = _coco_stats(images, preds, class_wise=True)
    assert m["map"]["3class"]["map50"] == pytest.approx(per_class[1], abs=1e-3)
    assert m["map"]["3class"]["map50_95"] == pytest.approx(per_class[0], abs=1e-3)


# -- classification ---------------------------------------------------------------------------------
def test_classification_metrics_and_ece_are_exact():
    labels = ["mask", "mask", "no_mask", "no_mask"]
    probs = [[0.9, 0.1, 0], [0.3, 0.7, 0], [0.2, 0.8, 0], [0.1, 0.6, 0.3]]
    m = evaluate_classification(labels, probs)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["confusion"]["matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert m["per_class"]["mask"]["precision"] == 1.0 and m["per_class"]["mask"]["recall"] == 0.5
    assert m["per_class"]["no_mask"]["precision"] == pytest.approx(2 / 3)
    assert np.isnan(m["per_class"]["incorrect"]["f1"])
    # bins: 0.6 (right), 0.7 (wrong) ; 0.8 (right), 0.9 (right)
    expected = 0.25 * abs(1 - 0.6) + 0.25 * abs(0 - 0.7) + 0.25 * abs(1 - 0.8) + 0.25 * abs(1 - 0.9)
    assert m["calibration"]["ece"] == pytest.approx(expected)


def test_classification_operating_points_mask_vs_no_mask_and_interval():
    # p(incorrect) ranks: 0.9 inc, 0.8 mask, 0.7 inc, 0.6 inc, 0.2 no_mask, 0.1 inc
    labels = ["incorrect", "mask", "incorrect", "incorrect", "no_mask", "incorrect"]
    probs = [[0.05, 0.05, 0.9], [0.1, 0.1, 0.8], [0.2, 0.1, 0.7], [0.1, 0.3, 0.6], [0.3, 0.5, 0.2], [0.6, 0.3, 0.1]]
    inc = evaluate_classification(labels, probs)["per_class"]["incorrect"]
    at = {p["threshold"]: (p["precision"], p["recall"]) for p in inc["at_threshold"]}
    assert at[0.7] == pytest.approx((2 / 3, 0.5))  # 0.9, 0.8, 0.7 kept: two of them incorrect
    assert at[0.5] == pytest.approx((3 / 4, 0.75))
    assert at[0.9] == pytest.approx((1.0, 0.25))
    best = inc["best_recall_at_precision"]
    assert best["0.8"] == pytest.approx({"recall": 0.25, "precision": 1.0, "threshold": 0.9})
    assert best["0.9"]["recall"] == pytest.approx(0.25)
    # AP (101-point): precision envelope 1.0 up to recall 0.25, then 0.75 up to 0.75, then 4/6 to 1.0
    assert inc["ap"] == pytest.approx((26 * 1.0 + 50 * 0.75 + 25 * 4 / 6) / 101)
    low, high = inc["recall_ci95"]  # 3 of 4 found by argmax
    assert 0.2 < low < 0.75 < high < 1.0
    # only the mask and no_mask faces count, and only those two columns compete
    m = evaluate_classification(["mask", "no_mask", "incorrect"], [[0.3, 0.2, 0.5], [0.1, 0.3, 0.6], [1, 0, 0]])
    assert m["mask_vs_no_mask"] == {"accuracy": 1.0, "samples": 2}
    assert m["accuracy"] == 0.0


def test_operating_points_never_split_tied_scores():
    # both faces score 0.5; no threshold keeps only the first, so precision 1.0 at recall 0.5 is not reachable
    inc = evaluate_classification(["incorrect", "mask"], [[0.5, 0, 0.5], [0.5, 0, 0.5]])["per_class"]["incorrect"]
    assert inc["best_recall_at_precision"]["0.8"]["recall"] == 0.0


# -- the CLI on a tiny synthetic VOC dataset ----------------------------------------------------------
def _voc(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    rng = np.random.default_rng(0)
    objects = {"s0": [("with_mask", (10, 10, 60, 60)), ("without_mask", (100, 20, 150, 80))],
               "s1": [("mask_weared_incorrect", (30, 30, 90, 90))],
               "s2": [("with_mask", (40, 40, 120, 120))]}
    for stem, objs in objects.items():
        cv2.imwrite(str(root / "images" / f"{stem}.jpg"), rng.integers(0, 255, (160, 200, 3), dtype=np.uint8))
        xml = "".join(f"<object><name>{n}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
                      f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for n, b in objs)
        (root / "annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>200</width><height>160</height></size>"
            f"{xml}</annotation>")
    cv2.imwrite(str(root / "images" / "broken.jpg"), np.zeros((10, 10, 3), np.uint8))
    (root / "annotations" / "broken.xml").write_text("<annotation><object>")
    return root


def _predictions(path: Path) -> Path:
    def face(box, score, probs):
        return {"box": box, "score": score, "label": LABELS[int(np.argmax(probs))],
                "probs": dict(zip(LABELS, probs)), "landmarks": None}

    lines = [
        {"image": "x/s0.jpg", "ms": 10, "faces": [face([10, 10, 60, 60], 0.9, [0.9, 0.1, 0.0]),
                                                  face([100, 20, 150, 80], 0.8, [0.2, 0.7, 0.1])]},
        {"image": "x/s1.jpg", "ms": 12, "faces": [face([30, 30, 90, 90], 0.7, [0.6, 0.0, 0.4])]},
        {"image": "x/s2.jpg", "ms": 14, "faces": []},
        {"image": "x/elsewhere.jpg", "ms": 9, "faces": [face([0, 0, 5, 5], 0.9, [1, 0, 0])]},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n{not json\n")
    return path


@pytest.fixture()
def cli():
    from maskwatch.cli import app

    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def test_eval_detect_on_predictions_writes_a_full_report(tmp_path, cli):
    data = _voc(tmp_path / "voc")
    preds = _predictions(tmp_path / "detections.jsonl")
    result = cli("eval", "detect", data, "--predictions", preds, "--report", tmp_path / "out",
                 "--operating-score", "0.5")
    assert result.exit_code == 0, result.output
    assert "malformed XML: 1" in result.output
    assert "predicted image not in dataset (ignored): 1" in result.output
    assert "malformed predictions line (skipped): 1" in result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {"kind", "run", "dataset", "runs"} <= set(report)
    assert {"command", "maskwatch_version"} <= set(report["run"])
    assert report["dataset"]["problems"]["counts"]["malformed XML"] == 1
    run = report["runs"][0]
    assert run["left_out"]["predicted image not in dataset (ignored)"]["count"] == 1
    assert run["models"][0]["sha256"] and run["median_ms"] == 12.0
    m = run["metrics"]
    assert m["operating_point"]["iou_0.5"]["tp"] == 3
    assert m["operating_point"]["iou_0.5"]["fn"] == 1  # s2's face
    assert m["map"]["3class"]["map50"] is not None
    for plot in run["plots"].values():
        assert (tmp_path / "out" / plot).stat().st_size > 1000
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| 0.5 | 3 | 0 | 1 |" in md


def test_eval_detect_counts_dataset_images_missing_from_predictions(tmp_path, cli):
    data = _voc(tmp_path / "voc")
    preds = tmp_path / "few.jsonl"
    preds.write_text(json.dumps({"image": "s2.jpg", "faces": []}) + "\n")
    result = cli("eval", "detect", data, "--predictions", preds, "--report", tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    run = report["runs"][0]
    assert run["left_out"]["dataset image without predictions (left out)"]["count"] == 2
    assert run["metrics"]["images"] == 1 and run["metrics"]["gt_faces"] == 1


def test_eval_split_writes_disjoint_lists_and_split_file_selects(tmp_path, cli):
    data = _voc(tmp_path / "voc")
    result = cli("eval", "split", data, "--seed", "0", "--out", tmp_path / "splits")
    assert result.exit_code == 0, result.output
    stems = [s for name in ("train", "val", "test")
             for s in (tmp_path / "splits" / f"{name}.txt").read_text().split()]
    assert sorted(stems) == ["s0", "s1", "s2"]
    (tmp_path / "keep.txt").write_text("s0\nnot_there\n")
    result = cli("eval", "detect", data, "--predictions", _predictions(tmp_path / "p.jsonl"),
                 "--split-file", tmp_path / "keep.txt", "--report", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "split-file stem not in dataset: 1" in result.output
    assert json.loads((tmp_path / "out" / "report.json").read_text())["runs"][0]["metrics"]["images"] == 1


def test_eval_errors_are_one_line(tmp_path, cli):
    result = cli("eval", "detect", tmp_path / "missing", "--predictions", tmp_path / "none.jsonl")
    assert result.exit_code == 2
    assert result.output.strip().startswith("error:") and len(result.output.strip().splitlines()) == 1


def _tiny_classifier(path: Path) -> Path:
    """An ONNX model with the classifier's interface: mean colour -> linear -> softmax."""
    import onnx
    from onnx import TensorProto, helper

    w = np.array([[0.05, 0, 0], [0, 0.05, 0], [0, 0, 0.05]], np.float32)  # red-ish crops -> 'mask' (RGB input)
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["input"], ["mean"], axes=[2, 3], keepdims=0),
         helper.make_node("MatMul", ["mean", "w"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probs"], axis=1)],
        "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, 16, 16])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor("w", TensorProto.FLOAT, [3, 3], w.flatten())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    helper.set_model_props(model, {"crop_size": "16", "crop_context": "0.0", "labels": json.dumps(list(LABELS))})
    onnx.save(model, path)
    return path


def test_eval_classify_on_voc_crops_with_a_tiny_model(tmp_path, cli):
    root = tmp_path / "voc"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, :100] = (0, 0, 250)  # BGR red: left face looks 'mask' to the tiny model
    image[:, 100:] = (0, 250, 0)  # green: 'no_mask'
    cv2.imwrite(str(root / "images" / "a.png"), image)
    objs = [("with_mask", (10, 10, 90, 90)), ("with_mask", (110, 10, 190, 90))]  # the second is misclassified
    xml = "".join(f"<object><name>{n}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
                  f"<ymax>{b[3]}</ymax></bndbox></object>" for n, b in objs)
    (root / "annotations" / "a.xml").write_text(f"<annotation><filename>a.png</filename>{xml}</annotation>")
    result = cli("eval", "classify", root, "--model", _tiny_classifier(tmp_path / "tiny.onnx"),
                 "--report", tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["metrics"]["accuracy"] == pytest.approx(0.5)
    assert report["metrics"]["confusion"]["matrix"][0] == [1, 1, 0]
    assert report["model"]["sha256"] and len(report["misclassified"]) == 1
    assert report["metrics"]["mask_vs_no_mask"]["samples"] == 2
    assert "Best recall any threshold" in (tmp_path / "out" / "report.md").read_text()
    for plot in ("confusion.png", "reliability.png", "gallery_misclassified.png", "pr.png"):
        assert (tmp_path / "out" / plot).is_file()


def test_eval_detect_runs_detectors_with_a_classifier_and_goes_on_past_a_bad_one(tmp_path, cli):
    data = _voc(tmp_path / "voc")
    model = _tiny_classifier(tmp_path / "tiny.onnx")
    result = cli("eval", "detect", data, "--detector", "centerface,nosuch", "--classifier-model", model,
                 "--threads", "1", "--report", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert "error: detector nosuch: unknown detector 'nosuch'" in result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [r["name"] for r in report["runs"]] == ["centerface+classifier"]
    assert report["failed_detectors"][0]["name"] == "nosuch"
    run = report["runs"][0]
    assert run["metrics"]["images"] == 3 and run["metrics"]["operating_score"] == pytest.approx(DEFAULT_MIN_SCORE)
    assert [m["name"] for m in run["models"]] == ["centerface", "mask-classifier"]
    assert all(len(m["sha256"]) == 64 for m in run["models"])
    assert run["median_ms"] > 0
