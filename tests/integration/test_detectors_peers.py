"""Peer face detectors (YuNet, UltraFace, AIZOO, MTCNN) on real Kaggle images, plus the torchvision shim."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from maskwatch.boxes import iou_matrix
from maskwatch.data.voc import read_voc
from maskwatch.detectors import create_detector
from maskwatch.errors import ModelError
from maskwatch.images import read_image

# images with several faces (shorter side >= 18 px) of both states; 26 faces in all, 5 images keep it fast
IMAGE_STEMS = ["maksssksksss0", "maksssksksss124", "maksssksksss157", "maksssksksss21", "maksssksksss250"]

# key: (detector, file under peers/, options, recall floor). Measured on these images: yunet 0.96,
# ultraface masked 0.58, ultraface RFB-320 0.81, aizoo 0.77, mtcnn 0.69; floors leave a margin.
PEERS = {
    "yunet": ("yunet", "yunet/yunet_s_640_640.onnx", {}, 0.8),
    "ultraface-masked": ("ultraface", "ultraface/RFB-640-masked_face-v2.onnx", {}, 0.45),
    "ultraface-rfb320": ("ultraface", "ultraface/version-RFB-320.onnx", {}, 0.65),
    "aizoo": ("aizoo", "aizoo/face_mask_detection.caffemodel", {"min_score": 0.3}, 0.6),
}


@pytest.fixture(scope="module")
def kaggle_sample(kaggle_dir: Path):
    dataset = read_voc(kaggle_dir)
    by_stem = {item.path.stem: item for item in dataset.images}
    return [(read_image(by_stem[s].path), by_stem[s]) for s in IMAGE_STEMS]


def _recall(detector, sample) -> tuple[float, list]:
    hits = total = 0
    results = []
    for image, truth in sample:
        faces = detector.detect(image)
        results.append((image, truth, faces))
        total += len(truth.boxes)
        if len(faces) and len(truth.boxes):
            hits += int((iou_matrix(truth.boxes, faces.boxes).max(axis=1) >= 0.3).sum())
    return hits / total, results


@pytest.mark.parametrize("key", list(PEERS))
def test_peer_finds_faces(key, shared_dir, kaggle_sample):
    name, rel, options, floor = PEERS[key]
    detector = create_detector(name, model_path=str(shared_dir / "peers" / rel), threads=2, **options)
    recall, results = _recall(detector, kaggle_sample)
    assert recall >= floor, f"{key}: recall@IoU0.3 {recall:.2f} below {floor}"
    for image, _, faces in results:
        h, w = image.shape[:2]
        assert np.all(faces.boxes[:, :2] >= 0) and np.all(faces.boxes[:, 2] <= w) and np.all(faces.boxes[:, 3] <= h)
        assert np.all(faces.boxes[:, 2:] > faces.boxes[:, :2] - 1e-3)
        assert np.all(faces.scores >= detector.min_score)
        if name == "yunet":
            assert faces.landmarks is not None and faces.landmarks.shape == (len(faces), 5, 2)
            # first landmark is the eye on the image's left
            assert np.all(faces.landmarks[:, 0, 0] < faces.landmarks[:, 1, 0])


@pytest.mark.parametrize("key", ["ultraface-masked", "aizoo"])
def test_mask_peers_give_probs_that_tell_states_apart(key, shared_dir, kaggle_sample):
    name, rel, options, _ = PEERS[key]
    detector = create_detector(name, model_path=str(shared_dir / "peers" / rel), **options)
    _, results = _recall(detector, kaggle_sample)
    right = wrong = 0
    for _, truth, faces in results:
        assert faces.probs is not None and faces.probs.shape == (len(faces), 3)
        np.testing.assert_allclose(faces.probs.sum(axis=1), 1.0, atol=1e-5)
        assert np.all(faces.probs[:, 2] == 0)  # neither model has an "incorrect" class
        if not len(faces) or not len(truth.boxes):
            continue
        ious = iou_matrix(truth.boxes, faces.boxes)
        for g, label in enumerate(truth.labels):
            j = int(ious[g].argmax())
            if ious[g, j] >= 0.5 and label != "incorrect":
                right += faces.labels[j] == label
                wrong += faces.labels[j] != label
    assert right + wrong >= 5 and right / (right + wrong) >= 0.7


def test_ultraface_two_class_model_sets_no_probs(shared_dir, kaggle_sample):
    detector = create_detector("ultraface", model_path=str(shared_dir / "peers/ultraface/version-RFB-640.onnx"))
    assert detector.input_hw == (480, 640) and detector.num_classes == 2
    faces = detector.detect(kaggle_sample[0][0])
    assert len(faces) and faces.probs is None


def test_low_threshold_keeps_more_faces_for_ap(shared_dir, kaggle_sample):
    path = str(shared_dir / "peers/ultraface/RFB-640-masked_face-v2.onnx")
    image = kaggle_sample[0][0]
    strict = create_detector("ultraface", model_path=path, min_score=0.7).detect(image)
    loose = create_detector("ultraface", model_path=path, min_score=0.05).detect(image)
    assert len(loose) > len(strict)


def test_model_file_errors_are_one_clear_line(tmp_path, shared_dir):
    with pytest.raises(ModelError, match="AIZOO.*by path"):
        create_detector("aizoo")
    lone = tmp_path / "face_mask_detection.caffemodel"
    lone.write_bytes(b"x")
    with pytest.raises(ModelError, match="prototxt does not exist"):
        create_detector("aizoo", model_path=str(lone))
    with pytest.raises(ModelError, match="cannot load it as a YuNet model"):
        create_detector("yunet", model_path=str(shared_dir / "peers/README.md"))
    with pytest.raises(ModelError, match="ONNX Runtime cannot load"):
        create_detector("ultraface", model_path=str(shared_dir / "peers/README.md"))
    with pytest.raises(ModelError, match="not an UltraFace model"):
        create_detector("ultraface", model_path=str(shared_dir / "peers/yunet/yunet_n_320_320.onnx"))


def test_aizoo_anchor_count_matches_network():
    from maskwatch.detectors.aizoo import aizoo_anchors, decode_boxes

    anchors = aizoo_anchors()
    assert anchors.shape == (5972, 4)
    # first cell of the 33x33 map: centre (0.5/33, 0.5/33), first anchor square of side 0.04
    np.testing.assert_allclose(anchors[0], [0.5 / 33 - 0.02, 0.5 / 33 - 0.02, 0.5 / 33 + 0.02, 0.5 / 33 + 0.02], atol=1e-6)
    # the second cell lies to the right of the first (x varies fastest)
    assert anchors[4, 0] > anchors[0, 0] and anchors[4, 1] == anchors[0, 1]
    np.testing.assert_allclose(decode_boxes(anchors[:3], np.zeros((3, 4), np.float32)), anchors[:3], atol=1e-6)


# -- MTCNN and the torchvision stand-in --------------------------------------------------------------


def _brute_force_batched_nms(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray, thr: float) -> list[int]:
    keep = []
    for i in np.argsort(-scores, kind="stable"):
        ok = True
        for k in keep:
            if idxs[k] != idxs[i]:
                continue
            ix = max(0.0, min(boxes[i, 2], boxes[k, 2]) - max(boxes[i, 0], boxes[k, 0]))
            iy = max(0.0, min(boxes[i, 3], boxes[k, 3]) - max(boxes[i, 1], boxes[k, 1]))
            inter = ix * iy
            union = np.prod(boxes[i, 2:] - boxes[i, :2]) + np.prod(boxes[k, 2:] - boxes[k, :2]) - inter
            if inter / union > thr:
                ok = False
                break
        if ok:
            keep.append(int(i))
    return keep


def test_shim_batched_nms_matches_brute_force():
    torch = pytest.importorskip("torch", reason="torch is not installed (maskwatch[mtcnn] extra)")
    from maskwatch.detectors._torchvision_shim import batched_nms, to_tensor

    rng = np.random.default_rng(0)
    for trial in range(3):
        n = 150
        xy = rng.uniform(0, 100, (n, 2))
        wh = rng.uniform(5, 40, (n, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1)
        scores = rng.permutation(n).astype(np.float64) / n  # distinct scores: a unique answer
        idxs = rng.integers(0, 3, n)
        got = batched_nms(torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores), torch.tensor(idxs), 0.5)
        expected = _brute_force_batched_nms(boxes.astype(np.float32).astype(np.float64), scores, idxs, 0.5)
        assert got.dtype == torch.int64
        assert got.tolist() == expected, f"trial {trial}"
    empty = batched_nms(torch.zeros((0, 4)), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5)
    assert empty.numel() == 0
    tensor = to_tensor(np.full((2, 3, 3), 255, np.uint8))
    assert tuple(tensor.shape) == (3, 2, 3) and tensor.dtype == torch.float32 and float(tensor.max()) == 1.0


def test_shim_installs_only_when_torchvision_is_missing(monkeypatch):
    pytest.importorskip("torch", reason="torch is not installed (maskwatch[mtcnn] extra)")
    from maskwatch.detectors import _torchvision_shim

    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        monkeypatch.delitem(sys.modules, name)
    if importlib.util.find_spec("torchvision") is not None:
        pytest.skip("a real torchvision is installed here; the stand-in is not needed")
    assert _torchvision_shim.install() is True
    from torchvision.ops.boxes import batched_nms  # noqa: F401
    from torchvision.transforms import functional

    assert functional.to_tensor is _torchvision_shim.to_tensor
    # a second call sees the stand-in (which imports fine) and leaves it alone
    assert _torchvision_shim.install() is False


@pytest.mark.slow
def test_mtcnn_finds_faces(kaggle_sample):
    if importlib.util.find_spec("facenet_pytorch") is None or importlib.util.find_spec("torch") is None:
        pytest.skip('facenet-pytorch is not installed: pip install "maskwatch[mtcnn]" && '
                    "pip install --no-deps facenet-pytorch==2.6.0")
    detector = create_detector("mtcnn", threads=2)
    recall, results = _recall(detector, kaggle_sample)
    assert recall >= 0.55
    for image, _, faces in results:
        assert faces.landmarks is not None and faces.landmarks.shape == (len(faces), 5, 2)
        assert np.all(faces.scores >= 0.9)
        assert np.all(faces.boxes[:, 2] <= image.shape[1]) and np.all(faces.boxes[:, 3] <= image.shape[0])
    with pytest.raises(ModelError, match="no model path"):
        create_detector("mtcnn", model_path="x.pt")
