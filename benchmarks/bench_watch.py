"""FPS of the watch loop at 640x480 with 1, 3 and 8 faces, per stage, detector on every frame or every Nth.

    MASKWATCH_SHARED=/work/shared PYTHONPATH=src python benchmarks/bench_watch.py --frames 90 --every 1 3 5

Then, for each --every, the event delay on the 135-frame swap scene of the tests (4 changes at known frames):
how many frames after the picture changed each event came, and whether any was missed or extra.

Frames are pre-rendered synthetic scenes (tests/helpers/scenes.py: real photos moving over a background, noise);
decoding and drawing are not counted. The classifier is the trained ONNX when one is installed, else the
colour-keyed stand-in (flagged in the output): its cost is then not the real classifier's.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the tests.helpers package
sys.path.insert(0, str(REPO / "src"))

from maskwatch.detectors import create_detector  # noqa: E402
from maskwatch.errors import ModelError  # noqa: E402
from maskwatch.monitor import Watcher  # noqa: E402
from maskwatch.video import Frame  # noqa: E402
from tests.helpers.scenes import SWAP_CHANGES, Actor, ColourKeyClassifier, Scene, background, find_sprites, swap_scene  # noqa: E402


def classifier(threads: int):
    try:
        from maskwatch.classifier import MaskClassifier

        return MaskClassifier(threads=threads), "onnx"
    except ModelError:
        return ColourKeyClassifier(), "colour-key stand-in"


def scene(sprites, n: int, frames: int) -> list[np.ndarray]:
    actors = []
    for i in range(n):
        col, row = i % 4, i // 4
        sprite = sprites[i % len(sprites)]
        actors.append(Actor(sprite, path=lambda f, c=col, r=row: (10 + 155 * c + (f % 40), 40 + 220 * r + 0.3 * f),
                            state=lambda f, i=i: "mask" if (f // 45 + i) % 2 else "no_mask"))
    sc = Scene(actors, frames=frames, noise=4, seed=n)
    rng = np.random.default_rng(0)
    bg = background(seed=n)
    return [sc.render(i, bg, rng) for i in range(frames)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--faces", type=int, nargs="+", default=[1, 3, 8])
    parser.add_argument("--every", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--input-size", type=int, default=640)
    parser.add_argument("--shared", default=os.environ.get("MASKWATCH_SHARED", str(REPO.parent / "shared")))
    args = parser.parse_args()
    detector = create_detector("centerface", threads=args.threads, input_size=args.input_size)
    clf, kind = classifier(args.threads)
    sprites = find_sprites(Path(args.shared) / "data" / "chandrikadeb7-faces" / "without_mask", detector, 8, height=110)
    print(f"classifier: {kind}; detector: CenterFace input {args.input_size}, {args.threads} threads; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| faces | detect every | FPS | ms/frame | detect | track | classify | state | flow | faces found/frame |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in args.faces:
        frames = scene(sprites, n, args.frames)
        for every in args.every:
            watcher = Watcher(detector, clf, source="bench", detect_every=every)
            found = 0
            watcher.process(Frame(0, frames[0], 0.0, time.time()))  # warm-up
            watcher.timer.ms.clear()
            started = time.perf_counter()
            for i, image in enumerate(frames[1:], 1):
                faces, _ = watcher.process(Frame(i, image, i / 25, time.time()))
                found += len(faces)
            took = time.perf_counter() - started
            count = len(frames) - 1
            stage = {k: v / count for k, v in watcher.timer.ms.items()}
            cols = " | ".join(f"{stage.get(k, 0):.1f}" for k in ("detect", "track", "classify", "state", "flow"))
            print(f"| {n} | {every} | {count / took:.1f} | {took * 1000 / count:.1f} | {cols} | {found / count:.1f} |",
                  flush=True)

    print("\n| detect every | events found / expected | extra | delay, frames (entered, removed A, removed B, restored) |")
    print("|---|---|---|---|")
    rng = np.random.default_rng(0)
    sc = swap_scene(sprites[:2])
    bg = background(seed=sc.seed)
    frames = [sc.render(i, bg, rng) for i in range(sc.frames)]
    for every in args.every:
        watcher = Watcher(detector, ColourKeyClassifier(), source="swap", detect_every=every)
        for i, image in enumerate(frames):
            watcher.process(Frame(i, image, i / sc.fps, time.time()))
        delays, unmatched = [], list(watcher.events)
        for at, _actor, before, after in SWAP_CHANGES:
            hit = next((e for e in unmatched if e.state_before == before and e.state_after == after and e.frame >= at), None)
            delays.append("missed" if hit is None else str(hit.frame - at))
            if hit is not None:
                unmatched.remove(hit)
        found = sum(d != "missed" for d in delays)
        print(f"| {every} | {found}/{len(SWAP_CHANGES)} | {len(unmatched)} | {', '.join(delays)} |", flush=True)


if __name__ == "__main__":
    main()
