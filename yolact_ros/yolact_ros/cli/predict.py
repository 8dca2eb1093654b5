"""``yolact predict``: segment images, folders, videos or a camera; write overlays and JSON."""

import argparse
import json
import os
from pathlib import Path
import sys
from typing import Iterator, List, Tuple

import numpy as np

from yolact_ros.cli import CommandError
from yolact_ros.cli.common import add_model_arguments, build_segmenter, resolve_weights

IMAGE_SUFFIXES = {'.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp'}
VIDEO_SUFFIXES = {'.mp4', '.avi', '.mov', '.mkv', '.webm', '.mpg', '.mpeg', '.m4v'}


class InputError(Exception):
    """One input cannot be read; reported on stderr while the others are processed."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` subcommand."""
    parser = subparsers.add_parser(
        'predict', help='segment images, folders, videos or a camera',
        description='Write overlay images (or videos) and DIR/predictions.json '
                    '(COCO results with file_name).')
    parser.add_argument('sources', nargs='+', metavar='SOURCE',
                        help='image file, folder of images, video file or camera index')
    add_model_arguments(parser)
    parser.add_argument('--output', default='predictions',
                        help='output folder (default ./predictions), created when the first '
                        'result is written')
    parser.add_argument('--max-frames', type=int, default=None,
                        help='stop a video or camera after this many frames')
    parser.add_argument('--track', action='store_true',
                        help='track instances across the frames of each video or folder (image '
                        'files given one by one are one stream): a track_id per detection in '
                        'predictions.json (0: not tracked), ids and trails in the overlays')
    parser.add_argument('--fps', type=float, default=30.0, metavar='F',
                        help='frame rate of a folder of frames, for --track (default 30; a '
                        "video's own rate is used for videos)")
    parser.add_argument('--depth', type=Path, default=None, metavar='PATH',
                        help='aligned depth image (uint16 mm PNG/TIFF, float32 m TIFF or .npy) '
                        'or a folder of them matched to the images by name: 3D fields per '
                        'detection in predictions.json (needs --intrinsics; images only)')
    parser.add_argument('--intrinsics', type=Path, default=None, metavar='YAML',
                        help='camera_info YAML of the depth images (camera_calibration file or '
                        'sensor_msgs/CameraInfo fields)')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Segment every source; exit code 2 if any source failed.

    Inputs are checked before the model loads; when none can be read, nothing is written.
    """
    from yolact_ros.results import detections_to_coco

    if not args.fps > 0:
        raise CommandError(f'--fps must be > 0, got {args.fps}')
    jobs, problems = plan_sources(args.sources)
    if not jobs:
        raise CommandError('; '.join(problems))
    depth = depth_input(args)
    weights = resolve_weights(args.weights)
    segmenter = build_segmenter(args, weights)
    for problem in problems:
        print(f'yolact predict: {problem}', file=sys.stderr)
    output = Path(args.output)
    predictions: List[dict] = []
    failures = len(problems)
    done = 0
    image_index = 0
    files_tracking = None  # image files given one by one are one stream
    for label, images in _groups(jobs):
        try:
            if images is None:  # a video or camera
                predictions += segment_video(segmenter, label, output, args.max_frames,
                                             track=args.track)
                done += 1
                continue
            tracking = None
            if args.track and Path(label).is_dir():
                tracking = TrackedResults(args.fps)
            elif args.track:
                tracking = files_tracking = files_tracking or TrackedResults(args.fps)
            for path in _progress(images, str(label), len(images) > 1):
                try:
                    image = read_image(path)
                except InputError as error:
                    failures += 1
                    print(f'yolact predict: {error}', file=sys.stderr)
                    continue
                detections = segmenter(image)
                results = detections_to_coco(detections, image_id=image_index,
                                             file_name=path.name)
                if depth is not None:
                    try:
                        depth.add_fields(detections, path, results)
                    except ValueError as error:  # 2D results kept, the image counted failed
                        failures += 1
                        print(f'yolact predict: {error}', file=sys.stderr)
                overlay = {}
                if tracking is not None:
                    overlay = tracking(detections, results)
                _write_image_overlay(output, path, image, detections, image_index, **overlay)
                predictions += results
                image_index += 1
                done += 1
        except InputError as error:
            failures += 1
            print(f'yolact predict: {error}', file=sys.stderr)
    if not done:
        return 2  # every input failed (each said why): no empty predictions.json
    json_path = output / 'predictions.json'
    with open(json_path, 'w', encoding='utf-8') as stream:
        json.dump(predictions, stream)
    print(f'{len(predictions)} detections written to {json_path}')
    return 2 if failures else 0


def depth_input(args: argparse.Namespace):
    """Return the ``--depth`` input (checked before the model loads), or None."""
    if args.depth is None and args.intrinsics is None:
        return None
    if args.depth is None or args.intrinsics is None:
        raise CommandError('--depth and --intrinsics go together')
    from yolact_ros.cli.predict_depth import DepthInput
    from yolact_ros.ros.params import NodeParams

    return DepthInput(args.depth, args.intrinsics, NodeParams().depth_options())


def plan_sources(sources: List[str]) -> Tuple[List[Tuple[str, object]], List[str]]:
    """Check every source without the model; return ``(jobs, problems)``.

    A job is ``(source, [image paths])`` or ``(source, video path or camera index)``; a problem
    is one line naming the file and what is wrong with it (missing, not an image, corrupt).
    """
    jobs: List[Tuple[str, object]] = []
    problems: List[str] = []
    for source in sources:
        try:
            kind, items = classify_source(source)
        except InputError as error:
            problems.append(str(error))
            continue
        if kind == 'video':
            if not isinstance(items[0], int):
                try:
                    check_video(items[0])
                except InputError as error:
                    problems.append(str(error))
                    continue
            jobs.append((source, items[0]))
            continue
        readable = []
        for path in items:
            try:
                check_image(path)
                readable.append(path)
            except InputError as error:
                problems.append(str(error))
        if readable:
            jobs.append((source, readable))
    return jobs, problems


def _groups(jobs):
    """Yield ``(label, image paths)`` for image jobs and ``(video, None)`` for videos."""
    for source, item in jobs:
        if isinstance(item, list):
            yield source, item
        else:
            yield item, None


def classify_source(source: str) -> Tuple[str, list]:
    """Return ``('images', [paths])`` or ``('video', [path or camera index])``."""
    if source.isdigit():
        return 'video', [int(source)]
    path = Path(source)
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise InputError(f'{path}: folder contains no images '
                             f'({", ".join(sorted(IMAGE_SUFFIXES))})')
        return 'images', images
    if not path.exists():
        raise InputError(f'{path}: no such file or folder')
    if not os.access(path, os.R_OK):
        raise InputError(f'{path}: permission denied')
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return 'video', [path]
    return 'images', [path]


def check_image(path: Path) -> None:
    """Raise :class:`InputError` unless OpenCV recognises ``path``'s header as an image."""
    import cv2

    if not os.access(path, os.R_OK):
        raise InputError(f'{path}: permission denied')
    if not cv2.haveImageReader(str(path)):
        raise InputError(f'{path}: cannot read image (unsupported format or corrupt file)')


def check_video(path: Path) -> None:
    """Raise :class:`InputError` unless the first frame of the video file decodes."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        readable = capture.isOpened() and capture.read()[0]
    finally:
        capture.release()
    if not readable:
        raise InputError(f'{path}: cannot read video (unsupported format or corrupt file)')


def read_image(path: Path) -> np.ndarray:
    """Read an image file as BGR (16-bit and alpha kept for the Segmenter to convert)."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f'{path}: cannot read image (unsupported format or corrupt file)')
    return image


def _write_image_overlay(output: Path, path: Path, image: np.ndarray, detections,
                         index: int, **overlay) -> None:
    import cv2

    from yolact_ros.preprocess import to_bgr8
    from yolact_ros.visualize import draw_overlay

    output.mkdir(parents=True, exist_ok=True)
    target = output / f'{index:05d}_{path.stem}.png'
    cv2.imwrite(str(target), draw_overlay(to_bgr8(image), detections, **overlay))


def _frames(capture) -> Iterator[np.ndarray]:
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        yield frame


def segment_video(segmenter, source, output: Path, max_frames=None, *,
                  track: bool = False) -> List[dict]:
    """Segment a video file or camera; write ``<name>_overlay.mp4``; return COCO results.

    ``track``: give each result a ``track_id`` (frames stamped at the video's frame rate) and
    draw the ids and trails.
    """
    import cv2

    from yolact_ros.results import detections_to_coco
    from yolact_ros.visualize import draw_overlay

    capture = cv2.VideoCapture(source if isinstance(source, int) else str(source))
    name = f'camera{source}' if isinstance(source, int) else Path(source).name
    if not capture.isOpened():
        raise InputError(f'{name}: cannot open video')
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    if max_frames is not None:
        total = min(total or max_frames, max_frames)
    stem = name if isinstance(source, int) else Path(source).stem
    target = output / f'{stem}_overlay.mp4'
    writer = None
    results: List[dict] = []
    tracking = TrackedResults(fps) if track else None
    try:
        for frame_index, frame in enumerate(_progress(_frames(capture), name, True, total)):
            if max_frames is not None and frame_index >= max_frames:
                break
            if writer is None:
                height, width = frame.shape[:2]
                output.mkdir(parents=True, exist_ok=True)
                writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*'mp4v'), fps,
                                         (width, height))
            detections = segmenter(frame)
            frame_results = detections_to_coco(detections, image_id=frame_index,
                                               file_name=name)
            overlay = {}
            if tracking is not None:
                overlay = tracking(detections, frame_results)
            writer.write(draw_overlay(frame, detections, **overlay))
            results += frame_results
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if writer is None:
        raise InputError(f'{name}: no frames could be decoded (corrupt or empty video)')
    return results


def tracker_config():
    """Return the ``--track`` tracker's :class:`~yolact_ros.tracking.TrackerConfig`.

    The node's defaults: the detections are all above ``--score-threshold`` already, so
    ByteTrack's second stage takes those between it and ``high_threshold``.
    """
    from yolact_ros.tracking import TrackerConfig

    return TrackerConfig(low_threshold=0.0)


class TrackedResults:
    """Track one stream's detections (``--track``), frames ``1 / fps`` s apart."""

    def __init__(self, fps: float) -> None:
        from yolact_ros.tracking import StreamTracker

        self.stream = StreamTracker(tracker_config())
        self.fps = fps
        self.frames = 0

    def __call__(self, detections, results: List[dict]) -> dict:
        """Add ``track_id`` to the frame's COCO ``results``; return ``draw_overlay`` options."""
        track_ids = self.stream(detections, self.frames / self.fps)
        self.frames += 1
        for result, track_id in zip(results, track_ids.tolist()):
            result['track_id'] = track_id
        return {'track_ids': track_ids, 'trails': self.stream.trails.points()}


def _progress(items, label: str, enabled: bool, total=None):
    from tqdm import tqdm

    return tqdm(items, desc=label, total=total, unit='img', disable=not enabled,
                file=sys.stderr)
