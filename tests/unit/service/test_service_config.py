"""The venue config: validation with the key and line named, relative paths, check/example commands."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.service.config import ConfigError, load_config, parse_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "venue.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_passes_check(tmp_path):
    runner = CliRunner()
    example = runner.invoke(app, ["config", "example"])
    assert example.exit_code == 0 and "cameras:" in example.output and "# " in example.output
    path = write(tmp_path, example.output)
    checked = runner.invoke(app, ["config", "check", str(path)])
    assert checked.exit_code == 0, checked.output
    assert f"sqlite:///{tmp_path.resolve() / 'events.db'}" in checked.output
    assert str(tmp_path.resolve() / "snapshots") in checked.output


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    sub = tmp_path / "venue"
    sub.mkdir()
    config = load_config(write(sub, "cameras:\n  - name: door\n    source: videos/door.mp4\n"
                                    "  - name: cam\n    source: rtsp://h/s\n  - name: web\n    source: '0'\n"
                                    "store: db/events.db\nsnapshots:\n  dir: snaps\nmodels:\n  classifier: ck.onnx\n"))
    assert config.cameras[0].source == str(sub.resolve() / "videos" / "door.mp4")
    assert config.cameras[1].source == "rtsp://h/s" and config.cameras[2].source == "0"
    assert config.store == f"sqlite:///{sub.resolve() / 'db' / 'events.db'}"
    assert config.snapshots.dir == str(sub.resolve() / "snaps")
    assert config.models.classifier == str(sub.resolve() / "ck.onnx")


def test_postgres_url_kept_and_defaults_shared_with_watch(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKWATCH_DB", "postgresql+psycopg://u@localhost/mw")
    config = parse_config("cameras:\n  - {name: a, source: a.mp4}\n", tmp_path)
    assert config.store == "postgresql+psycopg://u@localhost/mw"
    from maskwatch.monitor import default_snapshot_dir

    assert config.snapshots.dir == str(default_snapshot_dir())


@pytest.mark.parametrize("text, expected", [
    ("cameras:\n  - name: a\n    source: a.mp4\n    detect_evry: 2\n", ":4: cameras[0].detect_evry: unknown key"),
    ("cameras:\n  - name: a\n    source: a.mp4\nmodel:\n  detector: yunet\n", ":4: model: unknown key"),
    ("cameras:\n  - name: a\n    source: a.mp4\n  - name: b\n    source: b.mp4\n    detect_every: 0\n",
     ":6: cameras[1].detect_every: Input should be greater than or equal to 1"),
    ("cameras:\n  - name: a\n    source: a.mp4\n    zone: [[0, 0], [1, 1]]\n", ":4: cameras[0].zone: a zone needs at least 3 points"),
    ("cameras:\n  - name: a b\n    source: a.mp4\n", ":2: cameras[0].name: letters"),
    ("cameras:\n  - {name: a, source: a.mp4}\n  - {name: a, source: b.mp4}\n", "used twice"),
    ("cameras: [\n", "not valid YAML"),
    ("", "empty"),
    ("cameras:\n  - name: a\n", ":2: cameras[0].source: Field required"),
    ("cameras:\n  - {name: a, source: a.mp4}\nspool:\n  max_mib: 3\n", ":4: spool.max_mib: unknown key"),
    ("cameras:\n  - name: a\n    source: a.mp4\n    lost_after_s: 0\n", ":4: cameras[0].lost_after_s: Input should be greater than 0"),
    ("cameras:\n  - name: a\n    source: a.mp4\n    refind: 2\n", ":4: cameras[0].refind: unknown key"),
    ("cameras:\n  - {name: a, source: a.mp4}\nspool:\n  path: s\n  max_events: 0\n",
     ":5: spool.max_events: Input should be greater than or equal to 1"),
])
def test_errors_name_key_and_line(tmp_path, text, expected):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_check_exits_2_with_one_line(tmp_path):
    result = CliRunner().invoke(app, ["config", "check", str(write(tmp_path, "cameras: []\nfoo: 1\n"))])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "error:" in result.output


def test_alerts_typed_and_secrets_hidden(tmp_path):
    config = parse_config("cameras:\n  - {name: a, source: a.mp4}\nalerts:\n  rules: {cooldown_person_s: 60, cameras: [a]}\n"
                          "  channels:\n    webhook: {url: 'http://h/x', secret: hooksecret}\n"
                          "    smtp: {host: m, from: a@b.c, to: [d@e.f], password: mailpw}\n"
                          "server:\n  api_key: s3cret\n  public_url: https://mw.example.org\n", tmp_path)
    assert config.alerts.rules.cooldown_person_s == 60 and config.alerts.channels.smtp.from_ == "a@b.c"
    assert config.server.public_url == "https://mw.example.org"
    shown = config.to_yaml()
    for secret in ("s3cret", "hooksecret", "mailpw"):
        assert secret not in shown
    assert "from: a@b.c" in shown  # the key as written in the file
    assert parse_config(shown.replace("<hidden>", "x"), tmp_path).alerts.channels.smtp.to == ["d@e.f"]


@pytest.mark.parametrize("text, where", [
    ("alerts:\n  rules:\n    cooldown: 3\n", ":5: alerts.rules.cooldown: unknown key"),
    ("alerts:\n  rules:\n    event_types: [nope]\n", ":5: alerts.rules.event_types: 'nope'"),
    ("alerts:\n  channels:\n    smtp: {host: h, to: [x@y]}\n", ":5: alerts.channels.smtp.from: Field required"),
    ("alerts:\n  rules:\n    cameras: [a, b]\n", ":5: alerts.rules.cameras: no camera named 'b'"),
    ("server:\n  public_url: mw.example.org\n", ":4: server.public_url: expected an http"),
])
def test_alerts_errors_name_key_and_line(tmp_path, text, where):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "cameras:\n  - {name: a, source: a.mp4}\n" + text))
    assert where in str(err.value), str(err.value)


def test_supervisor_gives_a_starting_camera_start_s_not_hang_s():
    """A camera still loading its models is not killed after hang_s (a busy machine), but is after start_s;
    once running, hang_s applies again."""
    import time
    from types import SimpleNamespace

    from maskwatch.service.config import SupervisorConfig
    from maskwatch.service.supervisor import is_hung

    sup = SupervisorConfig(hang_s=20, start_s=120)
    now = time.monotonic()
    starting = SimpleNamespace(state="starting", health={}, last_message=now - 60)
    assert not is_hung(starting, now, sup)
    starting.last_message = now - 121
    assert is_hung(starting, now, sup)
    running = SimpleNamespace(state="running", health={"state": "running", "progress": time.time()},
                              last_message=now - 21)
    assert is_hung(running, now, sup)
    running.last_message = now - 1
    assert not is_hung(running, now, sup)
    running.health["progress"] = time.time() - 30  # messages flow but no frame for 30 s: a stalled loop
    assert is_hung(running, now, sup)


def test_refind_outage_and_spool_keys(tmp_path):
    config = load_config(write(tmp_path, "cameras:\n  - name: door\n    source: rtsp://h/s\n    refind_s: 5\n"
                                         "    lost_after_s: 4.5\n    restore_after_s: 1\n  - {name: hall, source: h.mp4}\n"
                                         "spool:\n  path: spool/venue.jsonl\n  max_mb: 8\n  max_events: 500\n"))
    door, hall = config.cameras
    assert (door.refind_s, door.lost_after_s, door.restore_after_s) == (5.0, 4.5, 1.0)
    assert (hall.refind_s, hall.lost_after_s, hall.restore_after_s) == (3.0, 2.0, 2.0)  # watch's defaults
    assert config.spool.path == str(tmp_path.resolve() / "spool" / "venue.jsonl")
    spool = config.spool.spool_config()
    assert (spool.max_bytes, spool.max_events) == (8 * 2**20, 500)
    default = parse_config("cameras:\n  - {name: a, source: a.mp4}\n", tmp_path).spool.spool_config()
    assert default.path is None and (default.max_bytes, default.max_events) == (64 * 2**20, 100_000)


def test_example_shows_the_new_keys():
    from maskwatch.service.config import example_config

    text = example_config()
    for key in ("refind_s:", "lost_after_s:", "restore_after_s:", "spool:", "max_mb:", "max_events:"):
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(key))
        assert "#" in line, line  # each explained where it stands


def test_a_camera_worker_gets_its_keys_through_the_watch_config(tmp_path, monkeypatch):
    """The worker builds a WatchConfig from its camera: the outage debounce reaches the live source, the
    refind time the engine, the venue spool the store."""
    import maskwatch.video.sources as sources
    from maskwatch.service.watch import camera_watch_config, open_watch_source
    from maskwatch.store import EventStore

    config = parse_config("cameras:\n  - {name: door, source: 'rtsp://h/s', refind_s: 7, lost_after_s: 5,"
                          " restore_after_s: 3, detect_every: 2}\n"
                          f"store: {tmp_path / 'e.db'}\nspool: {{path: {tmp_path / 'sp'}, max_events: 9}}\n", tmp_path)
    watch = camera_watch_config(config.cameras[0], config, worker_pid=42)
    assert (watch.camera, watch.refind_s, watch.detect_every, watch.tags) == ("door", 7.0, 2, {"worker_pid": 42})
    opened: list = []
    monkeypatch.setattr(sources, "LiveSource", lambda spec, **kw: opened.append((spec, kw)) or "live")
    assert open_watch_source(watch.source) == "live"
    assert opened == [("rtsp://h/s", {"open_timeout_s": 10.0, "lost_after_s": 5.0, "restore_after_s": 3.0})]
    store = EventStore(watch.store, spool=watch.spool.spool_config())
    try:
        assert store.spool is not None and store.spool.path.parent == tmp_path / "sp" and store.spool.max_events == 9
    finally:
        store.close()


def test_docs_list_every_key():
    """docs/service.md has a row for every key of the venue config (alerts: docs/alerts.md)."""
    import typing

    from pydantic import BaseModel

    from maskwatch.service.config import ServiceConfig

    doc = (Path(__file__).resolve().parents[3] / "docs" / "service.md").read_text(encoding="utf-8")

    def keys(cls: type[BaseModel], prefix: str) -> list[str]:
        out = []
        for name, field in cls.model_fields.items():
            key = prefix + (field.alias or name)
            inner = [a for a in (field.annotation, *typing.get_args(field.annotation))
                     for a in (a, *typing.get_args(a)) if isinstance(a, type) and issubclass(a, BaseModel)]
            if inner and name != "alerts":
                out += keys(inner[0], key + ("[]." if name == "cameras" else "."))
            else:
                out.append(key)
        return out

    found = keys(ServiceConfig, "")
    assert len(found) > 40 and "cameras[].lost_after_s" in found and "spool.max_events" in found
    missing = [k for k in found if f"| `{k}` |" not in doc]
    assert not missing, missing
