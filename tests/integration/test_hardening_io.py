"""Issue 13: servers that accept and never answer, and outputs that cannot be written: one clear line,
the documented exit status, never a traceback or an abort ("terminate called", exit 134)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from tests.helpers.servers import SilentServer

REPO = Path(__file__).resolve().parents[2]


def cli(args: list[str], **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "maskwatch", *args], env=env, text=True, **kwargs)


def test_watch_on_a_server_that_never_answers_is_one_line_not_an_abort(tmp_path):
    server = SilentServer()
    try:
        proc = cli(["watch", server.url, "--open-timeout", "2", "--db", str(tmp_path / "e.db"), "--snapshots", "none"],
                   stderr=subprocess.PIPE)
        _, err = proc.communicate(timeout=60)
    finally:
        server.close()
    assert proc.returncode == 2, err
    assert "terminate called" not in err and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"error: {server.url}: stream did not open within 2 s (check the address, " \
                                           "credentials, network or camera index)"


@pytest.mark.slow
def test_watch_reconnects_to_a_camera_gone_silent_and_stops_cleanly(tmp_path):
    """The stream plays, then the server accepts reconnects and says nothing: source_lost, reconnect attempts
    each cut at --open-timeout, and SIGTERM still ends with the summary and exit 0."""
    from maskwatch.store import EventStore

    server = SilentServer(frames=30)
    log = tmp_path / "stderr.txt"
    db = str(tmp_path / "e.db")
    try:
        with open(log, "w") as err_fh:
            proc = cli(["watch", server.url, "--open-timeout", "2", "--db", db, "--snapshots", "none"], stderr=err_fh)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not ("source_lost" in log.read_text() and server.accepted >= 3):
                assert proc.poll() is None, log.read_text()
                time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    finally:
        server.close()
        if proc.poll() is None:
            proc.kill()
    err = log.read_text()
    assert server.accepted >= 3, err  # the first stream, then reconnects to the silent server
    assert proc.returncode == 0, err
    assert "terminate called" not in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("interrupted: ")
    assert "source_lost" in [e.type for e in EventStore(db, spool=None).query()]


# -- outputs that cannot be written ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def read_only_dir(tmp_path_factory):
    """A folder nothing can be written to, for root too: a read-only tmpfs (root ignores permission
    bits); where mounting is not permitted (not root), a chmod 555 folder, which then binds."""
    folder = tmp_path_factory.mktemp("ro") / "ro"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    if not mounted:
        folder.chmod(0o555)
    yield folder
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
    else:
        folder.chmod(0o755)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    import shutil

    from maskwatch.cli.detect import example_image_path

    root = tmp_path_factory.mktemp("inputs")
    image = example_image_path()
    for cls in ("with_mask", "without_mask"):
        (root / "folders" / cls).mkdir(parents=True)
        shutil.copy(image, root / "folders" / cls / "a.jpg")
    (root / "voc" / "images").mkdir(parents=True)
    (root / "voc" / "annotations").mkdir()
    shutil.copy(image, root / "voc" / "images" / "a.jpg")
    (root / "voc" / "annotations" / "a.xml").write_text(
        "<annotation><filename>a.jpg</filename><size><width>512</width><height>512</height></size><object>"
        "<name>without_mask</name><bndbox><xmin>180</xmin><ymin>60</ymin><xmax>300</xmax><ymax>220</ymax></bndbox>"
        "</object></annotation>")
    frames = root / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i}.png"), np.full((48, 64, 3), 100, np.uint8))
    return root


UNWRITABLE = {
    "classify --json": lambda i, ro: ["classify", str(i / "folders" / "with_mask" / "a.jpg"), "--json", f"{ro}/c.jsonl"],
    "classify --json /dev/full": lambda i, ro: ["classify", str(i / "folders" / "with_mask" / "a.jpg"), "--json", "/dev/full"],
    "watch --out": lambda i, ro: ["watch", str(i / "frames"), "--db", str(i / "e.db"), "--snapshots", "none",
                                  "--out", f"{ro}/o.mp4"],
    "watch --snapshot-dir": lambda i, ro: ["watch", str(i / "frames"), "--db", str(i / "e.db"), "--snapshot-dir", f"{ro}/s"],
    "watch --json /dev/full": lambda i, ro: ["watch", str(i / "frames"), "--db", str(i / "e.db"), "--snapshots", "none",
                                             "--json", "/dev/full"],
    "watch --db": lambda i, ro: ["watch", str(i / "frames"), "--db", f"{ro}/e.db", "--snapshots", "none"],
    "eval detect --report": lambda i, ro: ["eval", "detect", str(i / "voc"), "--report", f"{ro}/r", "--threads", "1"],
    "eval classify --report": lambda i, ro: ["eval", "classify", str(i / "folders"), "--report", f"{ro}/r"],
    "eval split --out": lambda i, ro: ["eval", "split", str(i / "voc"), "--out", f"{ro}/splits"],
    # drawn mask styles only: the test needs no template folder ($MASKWATCH_SHARED)
    "synth --out": lambda i, ro: ["synth", str(i / "folders" / "without_mask"), "--styles", "surgical,cloth",
                                  "--out", f"{ro}/synth"],
    "synth --preview": lambda i, ro: ["synth", str(i / "folders" / "without_mask"), "--styles", "surgical,cloth",
                                      "--out", str(i / "synth-ok"), "--preview", f"{ro}/p.png"],
    "train --out": lambda i, ro: ["train", "--folders", str(i / "folders"), "--out", f"{ro}/run", "--epochs", "1",
                                  "--cache", str(i / "cache")],
    "train --cache": lambda i, ro: ["train", "--folders", str(i / "folders"), "--out", str(i / "run"), "--epochs", "1",
                                    "--cache", f"{ro}/cache"],
}


@pytest.mark.parametrize("case", list(UNWRITABLE))
def test_unwritable_output_is_one_line_naming_it(case, inputs, read_only_dir):
    from typer.testing import CliRunner

    from maskwatch.cli import app

    if case.startswith("train"):
        pytest.importorskip("torch")
    args = UNWRITABLE[case](inputs, read_only_dir)
    out = CliRunner().invoke(app, args)
    assert out.exit_code not in (0, None), out.output
    assert out.exception is None or isinstance(out.exception, SystemExit), repr(out.exception)
    last = out.output.strip().splitlines()[-1]
    named = "/dev/full" if "/dev/full" in case else str(read_only_dir)
    assert last.startswith("error: ") and named in last, out.output
    assert any(w in last for w in ("Read-only", "Permission denied", "No space left", "unable to open")), last
    assert "Traceback" not in out.output


@pytest.fixture(scope="module")
def full_dir(tmp_path_factory):
    """A folder on a full filesystem (a 256 KiB tmpfs filled up); /dev/full covers single files elsewhere."""
    folder = tmp_path_factory.mktemp("full") / "full"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root (the /dev/full cases run everywhere)")
    with open(folder / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


FULL = {
    "classify --json": UNWRITABLE["classify --json"],
    "watch --json": lambda i, d: ["watch", str(i / "frames"), "--db", str(i / "e.db"), "--snapshots", "none",
                                  "--json", f"{d}/w.jsonl"],
    "eval classify --report": UNWRITABLE["eval classify --report"],
    "eval split --out": UNWRITABLE["eval split --out"],
    "synth --out": UNWRITABLE["synth --out"],
    "train --out": lambda i, d: ["train", "--folders", str(i / "folders"), "--out", f"{d}/run", "--epochs", "1",
                                 "--samples-per-epoch", "8", "--batch-size", "4", "--threads", "1", "--cache", str(i / "cache")],
}


@pytest.mark.parametrize("case", list(FULL))
def test_full_output_folder_is_one_line_naming_it(case, inputs, full_dir):
    from typer.testing import CliRunner

    from maskwatch.cli import app

    if case.startswith("train"):
        pytest.importorskip("torch")
    out = CliRunner().invoke(app, FULL[case](inputs, full_dir))
    assert out.exit_code not in (0, None), out.output
    assert out.exception is None or isinstance(out.exception, SystemExit), repr(out.exception)
    last = "error: " + " ".join(out.output.split()).rsplit("error: ", 1)[-1]  # rich may wrap a long line
    assert last.startswith(f"error: {full_dir}") and ("No space left" in last or "could not write" in last), out.output
    assert "Traceback" not in out.output
