"""``yolact demo``: segment a generated synthetic scene video with the bundled demo model."""

import argparse
import json
from pathlib import Path
from typing import List

from yolact_ros.cli.common import add_threads_argument
from yolact_ros.weights import DEMO_WEIGHTS

VIDEO_NAME = 'scene.mp4'
VIDEO_SIZE = (640, 480)  # width, height
VIDEO_SEED = 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        'demo', help='segment a generated synthetic video with the bundled model (no download)',
        description=f'Write DIR/{VIDEO_NAME} (a synthetic scene of moving shapes), segment it '
                    f'with the bundled {DEMO_WEIGHTS} and write DIR/scene_overlay.mp4 and '
                    'DIR/predictions.json (COCO results, image_id = frame index). Prints the '
                    "mask AP against the scene's ground truth when the model knows its shapes.")
    parser.add_argument('--output', type=Path, default=Path('demo'), metavar='DIR',
                        help='output folder (default ./demo)')
    parser.add_argument('--frames', type=int, default=60, metavar='N',
                        help='frames of the video (default 60)')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    parser.add_argument('--weights', default=None, metavar='FILE',
                        help=f'checkpoint to run (default: the bundled {DEMO_WEIGHTS})')
    parser.add_argument('--score-threshold', type=float, default=0.3, metavar='F',
                        help='keep detections scoring above this (default %(default)s, as the '
                        'node)')
    add_threads_argument(parser)
    parser.set_defaults(func=run)


class _TimedSegmenter:
    """Call a Segmenter and keep each frame's detections count and stage times."""

    def __init__(self, segmenter) -> None:
        self.segmenter = segmenter
        self.counts: List[int] = []
        self.stage_ms: List[tuple] = []

    def __call__(self, image):
        detections = self.segmenter(image)
        self.counts.append(len(detections))
        times = detections.times
        self.stage_ms.append((times.preprocess_ms, times.inference_ms, times.postprocess_ms))
        return detections


def run(args: argparse.Namespace) -> int:
    """Write the video, segment it and print a summary; return the exit code."""
    from yolact_ros.checkpoint import CheckpointError
    from yolact_ros.cli import CommandError
    from yolact_ros.cli.common import announce_bundled, apply_threads, resolve_weights
    from yolact_ros.cli.predict import InputError, segment_video
    from yolact_ros.config import PostprocessConfig
    from yolact_ros.data.synthetic_sequence import write_synthetic_video
    from yolact_ros.inference import Segmenter

    if args.frames < 1:
        raise CommandError(f'--frames must be >= 1, got {args.frames}')
    weights = resolve_weights(args.weights)
    apply_threads(args.threads)
    try:
        segmenter = Segmenter.from_weights(
            weights, device=args.device,
            postprocess=PostprocessConfig(score_threshold=args.score_threshold))
    except (CheckpointError, ValueError) as error:
        raise CommandError(str(error)) from None
    if args.weights is None:
        announce_bundled(segmenter)

    args.output.mkdir(parents=True, exist_ok=True)
    video = write_synthetic_video(args.output / VIDEO_NAME, frames=args.frames, size=VIDEO_SIZE,
                                  seed=VIDEO_SEED)
    timed = _TimedSegmenter(segmenter)
    try:
        results = segment_video(timed, video, args.output)
    except InputError as error:
        raise CommandError(str(error)) from None
    predictions = args.output / 'predictions.json'
    with open(predictions, 'w', encoding='utf-8') as stream:
        json.dump(results, stream)

    frames = len(timed.counts)
    stage_ms = [sum(column) / frames for column in zip(*timed.stage_ms)]
    ap_text = _demo_ap_text(results, segmenter.config, frames)
    print(f'Segmented {frames} frames of a synthetic {VIDEO_SIZE[0]}x{VIDEO_SIZE[1]} scene '
          f'with {weights.name} ({segmenter.config.name}) on {segmenter.device}: '
          f'{sum(timed.counts)} detections ({sum(timed.counts) / frames:.1f} per frame), '
          f'{sum(stage_ms):.1f} ms per frame on average (preprocess {stage_ms[0]:.1f}, '
          f'inference {stage_ms[1]:.1f}, postprocess {stage_ms[2]:.1f}).{ap_text} '
          f'Input video: {video}; overlay video: {args.output / (video.stem + "_overlay.mp4")}; '
          f'predictions: {predictions}.')
    return 0


def demo_ground_truth(frames: int):
    """Return a pycocotools ``COCO`` of the demo video's visible masks (image id = frame)."""
    import contextlib
    import io

    from pycocotools.coco import COCO

    from yolact_ros.data.synthetic import CATEGORIES
    from yolact_ros.data.synthetic_dataset import instance_annotation
    from yolact_ros.data.synthetic_sequence import synthetic_video_frames

    images, annotations = [], []
    for index, scene in enumerate(synthetic_video_frames(frames, VIDEO_SIZE, VIDEO_SEED)):
        height, width = scene.image.shape[:2]
        images.append({'id': index, 'file_name': f'{VIDEO_NAME}#{index}', 'width': width,
                       'height': height})
        for instance in scene.instances:
            annotations.append(instance_annotation(
                instance, annotation_id=len(annotations) + 1, image_id=index))
    coco = COCO()
    coco.dataset = {'images': images, 'annotations': annotations,
                    'categories': [{'id': cid, 'name': name} for cid, name in CATEGORIES]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _demo_ap_text(results: List[dict], config, frames: int) -> str:
    """Return ' Mask AP ...' against the video's ground truth, or '' if the classes differ."""
    from yolact_ros.data.synthetic import CATEGORY_IDS, CLASS_NAMES
    from yolact_ros.evaluation import check_categories, evaluate_results

    try:
        check_categories(config.category_ids, config.class_names, CATEGORY_IDS, CLASS_NAMES)
        if not set(config.category_ids) <= set(CATEGORY_IDS):
            return ''
        result = evaluate_results(results, demo_ground_truth(frames))
    except ValueError:
        return ''  # not a model of the synthetic shapes
    return (f' Against the scene\'s ground truth: mask AP {result.mask["AP"]:.3f}, '
            f'box AP {result.box["AP"]:.3f}.')
