"""Several cameras served by one model: throughput and per-camera latency, batched or not.

    PYTHONPATH=yolact_ros .venv/bin/python benchmarks/multi_camera.py   # ~1.5 min on 2 cores

Runs the node's frame path without rclpy or DDS: one thread per camera puts a stamped 640x480
``bgr8`` image message (rosbags classes) into the node's
:class:`~yolact_ros.ros.cameras.FrameBatcher` at ``--fps``; the worker takes the newest frame of
every camera, segments them in one call (:func:`~yolact_ros.ros.frame_pipeline.segment_frames`)
and builds each camera's ``instances`` and ``detections`` (``process_frame``), as
``segment_node`` does with ``cameras``. Latency is the node's: from the image stamp (the put) to
the messages built. ``--no-batch`` rows segment each camera's frame in a call of its own, for
comparison. The bundled demo model on the CPU, the node's default threads.
"""

import argparse
import os
import statistics
import threading
import time
from typing import List, Optional

import numpy as np

from yolact_ros.data.synthetic import random_scene
from yolact_ros.inference import Segmenter
from yolact_ros.ros.cameras import FrameBatcher
from yolact_ros.ros.frame_pipeline import OutputOptions, process_frame, segment_frames
from yolact_ros.ros.frame_slot import FrameSlot
from yolact_ros.ros.messages import build_header, rosbags_message_types
from yolact_ros.ros.msg_definitions import rosbags_typestore
from yolact_ros.runtime import set_threads
from yolact_ros.weights import demo_weights

TYPESTORE = rosbags_typestore()
TYPES = rosbags_message_types(TYPESTORE)


def camera_images(count: int, height: int, width: int):
    """Return one synthetic scene per camera (each camera sees another one)."""
    return [random_scene(np.random.default_rng(seed), height, width).image
            for seed in range(count)]


def image_msg(pixels: np.ndarray, camera: int):
    """Return a ``bgr8`` image message stamped now (monotonic clock)."""
    height, width = pixels.shape[:2]
    return TYPESTORE.types['sensor_msgs/msg/Image'](
        header=build_header(TYPES, time.monotonic_ns(), f'camera_{camera}'), height=height,
        width=width, encoding='bgr8', is_bigendian=0, step=width * 3,
        data=np.frombuffer(pixels.tobytes(), np.uint8))


def run(segmenter, images, *, fps: float, seconds: float, batched: bool) -> dict:
    """Serve ``len(images)`` cameras for ``seconds``; return per-camera latencies and counts."""
    batcher = FrameBatcher([FrameSlot() for _ in images])
    stop = threading.Event()

    def camera(index: int) -> None:
        period = 1.0 / fps
        next_time = time.monotonic() + index * period / len(images)  # not all in step
        while not stop.is_set():
            time.sleep(max(0.0, next_time - time.monotonic()))
            batcher.put(index, image_msg(images[index], index))
            next_time += period

    threads = [threading.Thread(target=camera, args=(i,), daemon=True)
               for i in range(len(images))]
    for thread in threads:
        thread.start()
    latencies = [[] for _ in images]
    batches = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        taken = batcher.take(timeout=0.5)
        msgs = [msg for _, msg, _ in taken]
        if not msgs:
            continue
        segmented = (segment_frames(msgs, segmenter) if batched else
                     [segment_frames([msg], segmenter)[0] for msg in msgs])
        batches.extend([len(msgs)] if batched else [1] * len(msgs))
        for (index, msg, _), frame in zip(taken, segmented):
            result = process_frame(msg, segmenter, TYPES, OutputOptions(),
                                   now_ns=time.monotonic_ns, segmented=frame)
            latencies[index].append(result.latency_ms)
    stop.set()
    batcher.close()
    for thread in threads:
        thread.join()
    return {'latencies': latencies, 'batches': batches,
            'received': [slot.received for slot in batcher.slots],
            'dropped': [slot.dropped for slot in batcher.slots]}


def print_row(cameras: int, batched: bool, seconds: float, out: dict) -> None:
    processed = sum(len(values) for values in out['latencies'])
    p50 = [statistics.median(values) for values in out['latencies']]
    p95 = [float(np.percentile(values, 95)) for values in out['latencies']]
    dropped = 100.0 * sum(out['dropped']) / max(sum(out['received']), 1)
    print(f'| {cameras} | {"batch" if batched else "one call each"} | '
          f'{statistics.mean(out["batches"]):.2f} | {processed / seconds:.1f} | '
          f'{processed / seconds / cameras:.1f} | {" / ".join(f"{v:.0f}" for v in p50)} | '
          f'{" / ".join(f"{v:.0f}" for v in p95)} | {dropped:.0f} % |', flush=True)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--cameras', type=int, nargs='+', default=[1, 2, 4])
    parser.add_argument('--fps', type=float, default=30.0, help="each camera's frame rate")
    parser.add_argument('--seconds', type=float, default=10.0, help='per row, after warm-up')
    parser.add_argument('--size', type=int, nargs=2, default=[640, 480], metavar=('W', 'H'))
    parser.add_argument('--threads', type=int, default=0, help="0: the node's default")
    parser.add_argument('--no-batch', action='store_true',
                        help='also run each camera count with one model call per frame')
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    segmenter = Segmenter.from_weights(demo_weights(), device='cpu')
    width, height = args.size
    images = camera_images(max(args.cameras), height, width)
    for count in sorted(set(args.cameras)):  # warm-up at every batch size
        segmenter(list(images[:count]))
    print(f'demo model on the CPU, {threads} threads, {width}x{height} bgr8, cameras at '
          f'{args.fps:g} fps, {args.seconds:g} s per row; load {os.getloadavg()[0]:.2f}')
    print('\n| cameras | mode | frames per model call | frames/s total | frames/s per camera '
          '| latency p50 per camera (ms) | p95 (ms) | dropped |')
    print('| --- | --- | --- | --- | --- | --- | --- | --- |')
    for count in args.cameras:
        modes = [True, False] if args.no_batch and count > 1 else [True]
        for batched in modes:
            out = run(segmenter, images[:count], fps=args.fps, seconds=args.seconds,
                      batched=batched)
            print_row(count, batched, args.seconds, out)
    print(f'\nload after: {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
    main()
