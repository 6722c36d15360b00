"""Reading images: odd formats work, bad files give one clear error naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from maskwatch.errors import InputError
from maskwatch.images import find_images, read_image


def _rgb(w=32, h=24):
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = 200  # red in RGB
    return arr


@pytest.mark.parametrize("mode,suffix", [("RGB", ".jpg"), ("RGB", ".png"), ("RGB", ".bmp"), ("RGB", ".webp"),
                                         ("RGB", ".tiff"), ("L", ".png"), ("RGBA", ".png"), ("CMYK", ".jpg"),
                                         ("P", ".png"), ("I;16", ".png")])
def test_formats_and_modes_decode_to_bgr(tmp_path, mode, suffix):
    img = Image.fromarray(_rgb())
    if mode == "I;16":
        img = Image.fromarray((np.full((24, 32), 40000)).astype(np.uint16))
    elif mode != "RGB":
        img = img.convert(mode)
    path = tmp_path / f"x{suffix}"
    img.save(path)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    if mode in ("RGB", "RGBA", "P", "CMYK") and suffix in (".png", ".bmp", ".tiff"):
        assert out[0, 0, 2] > 150 and out[0, 0, 0] < 60  # red lands in the last (R) channel of BGR
    if mode == "I;16":
        assert 150 < out[0, 0, 0] < 160  # 40000/65535*255 = 155.6


def test_alpha_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert (read_image(tmp_path / "a.png") == 255).all()


@pytest.mark.parametrize("content,problem", [
    (b"", "empty file"),
    (b"hello, I am text\n", "text file"),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 10, ""),
])
def test_bad_files_name_the_file(tmp_path, content, problem):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_image(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_truncated_jpeg(tmp_path):
    path = tmp_path / "full.jpg"
    Image.fromarray((np.random.default_rng(0).random((200, 200, 3)) * 255).astype(np.uint8)).save(path)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(path.read_bytes()[:1500])
    with pytest.raises(InputError, match="truncated or corrupt"):
        read_image(cut)


def test_huge_image_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("L", (20000, 20000)).save(path, optimize=False, compress_level=1)
    with pytest.raises(InputError, match="too large: 20000x20000"):
        read_image(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "nope.jpg")
    with pytest.raises(InputError, match="directory"):
        read_image(tmp_path)


def test_find_images_recursive_sorted_and_reports_missing(tmp_path):
    for rel in ["b/2.jpg", "b/1.png", "a/x.JPG", "a/notes.txt"]:
        p = tmp_path / "root" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    found = find_images([tmp_path / "root", tmp_path / "missing"])
    names = [f.path.relative_to(tmp_path).as_posix() if f.error is None else f.error for f in found]
    assert names == ["root/a/x.JPG", "root/b/1.png", "root/b/2.jpg", "no such file or directory"]


def test_write_jpeg_is_the_one_jpeg_writer(tmp_path):
    import cv2
    import numpy as np

    from maskwatch.errors import InputError
    from maskwatch.images import encode_jpeg, write_jpeg

    image = np.full((16, 24, 3), 200, np.uint8)
    written = write_jpeg(tmp_path / "a" / "b.jpg", image, quality=92)  # parent folders made
    assert cv2.imread(str(written)).shape == (16, 24, 3) and encode_jpeg(image)[:2] == b"\xff\xd8"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match=r"file/c\.jpg: cannot write image"):
        write_jpeg(tmp_path / "file" / "c.jpg", image)  # a file where a folder should be
    with pytest.raises(InputError, match="could not encode"):
        write_jpeg(tmp_path / "d.jpg", np.zeros((0, 0, 3), np.uint8))
