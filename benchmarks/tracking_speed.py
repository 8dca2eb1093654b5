#!/usr/bin/env python3
"""Per-frame time of the tracker (``yolact_ros.tracking``) on a synthetic scene.

    python benchmarks/tracking_speed.py                 # 10 and 50 objects, 300 frames each
    python benchmarks/tracking_speed.py --objects 10 50 100 --frames 600

``N`` objects (ellipse masks in tight windows, 30-80 px, random constant velocities bouncing off
the borders of a 640x480 image, scores 0.3-1.0, two classes) are tracked at 30 fps, one in ten
detections missed. Prints the median and p90 milliseconds of ``Tracker.update`` per frame (after
20 warm-up frames), with a box-only cost (``mask_weight=0``) and with box + mask
(``mask_weight=0.5``), and the mean number of live tracks. Target: median <= 1 ms for 50 tracks.
The duplicate check (by masks, with either cost) is on, at the tracker's default;
``--duplicate-iou 1`` times the tracker without it.
"""

import argparse
import statistics
import time
from typing import List, Optional

import numpy as np

from yolact_ros.structures import Detections, WindowedMasks
from yolact_ros.tracking import Tracker, TrackerConfig

IMAGE = (480, 640)
FRAME_RATE = 30.0
WARMUP = 20


def ellipse(height: int, width: int) -> np.ndarray:
    """Return a ``bool[height, width]`` ellipse filling its window."""
    rows = (np.arange(height) + 0.5) / height * 2 - 1
    cols = (np.arange(width) + 0.5) / width * 2 - 1
    return rows[:, None] ** 2 + cols[None, :] ** 2 <= 1


def scene(objects: int, frames: int, seed: int = 0) -> List[Detections]:
    """Return ``frames`` frames of ``objects`` moving objects as Detections."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(30, 81, (objects, 2))  # (N, 2) h, w
    windows = [ellipse(int(h), int(w)) for h, w in sizes]
    position = rng.uniform([0, 0], np.array(IMAGE) - sizes)  # (N, 2) top, left
    velocity = rng.uniform(-6, 6, (objects, 2))  # px per frame
    class_ids = rng.integers(0, 2, objects)
    stream = []
    for _ in range(frames):
        position += velocity
        outside = (position < 0) | (position > np.array(IMAGE) - sizes)
        velocity[outside] *= -1
        position = np.clip(position, 0, np.array(IMAGE) - sizes)
        shown = np.flatnonzero(rng.random(objects) > 0.1)
        scores = rng.uniform(0.3, 1.0, len(shown)).astype(np.float32)
        order = shown[np.argsort(-scores)]
        scores = np.sort(scores)[::-1]
        origins = np.rint(position[order]).astype(np.int64)  # (D, 2) y, x
        boxes = np.concatenate([origins[:, ::-1], origins[:, ::-1] + sizes[order, ::-1]], axis=1)
        stream.append(Detections(
            boxes=boxes.astype(np.float32), scores=scores, class_ids=class_ids[order],
            class_names=[str(c) for c in class_ids[order]], category_ids=class_ids[order] + 1,
            mask_windows=WindowedMasks(IMAGE, origins, tuple(windows[i] for i in order)),
            image_size=IMAGE))
    return stream


def time_tracker(stream: List[Detections], mask_weight: float, duplicate_iou: float):
    """Return per-frame ms after warm-up and the mean number of live tracks."""
    tracker = Tracker(TrackerConfig(mask_weight=mask_weight, duplicate_iou=duplicate_iou,
                                    frame_rate=FRAME_RATE))
    times, live = [], []
    for index, detections in enumerate(stream):
        start = time.perf_counter()
        tracker.update(detections, index / FRAME_RATE)
        elapsed = (time.perf_counter() - start) * 1e3
        if index >= WARMUP:
            times.append(elapsed)
            live.append(len(tracker._ids))  # a benchmark may reach inside
    return times, statistics.mean(live)


def main(argv: Optional[List[str]] = None) -> None:
    """Parse the options, build the scenes, time the tracker."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--objects', type=int, nargs='+', default=[10, 50],
                        help='objects in the scene, one run each')
    parser.add_argument('--frames', type=int, default=300, help='frames per run')
    parser.add_argument('--duplicate-iou', type=float, default=TrackerConfig.duplicate_iou,
                        help="the duplicate check's mask IoU (default: the tracker's, "
                        f'{TrackerConfig.duplicate_iou}); 1 turns the check off')
    args = parser.parse_args(argv)
    print(f'{"objects":>7} {"cost":>10} {"tracks":>6} {"median ms":>9} {"p90 ms":>7}')
    for objects in args.objects:
        stream = scene(objects, args.frames + WARMUP)
        for label, mask_weight in (('box', 0.0), ('box+mask', 0.5)):
            times, live = time_tracker(stream, mask_weight, args.duplicate_iou)
            p90 = float(np.percentile(times, 90))
            print(f'{objects:>7} {label:>10} {live:>6.1f} {statistics.median(times):>9.3f} '
                  f'{p90:>7.3f}')


if __name__ == '__main__':
    main()
