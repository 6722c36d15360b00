"""`maskwatch train-detector`: the CenterFace network in PyTorch, its targets, tiny training, export, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")

import torch  # noqa: E402

from tests.helpers.sample_data import copy_kaggle_scenes  # noqa: E402
from maskwatch.cli import app  # noqa: E402
from maskwatch.detectors.centerface import decode_centerface  # noqa: E402
from maskwatch.registry import resolve_model  # noqa: E402
from maskwatch.train.detector_data import Scene, Teacher, build_targets, random_crop  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def stock_path() -> str:
    return str(resolve_model("centerface"))


@pytest.fixture(scope="module")
def example_bgr():
    from maskwatch.cli.detect import example_image_path
    from maskwatch.images import read_image

    return read_image(example_image_path())


def test_torch_network_matches_onnx_runtime_on_every_head(stock_path, example_bgr):
    import cv2
    import onnxruntime as ort

    from maskwatch.detectors.centerface import OUTPUT_NAMES, _dynamic_model_bytes
    from maskwatch.train.detector_net import CenterFaceNet

    image = cv2.resize(example_bgr, (384, 288))
    blob = image[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32).copy()
    ort_maps = ort.InferenceSession(_dynamic_model_bytes(stock_path)).run(OUTPUT_NAMES, {"input.1": blob})
    with torch.no_grad():
        out = CenterFaceNet(stock_path).eval()(torch.from_numpy(blob))
    for key, expected in zip(("heatmap", "size", "offset", "landmarks"), ort_maps):
        assert out[key].shape == expected.shape
        assert float(np.abs(out[key].numpy() - expected).max()) < 1e-3, key
    assert out["state"].shape == (1, 3, *expected.shape[2:])
    assert ort_maps[0].max() > 0.5  # the example photo has faces: a real comparison, not of zeros


def test_targets_decode_back_to_the_boxes_and_states():
    boxes = np.array([[40, 60, 100, 140], [200, 30, 216, 50]], np.float32)  # a face and a 16-px face
    labels = np.array([2, 1])
    t = build_targets(boxes, labels, 256, None)
    assert t["positive"].sum() == 2 and t["reg_mask"].sum() == 2
    state = np.zeros((3, 64, 64), np.float32)
    for k in range(3):
        state[k] = t["state"] == k
    faces = decode_centerface(t["heat"], t["size"], t["offset"], t["landmarks"], 0.5, 0.3, state)
    order = np.argsort(faces.boxes[:, 0])
    np.testing.assert_allclose(faces.boxes[order], boxes, atol=0.01)
    assert faces.probs[order].argmax(axis=1).tolist() == [2, 1]


def test_random_crop_boxes_follow_the_pixels_through_scale_flip_and_crop():
    image = np.zeros((300, 400, 3), np.uint8)
    image[100:180, 50:110] = 255  # one bright "face", off-centre so a missed flip shows
    scene = Scene(image=image, boxes=np.array([[50, 100, 110, 180]], np.float32), labels=np.array([0]),
                  name="square", source="test")
    flipped = 0
    for seed in range(12):
        crop, boxes, labels = random_crop(scene, np.random.default_rng(seed), 256)
        if not len(boxes):
            continue
        ys, xs = np.nonzero(crop.mean(axis=2) > 128)
        found = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
        visible = np.clip(boxes[0], 0, 256)
        assert np.abs(found - visible).max() <= 3, (seed, found, boxes[0])
        flipped += int(found[0] > 128)
    assert flipped  # some views were mirrored (the face then sits in the right half)


def test_teacher_landmarks_keep_left_eye_first_on_mirrored_crops(stock_path, example_bgr):
    import cv2

    crop = cv2.resize(example_bgr, (320, 320))[:, ::-1].copy()
    teacher = Teacher(stock_path)
    maps = teacher(crop)
    faces = decode_centerface(*maps, threshold=0.5, nms_iou=0.3)
    assert len(faces)
    t = build_targets(faces.boxes.copy(), np.zeros(len(faces), np.int64), 320, maps)
    ys, xs = np.nonzero(t["lm_mask"])
    assert len(ys)
    eye_x = t["landmarks"][1::2, ys, xs]  # x of the five points, per face
    assert (eye_x[0] < eye_x[1]).all()  # the eye on the image's left comes first


@pytest.fixture(scope="module")
def tiny_scenes(tmp_path_factory, kaggle_dir):
    root = tmp_path_factory.mktemp("scenes") / "voc"
    copy_kaggle_scenes(kaggle_dir, root, 30)
    (root / "annotations" / "broken.xml").write_text("<annotation><object>")
    return root


def test_unreadable_scene_images_are_counted_named_and_skipped(tiny_scenes, tmp_path):
    from maskwatch.train.detector_data import load_scenes

    root = tmp_path / "voc"
    shutil.copytree(tiny_scenes, root)
    first = sorted((root / "annotations").glob("maks*.xml"))[0]
    (root / "images" / "truncated.jpg").write_bytes((root / "images" / f"{first.stem}.jpg").read_bytes()[:300])
    (root / "annotations" / "truncated.xml").write_text(first.read_text().replace(f"{first.stem}.jpg", "truncated.jpg"))
    lines: list[str] = []
    scenes = load_scenes(root, lambda key: True, lines.append, "test")
    assert scenes.problems["unreadable image"] == 1
    assert any("truncated.jpg" in line and ("cannot be decoded" in line or "unreadable image" in line) for line in lines)
    assert any("malformed XML" in line for line in lines)
    assert len(scenes.scenes) == 30


def _train_detector(scenes, out, *extra):
    return runner.invoke(app, ["train-detector", "--voc", str(scenes), "--out", str(out), "--epochs", "1",
                               "--samples-per-epoch", "4", "--batch-size", "2", "--crop", "128", "--threads", "2",
                               "--workers", "0", *extra], catch_exceptions=False)


@pytest.mark.slow
def test_tiny_detector_training_exports_a_model_detect_can_use(tiny_scenes, tmp_path):
    out = tmp_path / "run"
    result = _train_detector(tiny_scenes, out)
    assert result.exit_code == 0, result.output
    assert "malformed XML" in result.output and "broken.xml" in result.output  # counted, named, went on
    for name in ("config.json", "history.jsonl", "curves.png", "best.pt", "last.pt", "metrics.json", "centerface_mask.onnx"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["onnx_max_abs_diff"] < 1e-3
    assert metrics["data"]["datasets"][str(tiny_scenes)]["val_scenes"] > 0

    from maskwatch.detectors import create_detector

    detector = create_detector("centerface-mask", model_path=str(out / "centerface_mask.onnx"), min_score=0.01)
    image = np.full((240, 320, 3), 128, np.uint8)
    faces = detector.detect(image)
    assert faces.probs is not None and faces.probs.shape == (len(faces), 3)

    resumed = _train_detector(tiny_scenes, out, "--resume", "--epochs", "2")
    assert resumed.exit_code == 0, resumed.output
    assert "resumed after epoch 1" in resumed.output
    assert len((out / "history.jsonl").read_text().splitlines()) == 2
    refused = _train_detector(tiny_scenes, out)
    assert refused.exit_code != 0 and "--resume" in refused.output


def test_synthetic_scenes_made_from_held_out_photos_are_dropped(tiny_scenes, tmp_path):
    from maskwatch.data import load_dataset
    from maskwatch.data.splits import dataset_splits
    from maskwatch.train.detector_run import gather_scenes

    splits = dataset_splits(load_dataset(tiny_scenes), seed=0)
    synth = tmp_path / "synth"
    (synth / "images").mkdir(parents=True)
    (synth / "annotations").mkdir()
    rows = []
    for split in ("train", "val"):
        stem = splits[split][0]
        shutil.copy(tiny_scenes / "images" / f"{stem}.jpg", synth / "images" / f"{stem}__synth0.jpg")
        shutil.copy(tiny_scenes / "annotations" / f"{stem}.xml", synth / "annotations" / f"{stem}__synth0.xml")
        rows.append({"source": str(tiny_scenes / "images" / f"{stem}.jpg"), "output": f"images/{stem}__synth0.jpg"})
    (synth / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    lines: list[str] = []
    train, _, val, summary = gather_scenes([(tiny_scenes, 1.0)], [(synth, 1.0)], lines.append)
    assert summary["synth"][str(synth)] == {"train_scenes": 1, "dropped_held_out": 1,
                                            "train_faces": summary["synth"][str(synth)]["train_faces"]}
    assert any("made from val / test photos" in line for line in lines)
    assert not {s.name for s in val} & {s.name for s in train}


def test_crop_must_be_a_multiple_of_32_and_a_dataset_is_needed(tiny_scenes, tmp_path):
    bad = _train_detector(tiny_scenes, tmp_path / "a", "--crop", "100")
    assert bad.exit_code != 0 and "multiple of 32" in bad.output
    none = runner.invoke(app, ["train-detector", "--out", str(tmp_path / "b")])
    assert none.exit_code != 0 and "--voc" in none.output


def test_a_stock_model_given_as_centerface_mask_is_a_clear_error(stock_path):
    from maskwatch.detectors import create_detector
    from maskwatch.errors import ModelError

    with pytest.raises(ModelError, match="not a MaskWatch centerface-mask model"):
        create_detector("centerface-mask", model_path=stock_path)
