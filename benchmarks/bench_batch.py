"""Throughput of ``maskwatch batch`` with 1 and 2 Ray workers against the plain engine of watch / detect
on the same inputs, in one run:

    MASKWATCH_SHARED=/work/shared PYTHONPATH=src python benchmarks/bench_batch.py --videos 4 --frames 150 --images 64

Videos: synthetic 640x480 25 FPS scenes (tests/helpers/scenes.py swap scene: real photos, masks coming off);
images: photos from the data share (chandrikadeb7-faces). Watch's defaults (centerface at 640, detector
every 3rd frame, the shipped classifier), one ONNX Runtime thread per worker and for the baseline. The
batch figures include starting the local Ray cluster and loading the models in each actor (reported).
Hours of video per hour = video seconds / wall seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the tests.helpers package
sys.path.insert(0, str(REPO / "src"))
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))


def plain_watch(videos: list[Path]) -> tuple[float, float]:
    from maskwatch.monitor import Watcher, run_watch
    from maskwatch.pipeline import build_pipeline
    from maskwatch.video import VideoFileSource

    t0 = time.perf_counter()
    pipe = build_pipeline("centerface", min_face=20, threads=1, input_size=640)
    video_s = 0.0
    for v in videos:
        src = VideoFileSource(v)
        stats = run_watch(src, Watcher(pipe.detector, pipe.classifier, source=str(v), detect_every=3, min_face=20))
        video_s += stats.frames / src.fps
    return video_s, time.perf_counter() - t0


def plain_detect(folder: Path) -> tuple[int, float]:
    from maskwatch.images import find_images, read_image
    from maskwatch.pipeline import build_pipeline

    t0 = time.perf_counter()
    pipe = build_pipeline(None, threads=1)
    files = [f.path for f in find_images([folder])]
    for f in files:
        pipe(read_image(f))
    return len(files), time.perf_counter() - t0


def batch(inputs: list[str], workers: int, db: str) -> tuple[object, float, float]:
    import ray

    from maskwatch.batch import Settings, expand_inputs, run_batch

    t0 = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    startup = time.perf_counter() - t0
    try:
        items, _ = expand_inputs(inputs, images_per_item=8)
        result = run_batch(items, Settings(threads=1), db=db, workers=workers, json_dir=Path(db.removeprefix("sqlite:///")).with_suffix(".json"))
    finally:
        ray.shutdown()
    return result, startup, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=150, help="frames per video (swap scene repeats)")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--shared", default=os.environ.get("MASKWATCH_SHARED", str(REPO.parent / "shared")))
    args = parser.parse_args()

    from maskwatch.detectors import create_detector
    from tests.helpers.scenes import find_sprites, swap_scene

    faces = Path(args.shared) / "data" / "chandrikadeb7-faces" / "without_mask"
    work = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    try:
        sprites = find_sprites(faces, create_detector("centerface", threads=1, input_size=320), 2)
        scene = swap_scene(sprites)
        scene.frames = args.frames
        videos = [scene.write(work / f"cam{i:02d}.avi") for i in range(args.videos)]
        photos = work / "photos"
        photos.mkdir()
        for p in sorted(faces.glob("*.jpg"))[:args.images]:
            shutil.copy(p, photos)
        load_before = os.getloadavg()
        video_s, wall = plain_watch(videos)
        n, wall_d = plain_detect(photos)
        rows = [("plain engine (watch / detect), 1 core", "-", video_s / wall, None, n / wall_d, None, [])]
        for workers in (1, 2):
            r_v, start_v, wall_v = batch([str(v) for v in videos], workers, f"sqlite:///{work}/v{workers}.db")
            r_i, start_i, wall_i = batch([str(photos)], workers, f"sqlite:///{work}/i{workers}.db")
            rows.append((f"batch, {workers} worker{'s' if workers > 1 else ''}", f"{start_v:.1f} / {start_i:.1f}",
                         r_v.video_s / wall_v, r_v.video_s / max(wall_v - start_v, 1e-9),
                         r_i.images / wall_i, r_i.images / max(wall_i - start_i, 1e-9), r_v.failed + r_i.failed))
        print(f"{len(videos)} videos x {video_s / len(videos):.0f} s, {n} images; load average "
              f"{' '.join(f'{x:.2f}' for x in load_before)} before, {' '.join(f'{x:.2f}' for x in os.getloadavg())} after "
              f"({os.cpu_count()} CPUs)")
        print("| run | Ray start s (videos / images) | h of video / h | h/h after start | images/s | images/s after start | failed |")
        print("|---|---|---|---|---|---|---|")
        for name, start, vh, vh_after, ips, ips_after, failed in rows:
            print(f"| {name} | {start} | {vh:.2f} | {'-' if vh_after is None else f'{vh_after:.2f}'} | {ips:.2f} | "
                  f"{'-' if ips_after is None else f'{ips_after:.2f}'} | {len(failed)} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
