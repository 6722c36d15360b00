"""`maskwatch detect` and `maskwatch classify` end to end on real images."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from maskwatch.cli import app

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_example_photo_end_to_end(tmp_path):
    result = _run("detect", "--example", "--out", tmp_path, "--json", tmp_path / "d.jsonl")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "astronaut.maskwatch.jpg").is_file()
    (line,) = (tmp_path / "d.jsonl").read_text().splitlines()
    rec = json.loads(line)
    assert rec["width"] == 512 and rec["height"] == 512
    assert len(rec["faces"]) == 1
    face = rec["faces"][0]
    assert face["label"] == "no_mask" and face["label_score"] > 0.5  # Eileen Collins wears no mask
    x1, y1, x2, y2 = face["box"]
    assert 150 < (x1 + x2) / 2 < 280 and 40 < (y1 + y2) / 2 < 200  # her face, upper middle of the photo


def test_folder_jsonl_has_the_documented_shape(tmp_path, kaggle_dir):
    shots = tmp_path / "shots"
    shots.mkdir()
    for name in ["maksssksksss0.jpg", "maksssksksss1.jpg", "maksssksksss10.jpg"]:
        shutil.copy(kaggle_dir / "images" / name, shots / name)
    out = tmp_path / "results"
    result = _run("detect", shots, "--out", out, "--json", out / "detections.jsonl", "--threads", "2")
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in (out / "detections.jsonl").read_text().splitlines()]
    assert [os.path.basename(x["image"]) for x in lines] == sorted(os.listdir(shots))
    for rec in lines:
        assert set(rec) >= {"image", "width", "height", "ms", "faces"}
        for f in rec["faces"]:
            assert set(f) >= {"box", "score", "label", "label_score", "probs", "landmarks"}
            assert f["label"] in ("mask", "no_mask", "incorrect")
            assert sum(f["probs"].values()) == pytest.approx(1, abs=1e-3)
            assert f["label_score"] == pytest.approx(max(f["probs"].values()), abs=1e-4)
            assert len(f["landmarks"]) == 5
            assert 0 <= f["box"][0] < f["box"][2] <= rec["width"] and 0 <= f["box"][1] < f["box"][3] <= rec["height"]
    assert sum(len(r["faces"]) for r in lines) >= 4
    assert len(list(out.glob("*.maskwatch.jpg"))) == 3
    assert "images: 3 processed, 0 failed" in result.output


@pytest.mark.slow
def test_bad_inputs_are_reported_and_the_batch_goes_on(tmp_path, kaggle_dir):
    d = tmp_path / "batch"
    d.mkdir()
    good = kaggle_dir / "images" / "maksssksksss0.jpg"
    shutil.copy(good, d / "a_good.jpg")
    (d / "b_empty.jpg").write_bytes(b"")
    (d / "c_text.jpg").write_text("not an image\n")
    (d / "d_truncated.jpg").write_bytes(good.read_bytes()[:2000])
    rgb = np.asarray(Image.open(good))
    Image.fromarray(rgb).convert("L").save(d / "e_gray.png")
    Image.fromarray(rgb).convert("CMYK").save(d / "f_cmyk.jpg")
    Image.fromarray(rgb).convert("RGBA").save(d / "g_alpha.png")
    Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(d / "h_16bit.png")
    Image.new("L", (20000, 20000)).save(d / "i_huge.png", compress_level=1)
    out = tmp_path / "out"
    result = _run("detect", d, tmp_path / "missing_dir", "--out", out, "--json", out / "d.jsonl")
    assert result.exit_code == 1
    text = result.output
    assert "Traceback" not in text
    for name, problem in [("b_empty.jpg", "empty file"), ("c_text.jpg", "text file"),
                          ("d_truncated.jpg", "truncated"), ("i_huge.png", "too large"),
                          ("missing_dir", "no such file")]:
        assert any(name in line and problem in line for line in text.splitlines()), (name, text)
    done = [os.path.basename(json.loads(x)["image"]) for x in (out / "d.jsonl").read_text().splitlines()]
    assert done == ["a_good.jpg", "e_gray.png", "f_cmyk.jpg", "g_alpha.png", "h_16bit.png"]
    assert "5 processed, 5 failed" in text


def test_classify_crops(tmp_path, shared_dir):
    src = shared_dir / "data" / "chandrikadeb7-faces"
    crops = tmp_path / "crops"
    for cls in ("with_mask", "without_mask"):
        (crops / cls).mkdir(parents=True)
        for f in sorted((src / cls).glob("*.jpg"))[:6]:
            shutil.copy(f, crops / cls / f.name)
    (crops / "broken.jpg").write_bytes(b"\x00\x01")
    result = _run("classify", crops, "--json", tmp_path / "c.jsonl")
    assert result.exit_code == 1 and "broken.jpg" in result.output
    lines = [json.loads(x) for x in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert len(lines) == 12
    right = sum(("without_mask" in r["image"]) == (r["label"] != "mask") for r in lines)
    assert right >= 11
    assert all(set(r) == {"image", "label", "label_score", "probs"} for r in lines)


def test_installed_entry_point_runs():
    exe = shutil.which("maskwatch")
    cmd = [exe] if exe else [sys.executable, "-m", "maskwatch"]
    result = subprocess.run(cmd + ["--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("detect", "classify", "train"):
        assert command in result.stdout


def test_version_needs_no_command():
    from maskwatch import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"maskwatch {__version__}"
