"""maskwatch batch on a real local Ray cluster (started here, 2 CPUs, no dashboard; and one started with
`ray start --head`) with the events in a real PostgreSQL: the same events as the watch engine, a killed
worker's input redone, a re-run that writes nothing new, images as detect's JSON lines (a re-run retries
only the images that failed), failures listed by name, one track id per person across segments."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maskwatch.cli import app
from maskwatch.store import EventStore
from tests.helpers.scenes import Actor, Scene, find_sprites, swap_scene, write_colour_key_onnx

ray = pytest.importorskip("ray")
REPO = Path(__file__).resolve().parents[2]
RAY_CLI = Path(sys.executable).with_name("ray")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from maskwatch.batch import CRASH_ENV

    marker = tmp_path_factory.mktemp("crash")
    old = {k: os.environ.get(k) for k in (CRASH_ENV, "PYTHONPATH", "OMP_NUM_THREADS")}
    os.environ[CRASH_ENV] = f"crashme:{marker}"  # workers inherit the driver's environment
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), old["PYTHONPATH"]]))
    os.environ["OMP_NUM_THREADS"] = "1"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        yield marker
    finally:
        ray.shutdown()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def sprites(shared_dir):
    from maskwatch.detectors import create_detector

    found = find_sprites(shared_dir / "data" / "chandrikadeb7-faces" / "without_mask",
                         create_detector("centerface", threads=1, input_size=320), 2)
    assert len(found) == 2
    return found


def watch_events(path: Path, model: Path) -> list[tuple]:
    """What `maskwatch watch FILE --classifier-model M --input-size 320 --detect-every 3` raises."""
    from maskwatch.monitor import StateConfig, Watcher, run_watch
    from maskwatch.pipeline import build_pipeline
    from maskwatch.video import VideoFileSource

    pipe = build_pipeline("centerface", min_face=20, threads=1, classifier_model=str(model), input_size=320)
    watcher = Watcher(pipe.detector, pipe.classifier, source=str(path), detect_every=3,
                      state_config=StateConfig(), min_face=20)
    run_watch(VideoFileSource(path), watcher)
    return sorted((e.source, e.type, e.track_id, e.frame) for e in watcher.events)


@pytest.mark.slow
def test_batch_videos_match_watch_survive_a_killed_worker_and_resume(tmp_path, cluster, sprites, postgres_url):
    from maskwatch.batch import Settings, expand_inputs, run_batch

    model = write_colour_key_onnx(tmp_path / "ck.onnx")
    door = swap_scene(sprites).write(tmp_path / "door.avi")
    crash = Scene([Actor(sprites[1], path=lambda f: (250, 150), state=lambda f: "no_mask")], frames=40,
                  seed=4).write(tmp_path / "crashme.avi")
    settings = Settings(classifier_model=str(model), input_size=320, detect_every=3, threads=1)
    items, problems = expand_inputs([str(door), str(crash)])
    assert not problems and [i.kind for i in items] == ["video", "video"]

    seen: list[int] = []
    result = run_batch(items, settings, db=postgres_url, workers=2, on_progress=seen.append)
    assert result.failed == [] and len(result.done) == 2 and result.frames == 190
    # the bar moves inside the videos (frames reported by the workers), not only when one is finished
    assert seen[-1] == 190 and seen == sorted(seen) and set(seen) - {0, 40, 150, 190}, seen
    assert list(cluster.glob("crashed-*")), "the test hook did not kill a worker"  # crashme's first attempt died
    stored = EventStore(postgres_url).query()
    got = sorted((e.source, e.type, e.track_id, e.frame) for e in stored)
    expected = sorted(watch_events(door, model) + watch_events(crash, model))
    assert got == expected and len(got) == 5, got
    assert all(e.video_time == pytest.approx(e.frame / 25.0) for e in stored)

    again = run_batch(items, settings, db=postgres_url, workers=2)  # nothing left to do: Ray is not even asked
    assert again.done == [] and len(again.skipped) == 2 and again.events == 0
    assert len(EventStore(postgres_url).query()) == len(stored)


def json_records(folder: Path) -> list[dict]:
    return [r for f in sorted(folder.glob("*.jsonl")) for r in map(json.loads, f.read_text().splitlines())]


@pytest.mark.slow
def test_batch_cli_images_as_detect_and_failures_by_name(tmp_path, cluster, sprites, postgres_url):
    import cv2

    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.jpg"), sprites[0].images["no_mask"])
    cv2.imwrite(str(photos / "b.jpg"), sprites[1].images["mask"])
    good_c = cv2.imencode(".jpg", sprites[1].images["no_mask"])[1].tobytes()
    unreadable = photos / "c.jpg"
    unreadable.write_bytes(b"\0" * len(good_c))  # as a read error would leave it: same size, no image
    stamp = unreadable.stat().st_mtime_ns
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    manifest = tmp_path / "inputs.txt"
    manifest.write_text(f"# archive\n{photos}\n{broken}\n")
    out = tmp_path / "json"
    run = CliRunner().invoke(app, ["batch", "--manifest", str(manifest), "--db", postgres_url, "--json-dir", str(out)])
    assert run.exit_code == 1, run.output
    assert "failed: " in run.stderr and str(broken) in run.stderr and "c.jpg" in run.stderr
    got = {r["image"]: r["faces"] for r in json_records(out)}
    ref = CliRunner().invoke(app, ["detect", str(photos), "--no-draw", "--json", str(tmp_path / "d.jsonl"), "-q"])
    assert ref.exit_code == 1  # c.jpg fails there too
    want = {r["image"]: r["faces"] for r in map(json.loads, (tmp_path / "d.jsonl").read_text().splitlines())}
    assert got == want and len(got) == 2

    # a re-run retries c.jpg only (still unreadable: failed again), a.jpg and b.jpg are not redone
    again = CliRunner().invoke(app, ["batch", str(photos), "--db", postgres_url, "--json-dir", str(out)])
    assert again.exit_code == 1 and "c.jpg" in again.stderr and "a.jpg" not in again.stderr, again.stderr
    assert "1 inputs done" in again.stderr and ", 0 images," in again.stderr, again.stderr
    assert sorted(r["image"] for r in json_records(out)) == sorted(want)

    # the read error is gone (same size and mtime: the same unit): c.jpg is done, the others not touched
    unreadable.write_bytes(good_c)
    os.utime(unreadable, ns=(stamp, stamp))
    fixed = CliRunner().invoke(app, ["batch", str(photos), "--db", postgres_url, "--json-dir", str(out)])
    assert fixed.exit_code == 0 and ", 1 images," in fixed.stderr, fixed.stderr
    ref = CliRunner().invoke(app, ["detect", str(photos), "--no-draw", "--json", str(tmp_path / "d2.jsonl"), "-q"])
    want = {r["image"]: r["faces"] for r in map(json.loads, (tmp_path / "d2.jsonl").read_text().splitlines())}
    records = json_records(out)
    assert len(records) == 3 and {r["image"]: r["faces"] for r in records} == want  # each image once

    last = CliRunner().invoke(app, ["batch", str(photos), "--db", postgres_url, "--json-dir", str(out)])
    assert last.exit_code == 0 and "0 inputs done, 1 skipped" in last.stderr, last.stderr
    assert len(json_records(out)) == 3


@pytest.mark.slow
def test_segments_with_overlap_raise_each_event_once(tmp_path, sprites):
    """Videos cut in 2 s segments with a 1.5 s warm-up: someone standing across both boundaries enters once,
    and the swap scene (changes at frames 50, 70, 100; boundaries at 50 and 100) gives the whole file's events."""
    from maskwatch.batch import BatchWorker, Settings, expand_inputs

    model = write_colour_key_onnx(tmp_path / "ck.onnx")
    worker = BatchWorker(Settings(classifier_model=str(model), input_size=320, detect_every=3, threads=1))
    still = Scene([Actor(sprites[1], path=lambda f: (250, 150), state=lambda f: "no_mask")], frames=150,
                  seed=4).write(tmp_path / "still.avi")
    swap = swap_scene(sprites).write(tmp_path / "swap.avi")
    items, _ = expand_inputs([str(still), str(swap)], segment_s=2.0, overlap_s=1.5)
    assert [i.span for i in items] == [(0, 50), (50, 100), (100, 150)] * 2
    assert len({i.key for i in items}) == 6 and [i.warmup for i in items[:3]] == [0, 38, 38]
    got = {path: [] for path in (str(still), str(swap))}
    for item in items:
        got[item.path] += worker.run(item)["events"]
    (entered,) = got[str(still)]  # raised by segment 0; segments 1 and 2 saw it in their warm-up only
    assert entered.type == "entered_unmasked" and entered.frame < 50
    whole = sorted((t, f) for _, t, _, f in watch_events(swap, model))
    assert sorted((e.type, e.frame) for e in got[str(swap)]) == whole


def by_track(events) -> set[tuple]:
    """The events grouped by track id (the ids themselves differ between runs): {((type, frame), ...)}."""
    groups: dict = defaultdict(list)
    for source, kind, track, frame in events:
        groups[(source, track)].append((kind, frame))
    return {(source, *sorted(g)) for (source, _), g in groups.items()}


@pytest.mark.slow
def test_segments_keep_one_track_id_per_person(tmp_path, cluster, sprites):
    """Through the driver (Ray, a store): someone across two boundaries keeps one track id; the swap scene's
    events grouped by track are the whole file's; someone the next segment's tracker first confirms after
    the boundary (hidden for most of its warm-up) is not reported a second time."""
    from maskwatch.batch import BatchWorker, Settings, expand_inputs, run_batch

    model = write_colour_key_onnx(tmp_path / "ck.onnx")
    settings = Settings(classifier_model=str(model), input_size=320, detect_every=3, threads=1)
    walker = Scene([Actor(sprites[1], path=lambda f: (250, 150),
                          state=lambda f: "mask" if 20 <= f < 105 else "no_mask")], frames=150, seed=4)
    walker = walker.write(tmp_path / "walker.avi")
    swap = swap_scene(sprites).write(tmp_path / "swap.avi")
    hidden = Scene([Actor(sprites[1], path=lambda f: (250, 150), state=lambda f: "no_mask",
                          visible=lambda f: not 20 <= f < 47)], frames=100, seed=4).write(tmp_path / "hidden.avi")
    items = expand_inputs([str(walker), str(swap)], segment_s=2.0, overlap_s=1.5)[0]
    late = expand_inputs([str(hidden)], segment_s=2.0, overlap_s=1.0)[0]
    # the case: segment 1 sees the person only at frame 48 of its warm-up and decides after frame 50
    raw = BatchWorker(settings).run(late[1])["events"]
    assert [(e.type, e.frame > 50) for e in raw] == [("entered_unmasked", True)]

    db = f"sqlite:///{tmp_path / 'events.db'}"
    result = run_batch(items + late, settings, db=db, workers=2)
    assert result.failed == [] and len(result.done) == 8
    stored = [(e.source, e.type, e.track_id, e.frame) for e in EventStore(db).query()]
    for video in (walker, swap, hidden):
        mine = [e for e in stored if e[0] == str(video)]
        assert by_track(mine) == by_track(watch_events(video, model)), (video.name, mine)
    walked = [e for e in stored if e[0] == str(walker)]
    assert len(walked) == 3 and len({e[2] for e in walked}) == 1  # entered at ~6, restored at ~30, removed at ~110
    assert walked[0][3] < 50 and walked[-1][3] >= 100  # raised in segments 0 and 2: one id over both boundaries
    assert [e[1] for e in stored if e[0] == str(hidden)] == ["entered_unmasked"]


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def session_processes(sid: int) -> list[int]:
    """Pids of the processes in session ``sid`` (what `ray start` started, and the workers they forked)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # after the name: state, ppid, pgrp, session
            pids.append(int(stat.parent.name))
    return pids


@pytest.fixture()
def ray_head(tmp_path):
    """A cluster started with `ray start --head` (2 CPUs) on 127.0.0.1, every port free-picked, its own
    temp dir; taken down by killing the processes of the session it was started in (not `ray stop`, which
    stops every Ray on the machine)."""
    if not RAY_CLI.exists():
        pytest.skip(f"needs the ray command beside {sys.executable}")
    temp = Path(tempfile.mkdtemp(prefix="mwray", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    gcs, node, objects, client, agent, agent_grpc, runtime_env, metrics = free_ports(8)
    low = 20000 + (os.getpid() % 200) * 100
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0",
           # token authentication (Ray's default for new clusters) with a token of this cluster's own; a driver
           # given an explicit address uses it only when told to (RAY_AUTH_MODE=token), see docs/scale.md
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN_PATH"):
        env.pop(name, None)
    starter = subprocess.Popen(
        [str(RAY_CLI), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(gcs), "--num-cpus", "2",
         "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", str(temp),
         "--node-manager-port", str(node), "--object-manager-port", str(objects), "--ray-client-server-port", str(client),
         "--dashboard-agent-listen-port", str(agent), "--dashboard-agent-grpc-port", str(agent_grpc),
         "--runtime-env-agent-port", str(runtime_env), "--metrics-export-port", str(metrics),
         "--min-worker-port", str(low), "--max-worker-port", str(low + 99)],
        env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sid = starter.pid
    try:
        log, _ = starter.communicate(timeout=240)
        assert starter.returncode == 0, log
        yield f"127.0.0.1:{gcs}", env
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in session_processes(sid):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 15
            while session_processes(sid) and time.monotonic() < deadline:
                time.sleep(0.3)
        leftover = session_processes(sid)
        import shutil

        shutil.rmtree(temp, ignore_errors=True)
        assert not leftover, f"ray processes left running: {leftover}"


@pytest.mark.slow
def test_batch_cli_on_a_ray_start_cluster(tmp_path, ray_head, sprites, postgres_url):
    """`maskwatch batch --ray HOST:PORT`, then `--ray auto` with RAY_ADDRESS, each a process of its own (the
    driver), against a cluster of `ray start --head`: the watch engine's events in PostgreSQL, the second
    run doing only the new file."""
    address, env = ray_head
    model = write_colour_key_onnx(tmp_path / "ck.onnx")
    door = swap_scene(sprites).write(tmp_path / "door.avi")
    still = Scene([Actor(sprites[1], path=lambda f: (250, 150), state=lambda f: "no_mask")], frames=40,
                  seed=4).write(tmp_path / "still.avi")
    common = ["--db", postgres_url, "--classifier-model", str(model), "--input-size", "320"]

    def batch(*args: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "maskwatch", "batch", *args, *common], env={**env, **(extra_env or {})},
                              capture_output=True, text=True, timeout=400)

    first = batch(str(door), "--ray", address)
    assert first.returncode == 0 and "1 inputs done" in first.stderr and "on 1 workers" in first.stderr, first.stderr
    second = batch(str(door), str(still), "--ray", "auto", extra_env={"RAY_ADDRESS": address})
    assert second.returncode == 0 and "1 inputs done, 1 skipped" in second.stderr, second.stderr
    got = sorted((e.source, e.type, e.track_id, e.frame) for e in EventStore(postgres_url).query())
    assert got == sorted(watch_events(door, model) + watch_events(still, model)) and len(got) == 5, got


def test_link_segment_takes_the_earlier_id_and_state():
    """The rules of linking, on hand-made boxes: a matched track takes the earlier id; its first decision is
    dropped when the earlier segment had that state, turned into the change when it had another; an
    unmatched track gets an id of its own segment; rows past the boundary carry no state."""
    from datetime import datetime, timezone

    from maskwatch.batch.segments import ID_STRIDE, link_segment
    from maskwatch.store.events_db import Event

    def ev(track, frame, after, before=None):
        kind = {"no_mask": "entered_unmasked", "mask": "mask_restored"}[after] if before is None or after == "mask" \
            else "mask_removed"
        return Event(type=kind, time=datetime.now(timezone.utc), source="v", track_id=track, frame=frame,
                     state_before=before, state_after=after)

    # earlier segment (ids already final): 7 masked, 9 unmasked, both still there one frame past the boundary
    prev_tail = {"45": [[7, 0, 0, 50, 50, "mask"], [9, 200, 0, 250, 50, "no_mask"]],
                 "51": [[7, 1, 0, 51, 50, None], [9, 201, 0, 251, 50, None]]}
    head = {"45": [[2, 1, 1, 50, 50, None]], "51": [[2, 1, 0, 51, 50, None], [3, 201, 1, 251, 50, None]],
            "54": [[4, 400, 0, 450, 50, None]]}
    events = [ev(2, 53, "no_mask"), ev(3, 56, "no_mask"), ev(3, 80, "mask", "no_mask"), ev(4, 60, "no_mask")]
    kept, tail = link_segment(1, 50, events, head, {"90": [[2, 5, 5, 55, 55, "no_mask"], [4, 0, 0, 9, 9, None]]},
                              prev_tail)
    got = [(e.type, e.track_id, e.state_before, e.frame) for e in kept]
    assert got == [("mask_removed", 7, "mask", 53),  # 2 is 7 (was masked): not a new entry, a removal
                   ("entered_unmasked", ID_STRIDE + 4, None, 60),  # 4 is new
                   ("mask_restored", 9, "no_mask", 80)]  # 3 is 9: its entry at 56 was reported before
    assert tail == {"90": [[7, 5, 5, 55, 55, "no_mask"], [ID_STRIDE + 4, 0, 0, 9, 9, None]]}
