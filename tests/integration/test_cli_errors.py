"""One error handler and exit-status scheme for every command, and help that reads at 80 columns."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.cli._common import guard_commands
from maskwatch.errors import MaskWatchError
from maskwatch.faces import Faces

runner = CliRunner()


def all_commands(typer_app: typer.Typer, prefix: tuple[str, ...] = ()):
    for command in typer_app.registered_commands:
        yield prefix + (command.name or command.callback.__name__,), command
    for group in typer_app.registered_groups:
        yield from all_commands(group.typer_instance, prefix + (group.name,))


def test_every_command_runs_inside_the_one_error_handler():
    names = [" ".join(path) for path, command in all_commands(app)]
    assert {"detect", "classify", "serve", "events", "config check", "eval detect"} <= set(names)
    unguarded = [" ".join(path) for path, command in all_commands(app)
                 if not getattr(command.callback, "maskwatch_guarded", False)]
    assert unguarded == []


def test_the_handler_turns_errors_and_ctrl_c_into_the_documented_statuses():
    demo = typer.Typer()

    @demo.command("bad")
    def bad(count: int = typer.Option(1, "--count", help="How many.")) -> None:
        raise MaskWatchError(f"{count} is not enough [server]")

    @demo.command("stop")
    def stop() -> None:
        raise KeyboardInterrupt

    guard_commands(demo)
    out = runner.invoke(demo, ["bad", "--count", "3"])
    assert out.exit_code == 2 and out.output.strip() == "error: 3 is not enough [server]"  # no markup eaten
    out = runner.invoke(demo, ["stop"])
    assert out.exit_code == 130 and out.output.strip() == "interrupted"
    out = runner.invoke(demo, ["bad", "--help"])
    assert out.exit_code == 0 and "How many." in out.output  # typer still reads the wrapped signature


class FakePipeline:
    detector = type("D", (), {"name": "fake", "min_score": 0.1})()

    def __call__(self, image, timer=None):
        return Faces(boxes=[[1, 1, 9, 9]], scores=[0.9], probs=[[0.1, 0.8, 0.1]])


@pytest.fixture
def photos(tmp_path):
    for name in ("a", "b", "c"):
        Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(tmp_path / f"{name}.png")
    return tmp_path


def test_detect_interrupted_prints_its_summary_and_exits_130(monkeypatch, photos):
    import maskwatch.service.detect as detect

    monkeypatch.setattr(detect, "build_detect_pipeline", lambda config: FakePipeline())
    real = detect.DetectService.detect_file
    calls = []

    def interrupted_second(self, path, out=None):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, path, out)

    monkeypatch.setattr(detect.DetectService, "detect_file", interrupted_second)
    jsonl = photos / "d.jsonl"
    out = runner.invoke(app, ["detect", str(photos), "--no-draw", "--json", str(jsonl)])
    assert out.exit_code == 130, out.output
    assert "interrupted; results so far are written" in out.output
    assert "images: 1 processed, 0 failed | faces: 1 (mask 0, no_mask 1, incorrect 0)" in out.output
    (line,) = jsonl.read_text().splitlines()
    assert json.loads(line)["image"].endswith("a.png")


def test_detect_with_a_fake_pipeline_keeps_its_output(monkeypatch, photos):
    import maskwatch.service.detect as detect

    monkeypatch.setattr(detect, "build_detect_pipeline", lambda config: FakePipeline())
    (photos / "d.png").write_bytes(b"")
    out = runner.invoke(app, ["detect", str(photos), "--out", str(photos / "out"), "--json", str(photos / "d.jsonl")])
    assert out.exit_code == 1, out.output  # one input failed, the rest were processed
    assert "d.png: empty file (0 bytes)" in out.output
    assert "a.png: 1 face(s): 1 no_mask (" in out.output and f"-> {photos / 'out' / 'a.maskwatch.jpg'}" in out.output
    assert "images: 3 processed, 1 failed | faces: 3 (mask 0, no_mask 3, incorrect 0) | images with someone " \
           "unmasked: 3 | mean ms/image: decode " in out.output
    assert sorted(p.name for p in (photos / "out").iterdir()) == ["a.maskwatch.jpg", "b.maskwatch.jpg", "c.maskwatch.jpg"]


def test_classify_interrupted_exits_130(monkeypatch, photos):
    import maskwatch.service.classify as classify

    def stop(self, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(classify.ClassifyService, "__init__", lambda self, config=None: None)
    monkeypatch.setattr(classify.ClassifyService, "classify_file", stop)
    out = runner.invoke(app, ["classify", str(photos)])
    assert out.exit_code == 130 and out.output.strip().splitlines()[-1] == "interrupted"


def test_help_reads_at_80_columns():
    env = {"COLUMNS": "80"}
    top = runner.invoke(app, ["--help"], env=env)
    assert top.exit_code == 0
    commands = top.output.split("Commands:")[1]
    assert "..." not in commands  # each command's first paragraph whole
    assert "130 interrupted" in top.output  # the exit-status scheme
    for path, _ in all_commands(app):
        out = runner.invoke(app, [*path, "--help"], env=env)
        assert out.exit_code == 0, (path, out.output)
        assert max(len(line) for line in out.output.splitlines()) <= 80, path
    detect = runner.invoke(app, ["detect", "--help"], env=env).output
    # the help text gets most of the width (rich's tables left it 24 columns)
    assert any("--example" in line and "Run on the bundled example photo" in line for line in detect.splitlines())
