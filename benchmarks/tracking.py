#!/usr/bin/env python3
"""Tracking accuracy (HOTA, IDF1, MOTA, id switches) on synthetic sequences with ground truth.

    python benchmarks/tracking.py                      # 3 sequences of 300 frames (~4 min CPU)
    python benchmarks/tracking.py --sequences 1 --frames 60 --picture /tmp/t.png
    python benchmarks/tracking.py --size 640x480 --picture ''   # camera-shaped frames

Sequences come from ``yolact synth --sequence`` (:mod:`yolact_ros.data.synthetic_sequence`:
256 px frames (or ``--size WxH``) of the scenes the bundled demo model was trained on, shapes
moving at 1-3 px per frame at 256 px, crossing, occluding, entering and leaving). Two detection
sources are tracked:

* ``gt+noise``: the ground-truth visible masks, each shifted by a random offset (sigma 5 % of
  the object's size), its box jittered alike, 5 % of objects missed, scores uniform in
  [0.4, 1]: the tracker's own ceiling.
* ``model``: the bundled demo model's detections, the model loaded as ``yolact predict`` loads
  it by default (score threshold 0.3).

Each is tracked with ``yolact predict --track``'s tracker (the node's thresholds), with a
box-only cost (``mask_weight 0``) and box + mask (``0.5``), at 30 Hz and with every second
frame dropped (15 Hz, stamps kept). Scores: ``motmetrics`` (IDF1, MOTA, id switches; a match
needs mask IoU >= 0.5) and ``trackeval`` (HOTA over mask IoU), on the frames tracked. The
picture is four frames of the first sequence, model detections tracked at 30 Hz with box + mask,
with track ids and trails.
"""

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from yolact_ros.cli.synth import image_size
from yolact_ros.data.synthetic import CATEGORY_IDS, CLASS_NAMES
from yolact_ros.data.synthetic_dataset import image_sizes
from yolact_ros.data.synthetic_sequence import sequence_frames, SequenceFrame
from yolact_ros.evaluation.mot import evaluate_mot, mask_ious, MotFrame, MotScores
from yolact_ros.results import encode_mask_rle
from yolact_ros.structures import Detections, WindowedMasks
from yolact_ros.tracking import Tracker, TrackerConfig, TrackTrails

FRAME_RATE = 30.0
ID_OFFSET = 100000  # ids of sequence k are offset by k * ID_OFFSET when sequences are pooled


@dataclass
class Stream:
    """One sequence's ground truth and one source's detections, with their IoUs."""

    gt: List[MotFrame]
    detections: List[Detections]
    rles: List[List[dict]]
    ious: List[np.ndarray]  # each (G, D): ground truth x all detections


def windowed(masks: Sequence[np.ndarray], image_size: Tuple[int, int]) -> WindowedMasks:
    """Return ``bool[H, W]`` masks as windows cropped to their pixels."""
    origins, windows = [], []
    for mask in masks:
        ys, xs = np.nonzero(mask)
        if not len(ys):
            origins.append((0, 0))
            windows.append(np.zeros((0, 0), bool))
            continue
        origins.append((ys.min(), xs.min()))
        windows.append(mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1])
    return WindowedMasks(image_size, np.asarray(origins, np.int64).reshape(-1, 2),
                         tuple(windows))


def noisy_detections(frame: SequenceFrame, rng: np.random.Generator, *, noise: float = 0.05,
                     miss: float = 0.05) -> Detections:
    """Return the frame's ground truth as detections: shifted masks, jittered boxes, misses."""
    height, width = frame.image.shape[:2]
    masks, boxes, class_ids = [], [], []
    for instance in frame.instances:
        if rng.uniform() < miss:
            continue
        ys, xs = np.nonzero(instance.mask)
        size = np.array([xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], np.float64)
        dx, dy = np.rint(rng.normal(0.0, noise, 2) * size).astype(int)
        shifted = np.zeros_like(instance.mask)
        keep = (ys + dy >= 0) & (ys + dy < height) & (xs + dx >= 0) & (xs + dx < width)
        shifted[ys[keep] + dy, xs[keep] + dx] = True
        if not keep.any():
            continue
        box = np.array([xs.min() + dx, ys.min() + dy, xs.max() + dx + 1, ys.max() + dy + 1],
                       np.float64) + rng.normal(0.0, noise / 2, 4) * np.tile(size, 2)
        masks.append(shifted)
        boxes.append(np.clip(box, 0, [width, height, width, height]))
        class_ids.append(CATEGORY_IDS.index(instance.category_id))
    scores = rng.uniform(0.4, 1.0, len(masks)).astype(np.float32)
    order = np.argsort(-scores)
    class_ids = np.asarray(class_ids, np.int64).reshape(-1)[order]
    return Detections(
        boxes=np.asarray(boxes, np.float32).reshape(-1, 4)[order], scores=scores[order],
        class_ids=class_ids, class_names=[CLASS_NAMES[c] for c in class_ids],
        category_ids=np.asarray(CATEGORY_IDS)[class_ids].astype(np.int64),
        mask_windows=windowed([masks[i] for i in order], (height, width)),
        image_size=(height, width))


def make_stream(frames: Sequence[SequenceFrame], detections: List[Detections],
                min_area: int) -> Stream:
    """Encode the ground truth and the detections once, with their mask IoUs.

    Ground-truth objects showing fewer than ``min_area`` pixels are marked ignored.
    """
    gt = [MotFrame(f.track_ids, [encode_mask_rle(i.mask) for i in f.instances],
                   ignored=[int(i.mask.sum()) < min_area for i in f.instances])
          for f in frames]
    rles = [[encode_mask_rle(d.mask_windows.full(i)) for i in range(len(d))] for d in detections]
    ious = [mask_ious(g, MotFrame(np.arange(len(r)), r)) for g, r in zip(gt, rles)]
    return Stream(gt=gt, detections=detections, rles=rles, ious=ious)


def track(stream: Stream, config: TrackerConfig, step: int, trails: Optional[TrackTrails] = None,
          images: Optional[Sequence[np.ndarray]] = None, drawn: Sequence[int] = ()
          ) -> Tuple[list, list, list, dict]:
    """Track every ``step``-th frame; return its ground truth, tracked objects, IoUs, pictures.

    ``images``, ``trails`` and ``drawn``: the frames, their trails and which of them to draw
    (with ids and trails).
    """
    from yolact_ros.visualize import draw_overlay

    tracker = Tracker(config)
    gt, tracked, ious, pictures = [], [], [], {}
    for index in range(0, len(stream.gt), step):
        detections = stream.detections[index]
        ids = tracker.update(detections, index / FRAME_RATE)
        kept = np.flatnonzero(ids > 0)
        gt.append(stream.gt[index])
        tracked.append(MotFrame(ids[kept], [stream.rles[index][k] for k in kept]))
        ious.append(stream.ious[index][:, kept])
        if trails is not None:
            trails.update(detections.boxes, ids)
            if index in drawn and images is not None:
                pictures[index] = draw_overlay(images[index], detections, track_ids=ids,
                                               trails=trails.points())
    return gt, tracked, ious, pictures


def pooled(runs: List[Tuple[list, list, list]]) -> Tuple[MotScores, MotScores]:
    """Score several sequences' runs as one (ids kept apart by :data:`ID_OFFSET`).

    Returns:
        The scores with the small objects ignored, and with every object counted.
    """
    gt, tracked, ious = [], [], []
    for k, (run_gt, run_tracked, run_ious) in enumerate(runs):
        gt += [MotFrame(f.ids + k * ID_OFFSET, f.masks, f.ignored) for f in run_gt]
        tracked += [MotFrame(f.ids + k * ID_OFFSET, f.masks) for f in run_tracked]
        ious += run_ious
    every = [MotFrame(f.ids, f.masks) for f in gt]
    return (evaluate_mot(gt, tracked, sequence_ious=ious),
            evaluate_mot(every, tracked, sequence_ious=ious))


def model_detections(images: Sequence[np.ndarray], weights: Optional[str]) -> List[Detections]:
    """Segment ``images`` with the model ``yolact predict`` loads (its default options)."""
    from yolact_ros.cli import predict
    from yolact_ros.cli.common import build_segmenter, resolve_weights

    parser = argparse.ArgumentParser()
    predict.register(parser.add_subparsers())
    args = parser.parse_args(['predict', 'unused'] + ([] if weights is None
                                                      else ['--weights', weights]))
    segmenter = build_segmenter(args, resolve_weights(args.weights))
    return [segmenter(image) for image in images]


def save_picture(pictures: Dict[int, np.ndarray], path: Path) -> None:
    """Write the frames side by side as a small palette PNG."""
    from PIL import Image

    strip = np.concatenate([pictures[i] for i in sorted(pictures)], axis=1)[:, :, ::-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(strip)).quantize(128).save(path, optimize=True)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sequences', type=int, default=3, help='sequences (seeds 100, ...)')
    parser.add_argument('--frames', type=int, default=300, help='frames per sequence')
    parser.add_argument('--size', type=image_size, default=256, metavar='S|WxH',
                        help='frame side, or WIDTHxHEIGHT for camera-shaped frames (default 256)')
    parser.add_argument('--min-area', type=int, default=None,
                        help='ground-truth objects showing fewer pixels are ignored (default 500 '
                        'at 256 px, about 22 x 22 px, scaled with the square of the shorter side)')
    parser.add_argument('--picture-frames', type=int, nargs='+', default=[30, 60, 90, 120],
                        help='frames of the first sequence in the picture')
    parser.add_argument('--weights', default=None, help='model (default: the bundled one)')
    parser.add_argument('--picture', default=str(Path(__file__).parent / 'tracking.png'),
                        help='where to write the picture ("" for none)')
    args = parser.parse_args(argv)
    (args.width, args.height), = image_sizes(args.size)
    if args.min_area is None:
        args.min_area = round(500 * (min(args.width, args.height) / 256) ** 2)
    return args


def main(argv: Optional[List[str]] = None) -> Dict[Tuple[str, str, str], Tuple[MotScores, ...]]:
    """Run the benchmark, print the table; return the scores by (source, cost, rate).

    Each value: the scores with the small objects ignored, and with all objects counted.
    """
    from dataclasses import replace

    from yolact_ros.cli.predict import tracker_config

    args = parse_args(argv)
    runs: Dict[Tuple[str, str, str], list] = {}
    pictures: Dict[int, np.ndarray] = {}
    for k in range(args.sequences):
        frames = list(sequence_frames(args.frames, args.size, seed=100 + k))
        images = [f.image for f in frames]
        rng = np.random.default_rng([100 + k, 7])
        sources = {'gt+noise': [noisy_detections(f, rng) for f in frames],
                   'model': model_detections(images, args.weights)}
        for source, detections in sources.items():
            stream = make_stream(frames, detections, args.min_area)
            for cost, weight in (('box', 0.0), ('box+mask', 0.5)):
                for rate, step in (('30 Hz', 1), ('15 Hz', 2)):
                    draw = k == 0 and source == 'model' and weight > 0 and step == 1
                    gt, tracked, ious, drawn = track(
                        stream, replace(tracker_config(), mask_weight=weight), step,
                        TrackTrails() if draw else None, images if draw else None,
                        args.picture_frames)
                    runs.setdefault((source, cost, rate), []).append((gt, tracked, ious))
                    pictures.update(drawn)
    scores = {key: pooled(value) for key, value in runs.items()}
    print_table(scores, args)
    if args.picture and pictures:
        save_picture(pictures, Path(args.picture))
        print(f'picture: {args.picture} (frames {", ".join(map(str, sorted(pictures)))})')
    return scores


def print_table(scores: Dict[Tuple[str, str, str], Tuple[MotScores, MotScores]],
                args: argparse.Namespace) -> None:
    """Print the scores as a Markdown table, under a line saying what was counted."""
    counted, every = scores['gt+noise', 'box', '30 Hz']
    print(f'{args.sequences} sequences x {args.frames} frames, {args.width}x{args.height} px: '
          f'{every.objects} ground-truth objects at 30 Hz, {every.objects - counted.objects} '
          f'of them ignored (< {args.min_area} px visible)')
    print('| detections | cost | rate | HOTA | IDF1 | MOTA | id switches | FP | misses | '
          'IDF1 / MOTA / switches, all objects |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for (source, cost, rate), (s, a) in scores.items():
        hota = '-' if s.hota is None else f'{s.hota:.3f}'
        print(f'| {source} | {cost} | {rate} | {hota} | {s.idf1:.3f} | {s.mota:.3f} | '
              f'{s.id_switches} | {s.false_positives} | {s.misses} | '
              f'{a.idf1:.3f} / {a.mota:.3f} / {a.id_switches} |')


if __name__ == '__main__':
    main()
