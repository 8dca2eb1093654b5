"""Time ``yolact_ros.geometry.instances_3d``: 20 instances at 640x480, windowed and dense masks.

    PYTHONPATH=yolact_ros python benchmarks/depth.py        # median and p90 ms, 300 calls each
    PYTHONPATH=yolact_ros python benchmarks/depth.py --oriented --repeats 100
    PYTHONPATH=yolact_ros python benchmarks/depth.py --messages  # + the node's 3D messages

Masks are filled ellipses at random places (fixed seed), kept as windows of their tight boxes
(what the Segmenter returns) or as ``bool[20, 480, 640]``, in two sizes: ``large``, 40 to 200
pixels across (the instances of ``message_size.py``; together 94 % of the frame, 287k mask
pixels) and ``medium``, 20 to 100 across (25 %). Depth is ``uint16`` millimetres: a plane at
3.5 m, each ellipse a tilted surface at 1 to 3 m, 10 % of the pixels 0 (invalid). The time
grows with the mask pixels: on a shared 2-core VM, windows, median 3.3-4.4 ms for ``large``
and 1.7-2.1 ms for ``medium`` (target: <= 2 ms); dense masks cost ~1.3 ms more (the scan for
their boxes).
"""

import argparse
import statistics
import time
from typing import Callable, List, Optional, Tuple

import numpy as np

from yolact_ros.geometry import CameraIntrinsics, instances_3d
from yolact_ros.structures import WindowedMasks

HEIGHT, WIDTH, COUNT = 480, 640, 20
RADII = {'large': (20, 100), 'medium': (10, 50)}  # ellipse half-axes, pixels


def synthetic_frame(radii: Tuple[int, int] = RADII['large'],
                    seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Return ``bool[COUNT, H, W]`` elliptical masks and ``uint16[H, W]`` depth in mm."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    masks = np.zeros((COUNT, HEIGHT, WIDTH), bool)
    depth = np.full((HEIGHT, WIDTH), 3500.0)
    for i in range(COUNT):
        ry, rx = rng.integers(*radii, size=2)
        cy, cx = rng.integers(ry, HEIGHT - ry), rng.integers(rx, WIDTH - rx)
        masks[i] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        slope = rng.uniform(-2.0, 2.0, size=2)  # mm per pixel
        depth[masks[i]] = (rng.uniform(1000, 3000) + slope[0] * (yy - cy)
                           + slope[1] * (xx - cx))[masks[i]]
    depth[rng.uniform(size=depth.shape) < 0.1] = 0
    return masks, np.round(depth).astype(np.uint16)


def times_ms(function: Callable[[], object], repeats: int) -> List[float]:
    """Return the wall time of each of ``repeats`` calls of ``function`` in ms."""
    function()  # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main(argv: Optional[List[str]] = None) -> None:
    """Parse the options, time both mask forms, print median and p90."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--repeats', type=int, default=300, help='timed calls per form')
    parser.add_argument('--oriented', action='store_true', help='also fit oriented boxes')
    parser.add_argument('--messages', action='store_true',
                        help="also time building the node's detections_3d, markers and points "
                        '(rosbags classes, no ROS needed)')
    args = parser.parse_args(argv)

    camera = CameraIntrinsics(fx=525.0, fy=525.0, cx=319.5, cy=239.5, width=WIDTH,
                              height=HEIGHT)
    print(f'{COUNT} instances at {WIDTH}x{HEIGHT}, uint16 depth, oriented={args.oriented}, '
          f'{args.repeats} calls')
    for size, radii in RADII.items():
        masks, depth = synthetic_frame(radii)
        windows = WindowedMasks(masks.shape[1:], *_tight(masks))
        pixels = int(masks.sum())
        for name, form in (('windows', windows), ('dense', masks)):
            times = times_ms(lambda: instances_3d(form, depth, camera, oriented=args.oriented),
                             args.repeats)
            print(f'{size:6s} ({pixels / 1000:3.0f}k mask pixels) {name:7s} median '
                  f'{statistics.median(times):5.2f} ms   p90 {np.percentile(times, 90):5.2f} ms')
        if args.messages:
            times = times_ms(_build_messages(windows, depth, camera), args.repeats)
            print(f'{size:6s} 3D messages (detections_3d, markers, points) median '
                  f'{statistics.median(times):5.2f} ms   p90 {np.percentile(times, 90):5.2f} ms')


def _build_messages(windows: WindowedMasks, depth: np.ndarray,
                    camera: CameraIntrinsics) -> Callable[[], object]:
    """Return a call building the three 3D outputs of one frame, as the node does."""
    from yolact_ros.ros.frame_pipeline import build_3d_messages, DepthFrame, OutputOptions
    from yolact_ros.ros.messages import build_header, rosbags_message_types
    from yolact_ros.ros.msg_definitions import rosbags_typestore
    from yolact_ros.structures import Detections, StageTimes

    types = rosbags_message_types(rosbags_typestore())
    boxes = np.array([[x, y, x + w.shape[1], y + w.shape[0]]
                      for (y, x), w in zip(windows.origins.tolist(), windows.windows)],
                     np.float32)
    detections = Detections(
        boxes=boxes, scores=np.linspace(0.9, 0.4, COUNT, dtype=np.float32),
        class_ids=np.arange(COUNT) % 3, class_names=[str(i % 3) for i in range(COUNT)],
        category_ids=np.arange(COUNT) % 3 + 1,
        mask_windows=windows, image_size=(HEIGHT, WIDTH), times=StageTimes(0.0, 0.0, 0.0))
    geometry = instances_3d(windows, depth, camera)
    frame = DepthFrame(depth=depth, intrinsics=camera)
    header = build_header(types, 1)
    options = OutputOptions(detections_3d=True, markers=True, points=True)
    return lambda: build_3d_messages(types, header, detections, geometry, frame, options, None)


def _tight(masks: np.ndarray) -> Tuple[np.ndarray, tuple]:
    """Return the origins and tight windows of dense masks (what the Segmenter returns)."""
    origins, windows = [], []
    for mask in masks:
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        origins.append((rows[0], cols[0]))
        windows.append(mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].copy())
    return np.asarray(origins, np.int64), tuple(windows)


if __name__ == '__main__':
    main()
