"""``yolact predict``: segment images, folders, videos or a camera; write overlays and JSON."""

import argparse
import json
from pathlib import Path
import sys
from typing import Iterator, List, Tuple

import numpy as np

from yolact_ros.cli.common import add_model_arguments, build_segmenter

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
    parser.add_argument('--output', default='predictions', help='output folder')
    parser.add_argument('--max-frames', type=int, default=None,
                        help='stop a video or camera after this many frames')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Segment every source; exit code 2 if any source failed."""
    from yolact_ros.results import detections_to_coco

    segmenter = build_segmenter(args)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    predictions: List[dict] = []
    failures = 0
    image_index = 0
    for source in args.sources:
        try:
            kind, items = classify_source(source)
            if kind == 'images':
                for path in _progress(items, f'{source}', len(items) > 1):
                    try:
                        image = read_image(path)
                    except InputError as error:
                        failures += 1
                        print(f'yolact predict: {error}', file=sys.stderr)
                        continue
                    detections = segmenter(image)
                    _write_image_overlay(output, path, image, detections, image_index)
                    predictions += detections_to_coco(detections, image_id=image_index,
                                                      file_name=path.name)
                    image_index += 1
            else:
                predictions += segment_video(segmenter, items[0], output, args.max_frames)
        except InputError as error:
            failures += 1
            print(f'yolact predict: {error}', file=sys.stderr)
    json_path = output / 'predictions.json'
    with open(json_path, 'w', encoding='utf-8') as stream:
        json.dump(predictions, stream)
    print(f'{len(predictions)} detections written to {json_path}')
    return 2 if failures else 0


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
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return 'video', [path]
    return 'images', [path]


def read_image(path: Path) -> np.ndarray:
    """Read an image file as BGR (16-bit and alpha kept for the Segmenter to convert)."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputError(f'{path}: cannot read image (unsupported format or corrupt file)')
    return image


def _write_image_overlay(output: Path, path: Path, image: np.ndarray, detections,
                         index: int) -> None:
    import cv2

    from yolact_ros.preprocess import to_bgr8
    from yolact_ros.visualize import draw_overlay

    target = output / f'{index:05d}_{path.stem}.png'
    cv2.imwrite(str(target), draw_overlay(to_bgr8(image), detections))


def _frames(capture) -> Iterator[np.ndarray]:
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        yield frame


def segment_video(segmenter, source, output: Path, max_frames=None) -> List[dict]:
    """Segment a video file or camera; write ``<name>_overlay.mp4``; return COCO results."""
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
    try:
        for frame_index, frame in enumerate(_progress(_frames(capture), name, True, total)):
            if max_frames is not None and frame_index >= max_frames:
                break
            if writer is None:
                height, width = frame.shape[:2]
                writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*'mp4v'), fps,
                                         (width, height))
            detections = segmenter(frame)
            writer.write(draw_overlay(frame, detections))
            results += detections_to_coco(detections, image_id=frame_index, file_name=name)
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if writer is None:
        raise InputError(f'{name}: no frames could be decoded (corrupt or empty video)')
    return results


def _progress(items, label: str, enabled: bool, total=None):
    from tqdm import tqdm

    return tqdm(items, desc=label, total=total, unit='img', disable=not enabled,
                file=sys.stderr)
