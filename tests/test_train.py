"""`maskwatch train` on tiny data: run directory, resume, ONNX parity, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")

from maskwatch.cli import app  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory, shared_dir):
    root = tmp_path_factory.mktemp("tiny")
    kaggle = shared_dir / "data" / "kaggle-face-mask"
    voc = root / "voc"
    (voc / "images").mkdir(parents=True)
    (voc / "annotations").mkdir()
    names = sorted(p.stem for p in (kaggle / "annotations").glob("*.xml"))[:24]
    for stem in names:
        shutil.copy(kaggle / "images" / f"{stem}.jpg", voc / "images")
        shutil.copy(kaggle / "annotations" / f"{stem}.xml", voc / "annotations")
    (voc / "annotations" / "broken.xml").write_text("<annotation><object>")
    folders = root / "folders"
    src = shared_dir / "data" / "chandrikadeb7-faces"
    for cls in ("with_mask", "without_mask"):
        (folders / cls).mkdir(parents=True)
        for f in sorted((src / cls).glob("*.jpg"))[:20]:
            shutil.copy(f, folders / cls)
    (folders / "sunglasses").mkdir()
    shutil.copy(sorted((src / "with_mask").glob("*.jpg"))[0], folders / "sunglasses")
    (folders / "incorrect").mkdir()  # empty class folder
    return root


def _train(tiny, out, *extra):
    return runner.invoke(app, ["train", "--out", str(out), "--voc", str(tiny / "voc"), "--folders",
                               f"{tiny / 'folders'}:0.5", "--samples-per-epoch", "32", "--batch-size", "16",
                               "--threads", "2", "--cache", str(tiny / "cache"), *extra], catch_exceptions=False)


@pytest.mark.parametrize("arch", ["centerface", "scratch"])
def test_tiny_training_run_writes_everything(tiny_sets, tmp_path, arch):
    out = tmp_path / "run"
    result = _train(tiny_sets, out, "--arch", arch, "--epochs", "1")
    assert result.exit_code == 0, result.output
    for name in ("config.json", "metrics.json", "history.json", "learning_curve.png", "best.pt", "last.pt",
                 "mask_classifier.onnx", "split_manifest.jsonl"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["onnx_max_abs_diff"] < 1e-4  # ONNX Runtime and PyTorch agree on the same crops
    manifest = [json.loads(x) for x in (out / "split_manifest.jsonl").read_text().splitlines()]
    assert {m["split"] for m in manifest} <= {"train", "val", "test"}
    by_image = {}
    for m in manifest:  # faces of one photo never straddle splits
        by_image.setdefault(m["face"].split("#")[0], set()).add(m["split"])
    assert all(len(s) == 1 for s in by_image.values())
    text = result.output
    assert "broken.xml" in text and "malformed XML" in text
    assert "sunglasses" in text and "incorrect" in text  # unknown and empty class folders are named


def test_resume_continues_and_existing_dir_is_refused(tiny_sets, tmp_path):
    out = tmp_path / "run"
    assert _train(tiny_sets, out, "--arch", "scratch", "--epochs", "1").exit_code == 0
    refused = _train(tiny_sets, out, "--arch", "scratch", "--epochs", "1")
    assert refused.exit_code != 0 and "exists" in refused.output
    resumed = _train(tiny_sets, out, "--arch", "scratch", "--epochs", "2", "--resume")
    assert resumed.exit_code == 0, resumed.output
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]


def test_exported_model_loads_in_the_classifier(tiny_sets, tmp_path):
    from maskwatch.classifier import MaskClassifier

    out = tmp_path / "run"
    assert _train(tiny_sets, out, "--arch", "scratch", "--epochs", "1").exit_code == 0
    clf = MaskClassifier(str(out / "mask_classifier.onnx"))
    probs = clf.predict_crops(np.zeros((3, clf.size, clf.size, 3), np.uint8))
    assert probs.shape == (3, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_no_sources_is_an_error(tmp_path):
    result = runner.invoke(app, ["train", "--out", str(tmp_path / "r")])
    assert result.exit_code != 0 and "--voc" in result.output


def test_synthetic_faces_train_only_and_their_sources_are_not_unmasked_examples(tiny_sets, tmp_path):
    synth = tmp_path / "synth"
    (synth / "incorrect").mkdir(parents=True)
    sources = sorted((tiny_sets / "folders" / "without_mask").glob("*.jpg"))
    rows = []
    for i, src in enumerate(sources):
        out = f"incorrect/{src.stem}__0_nose.jpg"
        shutil.copy(src, synth / out)  # stand-in pixels; only the bookkeeping is tested here
        rows.append(json.dumps({"source": str(src.resolve()), "output": out, "label": "incorrect"}))
    (synth / "manifest.jsonl").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    result = _train(tiny_sets, out, "--synth", str(synth), "--arch", "scratch", "--epochs", "1", "--synth-share", "0.5")
    assert result.exit_code == 0, result.output
    manifest = [json.loads(x) for x in (out / "split_manifest.jsonl").read_text().splitlines()]
    synthetic = [m for m in manifest if m["source"].startswith("synth:")]
    assert synthetic and all(m["split"] == "train" for m in synthetic)
    used = {m["face"].rsplit("/", 1)[1].split("__")[0] for m in synthetic}
    assert 0 < len(used) < len(sources)  # about half of the source photos
    unmasked = {m["face"].rsplit("/", 1)[1].rsplit(".", 1)[0] for m in manifest
                if m["source"].startswith("folders:") and m["label"] == "no_mask"}
    assert not used & unmasked
    assert len(unmasked) == len(sources) - len(used)


def test_scene_faces_used_for_synthesis_are_dropped_from_unmasked(tiny_sets):
    from maskwatch.data.voc import read_voc
    from maskwatch.faces import LABEL_INDEX
    from maskwatch.train.data import FaceSet, drop_source_faces

    images = [im for im in read_voc(tiny_sets / "voc").images if "no_mask" in im.labels]
    im = images[0]
    n = len(im.boxes)
    faces = FaceSet(np.zeros((n, 4, 4, 3), np.uint8), np.array([LABEL_INDEX[x] for x in im.labels]),
                    np.array(["train"] * n), np.ones(n, np.float32), [f"{im.path}#{i}" for i in range(n)],
                    np.array(["voc:x"] * n))
    target = im.labels.index("no_mask")
    box = (im.boxes[target] + 1).tolist()  # the synth manifest's box is the detector's, close to the annotation
    kept, dropped = drop_source_faces(faces, [(str(im.path.resolve()), box)])
    assert dropped == 1 and len(kept.labels) == n - 1
    assert f"{im.path}#{target}" not in kept.origins
