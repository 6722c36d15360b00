"""maskwatch.synth: mask geometry per wear mode, pose, determinism, bad input, CLI outputs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskwatch.faces import Faces
from maskwatch.synth import MaskSynthesizer, face_pose, load_template_set, mask_anchors, synthesize_folder
from maskwatch.synth.generator import parse_weights
from maskwatch.synth.styles import PARAMETRIC_STYLES

# a frontal face in a 160x180 image: eyes, nose tip, mouth corners
FACE = np.array([[60, 70], [100, 70], [80, 95], [66, 115], [94, 115]], np.float32)
BOX = np.array([40, 35, 120, 150], np.float32)


def _coverage_at(cov: np.ndarray, pt) -> float:
    return float(cov[int(round(pt[1])), int(round(pt[0]))])


def _canvas(gray: int = 150) -> np.ndarray:
    img = np.full((180, 160, 3), gray, np.uint8)
    img[..., 2] = min(255, gray + 30)  # skin-ish, not grayscale
    return img


@pytest.fixture(scope="module")
def synth() -> MaskSynthesizer:
    return MaskSynthesizer(min_face=20)


@pytest.mark.parametrize("style", PARAMETRIC_STYLES)
def test_wear_modes_cover_the_right_parts(synth, style):
    pose = face_pose(FACE)
    nose, mouth_l, mouth_r = FACE[2], FACE[3], FACE[4]
    mouth_mid = (mouth_l + mouth_r) / 2
    for seed in range(3):
        rng = lambda: np.random.default_rng(seed)  # noqa: E731
        cov = synth.put_mask(_canvas(), pose, "correct", style, rng()).coverage
        assert _coverage_at(cov, nose) > 0.5 and _coverage_at(cov, mouth_l) > 0.5 and _coverage_at(cov, mouth_r) > 0.5
        cov = synth.put_mask(_canvas(), pose, "nose", style, rng()).coverage
        assert _coverage_at(cov, nose) < 0.1, "nose mode must leave the nose tip visible"
        assert _coverage_at(cov, mouth_mid) > 0.5, "nose mode still covers the mouth"
        cov = synth.put_mask(_canvas(), pose, "chin", style, rng()).coverage
        assert max(_coverage_at(cov, p) for p in (nose, mouth_l, mouth_r, mouth_mid)) < 0.1
        assert cov[int(mouth_mid[1]) + 25, int(mouth_mid[0])] > 0.5, "chin mode puts the mask on the chin"
        cov = synth.put_mask(_canvas(), pose, "loose", style, rng()).coverage
        assert _coverage_at(cov, nose) < 0.1


def test_roll_rotates_the_mask():
    centre = FACE[:2].mean(0)
    angle = np.radians(20)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rolled = (FACE - centre) @ rot.T + centre
    upright = mask_anchors(face_pose(FACE), "correct")
    turned = mask_anchors(face_pose(rolled), "correct")
    np.testing.assert_allclose(turned, (upright - centre) @ rot.T + centre, atol=1e-3)
    top = turned[2] - turned[0]
    assert np.degrees(np.arctan2(top[1], top[0])) == pytest.approx(20, abs=0.5)


def test_yaw_narrows_the_far_side():
    turned = FACE.copy()
    turned[2, 0] += 14  # nose towards image right: the right side is the far side
    a, b, c = mask_anchors(face_pose(turned), "correct")[:3]
    assert (c[0] - b[0]) < 0.7 * (b[0] - a[0])
    with pytest.raises(ValueError):
        face_pose(np.array([[60, 70], [100, 70], [80, 60], [66, 50], [94, 50]], np.float32))  # mouth above eyes


def test_tight_crop_falls_back_to_a_mode_that_fits():
    synth = MaskSynthesizer(modes={"chin": 1, "nose": 1, "correct": 1})
    tight = _canvas()[:125]  # the image ends just under the mouth
    result = synth.put_mask_in_frame(tight, face_pose(FACE), "chin", "surgical", np.random.default_rng(0))
    assert result is not None and result.mode == "nose" and result.label == "incorrect"
    assert synth.put_mask_in_frame(_canvas()[:100], face_pose(FACE), "chin", "surgical", np.random.default_rng(0)) is None


def test_profile_face_is_skipped():
    from maskwatch.synth import SkipFace

    profile = FACE.copy()
    profile[2, 0] += 30  # nose tip beyond the far eye

    class ProfileDetector:
        name, min_score, input_size = "fake", 0.5, 640

        def detect(self, image):
            return Faces(boxes=BOX[None], scores=[0.9], landmarks=profile[None])

    with pytest.raises(SkipFace) as info:
        MaskSynthesizer(min_face=20, detector=ProfileDetector()).fit_face(_canvas())
    assert info.value.reason == "turned too far"


class FakeDetector:
    """The frontal face scaled to the image; nothing on flat images."""

    name, min_score, input_size = "fake", 0.5, 640

    def detect(self, image):
        if image.std() < 1:
            return Faces.empty(with_landmarks=True)
        s = image.shape[1] / 160
        return Faces(boxes=BOX[None] * s, scores=[0.9], landmarks=FACE[None] * s)


def _face_image(path: Path, size=(160, 180), gray=False, seed=0):
    rng = np.random.default_rng(seed)
    img = np.clip(_canvas() + rng.normal(0, 8, (180, 160, 3)), 0, 255).astype(np.uint8)
    img = cv2.resize(img, size)
    if gray:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(path), img)


@pytest.fixture
def face_folder(tmp_path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        _face_image(src / f"face{i}.jpg", seed=i)
    _face_image(src / "gray.png", gray=True)
    _face_image(src / "tiny.jpg", size=(24, 27))
    cv2.imwrite(str(src / "blank.jpg"), np.full((100, 100, 3), 128, np.uint8))
    (src / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return src


def test_determinism_and_bad_inputs_counted(face_folder, tmp_path):
    make = lambda: MaskSynthesizer(per_face=2, min_face=20, detector=FakeDetector(),  # noqa: E731
                                   styles={"surgical": 1, "cloth": 1, "n95": 1, "kn95": 1})
    r1 = synthesize_folder(face_folder, tmp_path / "a", make(), seed=7)
    r2 = synthesize_folder(face_folder, tmp_path / "b", make(), seed=7)
    r3 = synthesize_folder(face_folder, tmp_path / "c", make(), seed=8)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.jpg"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.jpg"))
    assert files_a == files_b and len(files_a) == 8  # 4 usable faces x 2
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files_a)
    files_c = {p.relative_to(tmp_path / "c") for p in (tmp_path / "c").rglob("*.jpg")}
    assert files_c != set(files_a) or any(
        (tmp_path / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes() for f in files_a)
    assert r1.skipped == r2.skipped == r3.skipped == {"corrupt file": 1, "no face": 1, "too small": 1}
    assert "corrupt.jpg" in r1.examples["corrupt file"][0]
    assert r1.faces_used == 4 and sum(r1.written.values()) == 8
    # the grayscale source keeps a grayscale look
    gray_out = next((tmp_path / "a").rglob("gray__0_*.jpg"))
    img = cv2.imread(str(gray_out)).astype(int)
    assert np.abs(img[..., 0] - img[..., 2]).max() <= 6
    rows = [json.loads(x) for x in (tmp_path / "a" / "manifest.jsonl").read_text().splitlines()]
    assert {r["label"] for r in rows} <= {"mask", "incorrect"} and len(rows) == 8
    assert all((tmp_path / "a" / r["output"]).parent.name == r["label"] for r in rows)
    assert len((tmp_path / "a" / "sources.txt").read_text().splitlines()) == 4


def test_template_problems_reported(tmp_path):
    folder = tmp_path / "tpl"
    (folder / "templates").mkdir(parents=True)
    good = np.zeros((100, 200, 4), np.uint8)
    good[10:90, 10:190] = (200, 150, 100, 255)
    cv2.imwrite(str(folder / "templates" / "good.png"), good)
    cv2.imwrite(str(folder / "templates" / "opaque.png"), good[..., :3])
    cv2.imwrite(str(folder / "templates" / "loose_file.png"), good)
    anchors = "mask_a: 10, 20\nmask_b: 100, 10\nmask_c: 190, 20\nmask_d: 12, 70\nmask_e: 100, 90\nmask_f: 188, 70\n"
    (folder / "masks.cfg").write_text(
        f"[good]\ntemplate: masks/templates/good.png\n{anchors}\n[opaque]\ntemplate: masks/templates/opaque.png\n{anchors}"
        "\n[empty]\nmask_a: 1, 1\n")
    result = load_template_set(folder)
    assert list(result.families) == ["good"]
    text = "\n".join(result.problems)
    assert "opaque.png: template has no transparency" in text
    assert "loose_file.png: template has no anchor points" in text
    synth = MaskSynthesizer(templates=result, styles={"templates": 1})
    masked = synth.put_mask(_canvas(), face_pose(FACE), "correct", "templates", np.random.default_rng(0))
    assert masked.style == "template:good" and _coverage_at(masked.coverage, FACE[3]) > 0.5
    with pytest.raises(ValueError, match="only style"):
        MaskSynthesizer.with_templates(tmp_path / "missing", styles={"templates": 1})


def test_parse_weights():
    assert parse_weights("correct=2, nose", ("correct", "nose", "chin"), "mode") == {"correct": 2.0, "nose": 1.0}
    with pytest.raises(ValueError, match="unknown mode 'beard'"):
        parse_weights("beard", ("correct",), "mode")


def test_voc_scene_relabels_only_masked_boxes(tmp_path):
    src = tmp_path / "voc"
    (src / "images").mkdir(parents=True)
    (src / "annotations").mkdir()
    img = np.zeros((400, 480, 3), np.uint8)
    img[:, :240] = 150
    _face_image(tmp_path / "face.png")
    img[100:280, 40:200] = cv2.imread(str(tmp_path / "face.png"))
    cv2.imwrite(str(src / "images" / "scene.jpg"), img)
    obj = "<object><name>{}</name><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox></object>"
    (src / "annotations" / "scene.xml").write_text(
        "<annotation><filename>scene.jpg</filename><size><width>480</width><height>400</height></size>"
        + obj.format("without_mask", 80, 135, 160, 250) + obj.format("with_mask", 300, 100, 380, 200) + "</annotation>")

    class CropDetector(FakeDetector):
        def detect(self, image):  # the synth crops 57 px around the box: the face sits at (18, 23) in the crop
            off = np.array([18, 23], np.float32)
            return Faces(boxes=(BOX + np.tile(off, 2))[None], scores=[0.9], landmarks=(FACE + off)[None])

    synth = MaskSynthesizer(min_face=20, detector=CropDetector(), styles={"surgical": 1}, modes={"chin": 1})
    report = synthesize_folder(src, tmp_path / "out", synth, seed=1)
    assert report.faces_used == 1 and report.written == {"incorrect": 1}
    tree = ET.parse(tmp_path / "out" / "annotations" / "scene__synth0.xml").getroot()
    assert [o.findtext("name") for o in tree.findall("object")] == ["mask_weared_incorrect", "with_mask"]
    assert tree.findtext("filename") == "scene__synth0.jpg"
    assert (tmp_path / "out" / "images" / "scene__synth0.jpg").is_file()
    # the output is a VOC folder: boxes as they were, the masked one relabelled, the image's size
    from maskwatch.data import read_voc

    (scene,) = read_voc(tmp_path / "out").images
    assert scene.labels == ["incorrect", "mask"] and (scene.width, scene.height) == (480, 400)
    np.testing.assert_allclose(scene.boxes, [[80, 135, 160, 250], [300, 100, 380, 200]])


def test_voc_scenes_that_cannot_be_used_are_counted(tmp_path):
    src = tmp_path / "voc"
    (src / "images").mkdir(parents=True)
    (src / "images" / "empty.jpg").write_bytes(b"")
    xml = "<annotation><filename>{}</filename><object><name>without_mask</name></object></annotation>"
    (src / "annotations").mkdir()
    (src / "annotations" / "broken.xml").write_text("<annotation><object>")
    (src / "annotations" / "ghost.xml").write_text(xml.format("ghost.jpg"))
    (src / "annotations" / "empty.xml").write_text(xml.format("empty.jpg"))
    report = synthesize_folder(src, tmp_path / "out", MaskSynthesizer(min_face=20), seed=0)
    assert report.sources == 3 and report.faces_used == 0 and report.skipped == {"corrupt file": 3}
    examples = report.examples["corrupt file"]
    assert "broken.xml: malformed XML" in examples[0] and "empty.jpg" in examples[1]
    assert examples[2].endswith("ghost.xml: no image for this annotation")


def test_synth_config_parses_and_checks_options(tmp_path):
    from maskwatch.cli import synth as synth_cli
    from maskwatch.errors import MaskWatchError
    from maskwatch.service.synth import DEFAULT_MODES, DEFAULT_STYLES, SynthConfig

    # the CLI shows the service's defaults
    assert (synth_cli.DEFAULT_MODES, synth_cli.DEFAULT_STYLES) == (DEFAULT_MODES, DEFAULT_STYLES)
    config = SynthConfig.from_options(src=tmp_path, out=tmp_path / "out", modes="correct=2, chin",
                                      styles={"surgical": 1, "n95": 0.5})
    assert config.modes == {"correct": 2.0, "chin": 1.0} and config.styles == {"surgical": 1.0, "n95": 0.5}
    assert SynthConfig(src=tmp_path, out=tmp_path).modes == dict.fromkeys(["correct", "nose", "chin", "loose"], 1.0)
    assert config.template_dir() is None  # no templates style: no template folder needed
    for options, message in [({"modes": "beard"}, "unknown wear mode 'beard'"),
                             ({"styles": "surgical=-1"}, "style weight for 'surgical' is negative"),
                             ({"per_face": 9}, "synth option per-face: Input should be less than or equal to 4"),
                             ({"colour": "red"}, "synth option colour: Extra inputs are not permitted")]:
        with pytest.raises(MaskWatchError, match=message):
            SynthConfig.from_options(src=tmp_path, out=tmp_path, **options)


def test_cli_writes_folders_manifest_and_preview(tmp_path, monkeypatch):
    import typer
    from typer.testing import CliRunner

    from maskwatch.cli import synth as synth_cli
    from skimage import data

    monkeypatch.chdir(tmp_path)
    src = tmp_path / "faces"
    src.mkdir()
    astronaut = data.astronaut()[20:240, 120:320, ::-1]  # BGR crop around the face
    cv2.imwrite(str(src / "astronaut.jpg"), astronaut)
    (src / "broken.png").write_bytes(b"")
    app = typer.Typer()
    app.callback()(lambda: None)
    synth_cli.register(app)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["synth", "faces", "--out", str(out), "--per-face", "2", "--styles", "surgical,kn95",
                                      "--templates", str(tmp_path / "none"), "--preview", str(tmp_path / "sheet.png")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all((out / r["output"]).is_file() for r in rows)
    assert rows[0]["landmarks_from"] == "centerface" and len(rows[0]["landmarks"]) == 5
    # sources are absolute even when SRC was given relative, so a trainer run elsewhere finds them
    assert rows[0]["source"] == str((src / "astronaut.jpg").resolve())
    assert (out / "sources.txt").read_text().split() == [str((src / "astronaut.jpg").resolve())]
    assert "skipped (corrupt file): 1" in result.output
    assert (tmp_path / "sheet.png").is_file()
    bad = CliRunner().invoke(app, ["synth", str(src), "--out", str(out), "--modes", "beard"])
    assert bad.exit_code == 2 and "error: unknown wear mode 'beard'" in bad.output
