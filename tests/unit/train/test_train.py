"""`maskwatch train` on tiny data: run directory, resume, ONNX parity, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")

from tests.helpers.sample_data import copy_kaggle_scenes  # noqa: E402
from maskwatch.cli import app  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory, shared_dir):
    root = tmp_path_factory.mktemp("tiny")
    kaggle = shared_dir / "data" / "kaggle-face-mask"
    voc = root / "voc"
    copy_kaggle_scenes(kaggle, voc, 24)
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_resume_continues_and_existing_dir_is_refused(tiny_sets, tmp_path):
    out = tmp_path / "run"
    assert _train(tiny_sets, out, "--arch", "scratch", "--epochs", "1").exit_code == 0
    refused = _train(tiny_sets, out, "--arch", "scratch", "--epochs", "1")
    assert refused.exit_code != 0 and "exists" in refused.output
    resumed = _train(tiny_sets, out, "--arch", "scratch", "--epochs", "2", "--resume")
    assert resumed.exit_code == 0, resumed.output
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_label_corrections_relabel_and_drop_faces(tiny_sets, tmp_path):
    first, second = sorted((tiny_sets / "folders" / "with_mask").glob("*.jpg"))[:2]
    fixes = tmp_path / "fixes.csv"
    fixes.write_text(f"# comment\nfolders/with_mask/{first.name},incorrect\nwith_mask/{second.name},drop\n"
                     "folders/with_mask/not-there.jpg,no_mask\n")
    out = tmp_path / "run"
    result = _train(tiny_sets, out, "--arch", "scratch", "--epochs", "1", "--relabel", str(fixes))
    assert result.exit_code == 0, result.output
    manifest = {m["face"]: m["label"] for m in map(json.loads, (out / "split_manifest.jsonl").read_text().splitlines())}
    assert manifest[str(first)] == "incorrect"
    assert str(second) not in manifest
    assert "1 faces relabelled, 1 left out" in result.output
    assert "1 entries match no face" in result.output and "not-there.jpg" in result.output


@pytest.mark.parametrize("line, problem", [("a.jpg,maybe", "'maybe' is not one of"), ("just-a-path.jpg", "expected PATH,LABEL")])
def test_bad_label_correction_file_names_file_and_line(tmp_path, line, problem):
    from maskwatch.data.labels import read_relabels
    from maskwatch.errors import DatasetError

    path = tmp_path / "fixes.csv"
    path.write_text(f"ok.jpg,mask\n{line}\n")
    with pytest.raises(DatasetError, match=rf"fixes.csv:2: {problem}"):
        read_relabels(path)


def test_label_corrections_match_whole_path_parts():
    from maskwatch.train.data import FaceSet, apply_relabels

    origins = ["/d/set/a/b.jpg", "/d/set/a/ab.jpg", "/d/other/xa/b.jpg", "/d/scene.jpg#0", "/d/scene.jpg#1"]
    n = len(origins)
    faces = FaceSet(np.zeros((n, 4, 4, 3), np.uint8), np.zeros(n, np.int64), np.array(["train"] * n),
                    np.ones(n, np.float32), origins, np.array(["s"] * n))
    notes = []
    out = apply_relabels(faces, {"a/b.jpg": "incorrect", "scene.jpg#1": "drop"}, notes.append)
    assert out.origins == origins[:4]
    assert out.labels.tolist() == [2, 0, 0, 0]  # "ab.jpg" and ".../xa/b.jpg" are not "a/b.jpg"


def test_lowres_augmentation_removes_fine_detail():
    import torch

    from maskwatch.train.loop import augment

    batch = torch.rand(32, 3, 128, 128, generator=torch.Generator().manual_seed(1)) * 255

    def detail(x):  # share of the signal in pixel-to-pixel differences
        return float((x[..., 1:] - x[..., :-1]).abs().mean() / x.std())

    sharp = augment(batch, torch.Generator().manual_seed(0), lowres=0.0)
    shrunk = augment(batch, torch.Generator().manual_seed(0), lowres=1.0)
    assert sharp.shape == shrunk.shape == (32, 3, 96, 96)
    assert detail(shrunk) < 0.5 * detail(sharp)


@pytest.mark.slow
def test_runs_sharing_a_split_export_as_one_flip_averaged_model(tiny_sets, tmp_path):
    import onnx

    from maskwatch.classifier import MaskClassifier

    runs = [tmp_path / "s0", tmp_path / "s1", tmp_path / "other-split"]
    for run, seeds in zip(runs, (["--seed", "0"], ["--seed", "1", "--split-seed", "0"], ["--seed", "1"])):
        assert _train(tiny_sets, run, "--arch", "scratch", "--epochs", "1", *seeds).exit_code == 0
    out = tmp_path / "ensemble.onnx"
    result = runner.invoke(app, ["export-classifier", str(runs[0]), str(runs[1]), "--flip", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["onnx_max_abs_diff"] < 1e-4
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["members"] == "2" and meta["flip_averaged"] == "true"
    crops = np.random.default_rng(0).integers(0, 256, (4, 96, 96, 3), dtype=np.uint8)
    clf = MaskClassifier(str(out))
    assert np.allclose(clf.predict_crops(crops), clf.predict_crops(crops[:, :, ::-1].copy()), atol=1e-5)
    single = MaskClassifier(str(runs[0] / "mask_classifier.onnx"))
    assert not np.allclose(single.predict_crops(crops), single.predict_crops(crops[:, :, ::-1].copy()), atol=1e-5)
    refused = runner.invoke(app, ["export-classifier", str(runs[0]), str(runs[2]), "--out", str(tmp_path / "x.onnx")])
    assert refused.exit_code != 0 and "split_manifest" in refused.output
