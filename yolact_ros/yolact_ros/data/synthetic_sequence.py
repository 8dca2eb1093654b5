"""Moving synthetic scenes: tracking sequences and demo videos.

Tracking sequences: shapes that move, cross, occlude, enter and leave.

The scenes are those of :mod:`yolact_ros.data.synthetic` (the same backgrounds, shapes, textures
and pixel noise the bundled demo model was trained on, at its training size of 256 px), now
moving: each object keeps its class, texture and paint depth for its whole life and moves with a
constant velocity in pixels per frame while it spins. A few objects start inside the image; the
others enter through an edge, heading for the central region so that paths cross and objects
occlude one another, and leave through another edge. Ground truth per frame: each visible
object's track id (from 1, never reused), class and *visible* mask (hidden parts excluded);
objects with fewer than ``min_visible_pixels`` visible pixels are not annotated in that frame.

A sequence is a pure function of its arguments (``numpy.random.default_rng([seed, 1 << 21])``).

Demo videos (:func:`synthetic_video_frames`, :func:`write_synthetic_video`): shapes drifting,
bouncing off the edges and rotating over one cluttered background, for ``yolact demo`` and the
benchmarks.
"""

from dataclasses import dataclass, replace
import json
from pathlib import Path
from typing import Iterator, List, Tuple, Union

import cv2
import numpy as np

from yolact_ros.data.synthetic import (
    CATEGORIES, compose_scene, Instance, random_background, random_shape, random_shapes, Scene,
    ShapeSpec)
from yolact_ros.data.synthetic_dataset import (image_sizes, ImageSize, instance_annotation,
                                               write_text)

SPEED_RANGE = (1.0, 3.0)  # pixels per frame at a 256 px shorter side (30-90 px/s at 30 Hz)
RADIUS_RANGE = (0.07, 0.18)  # of the shorter image side, as the training scenes
MAX_OBJECTS = 6


@dataclass
class SequenceFrame:
    """One frame of a sequence and its ground truth.

    Attributes:
        index: frame number, from 0.
        image: ``uint8[H, W, 3]`` BGR.
        track_ids: ``int64[G]`` track id of each annotated object (from 1).
        instances: their ``G`` visible parts (class, ``bool[H, W]`` mask, visible fraction).
    """

    index: int
    image: np.ndarray
    track_ids: np.ndarray
    instances: List[Instance]


@dataclass
class _Mover:
    """An object of the sequence: its shape now, its motion and its paint depth."""

    track_id: int
    shape: ShapeSpec
    velocity: Tuple[float, float]
    spin: float
    depth: float


@dataclass(frozen=True)
class SequenceSummary:
    """What :func:`write_sequence` wrote."""

    frames: int
    tracks: int
    boxes: int
    occluded_boxes: int
    max_visible: int
    gt_json: Path
    gt_txt: Path


def _entering(rng: np.random.Generator, track_id: int, height: int, width: int,
              inside: bool) -> _Mover:
    """Return a new object: inside the image (``inside``) or just beyond a random edge."""
    side = min(height, width)
    radius = rng.uniform(*RADIUS_RANGE) * side
    if inside:
        start = np.array([rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height])
    else:
        edge, along = int(rng.integers(4)), rng.uniform(0.1, 0.9)
        start = np.array([[along * width, -radius], [along * width, height + radius],
                          [-radius, along * height], [width + radius, along * height]][edge])
    target = np.array([rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height])
    heading = target - start
    if not np.any(heading):
        heading = np.array([1.0, 0.0])
    speed = rng.uniform(*SPEED_RANGE) * side / 256.0
    velocity = heading / np.linalg.norm(heading) * speed
    return _Mover(track_id=track_id, shape=random_shape(rng, tuple(start), radius),
                  velocity=(float(velocity[0]), float(velocity[1])),
                  spin=float(rng.uniform(-2.0, 2.0)), depth=float(rng.uniform()))


def _gone(mover: _Mover, height: int, width: int) -> bool:
    """Return whether the object has left the image, moving away from it."""
    (x, y), (vx, vy), margin = mover.shape.center, mover.velocity, mover.shape.radius + 1
    return ((x < -margin and vx <= 0) or (x > width + margin and vx >= 0)
            or (y < -margin and vy <= 0) or (y > height + margin and vy >= 0))


def sequence_frames(num_frames: int, size: ImageSize = 256, seed: int = 0, *,
                    initial: int = 3, spawn_rate: float = 0.04,
                    min_visible_pixels: int = 20) -> Iterator[SequenceFrame]:
    """Yield the frames of a tracking sequence with their ground truth.

    Args:
        num_frames: number of frames.
        size: ``S`` for ``S x S`` frames (the demo model's squares were 256 px), or ``(width,
            height)`` for camera-shaped ones; shape sizes and speeds scale with the shorter
            side, as in the training scenes.
        seed: the sequence is a function of the arguments.
        initial: objects inside the image at frame 0.
        spawn_rate: chance per frame that a new object enters (while fewer than
            :data:`MAX_OBJECTS` are live; one always enters when fewer than 2 are).
        min_visible_pixels: objects showing fewer pixels are not annotated in a frame.

    Yields:
        One :class:`SequenceFrame` per frame.
    """
    if num_frames < 1:
        raise ValueError(f'num_frames must be >= 1, got {num_frames}')
    (width, height), = image_sizes(size)
    if not 0 <= initial <= MAX_OBJECTS:
        raise ValueError(f'initial must be in [0, {MAX_OBJECTS}], got {initial}')
    rng = np.random.default_rng([seed, 1 << 21])
    background = random_background(rng, height, width)
    movers = [_entering(rng, i + 1, height, width, inside=True) for i in range(initial)]
    next_id = initial + 1
    for index in range(num_frames):
        if len(movers) < 2 or (len(movers) < MAX_OBJECTS and rng.uniform() < spawn_rate):
            movers.append(_entering(rng, next_id, height, width, inside=False))
            next_id += 1
        ordered = sorted(movers, key=lambda m: m.depth)  # back to front
        scene = compose_scene(background, [m.shape for m in ordered],
                              min_visible_pixels=min_visible_pixels, noise_sigma=3.0, rng=rng)
        track_ids = np.array([ordered[i.depth].track_id for i in scene.instances], np.int64)
        yield SequenceFrame(index=index, image=scene.image, track_ids=track_ids,
                            instances=scene.instances)
        for mover in movers:
            (x, y), (vx, vy) = mover.shape.center, mover.velocity
            mover.shape = replace(mover.shape, center=(x + vx, y + vy),
                                  angle=(mover.shape.angle + mover.spin) % 360)
        movers = [m for m in movers if not _gone(m, height, width)]


def frame_annotations(frame: SequenceFrame) -> List[dict]:
    """Return the frame's objects as dicts.

    Keys: ``track_id``, ``category_id``, ``bbox`` (x, y, w, h), ``segmentation`` (COCO
    compressed RLE) and ``visible_fraction``.
    """
    objects = []
    for track_id, instance in zip(frame.track_ids.tolist(), frame.instances):
        coco = instance_annotation(instance, annotation_id=0, image_id=frame.index)
        objects.append({'track_id': track_id, 'category_id': coco['category_id'],
                        'bbox': coco['bbox'], 'segmentation': coco['segmentation'],
                        'visible_fraction': coco['visible_fraction']})
    return objects


def write_sequence(out_dir: Union[str, Path], *, num_frames: int, size: ImageSize = 256,
                   seed: int = 0, fps: float = 30.0) -> SequenceSummary:
    """Write a sequence: ``frames/000000.png`` ..., ``gt.json`` and a MOTChallenge ``gt.txt``.

    ``gt.json`` holds ``info`` (seed, size as ``S`` or ``[W, H]``, fps), ``categories`` and
    ``frames``: per frame its ``index``, ``file_name`` and ``objects`` (see
    :func:`frame_annotations`). ``gt.txt`` has one line per object and frame: ``frame (from 1),
    track id, left, top, width, height, 1, category id, visible fraction``.
    """
    import cv2

    if not fps > 0:
        raise ValueError(f'fps must be > 0, got {fps}')
    out_dir = Path(out_dir)
    frames_dir = out_dir / 'frames'
    frames_dir.mkdir(parents=True, exist_ok=True)
    frames, lines, track_ids = [], [], set()
    occluded = max_visible = 0
    for frame in sequence_frames(num_frames, size, seed):
        file_name = f'{frame.index:06d}.png'
        if not cv2.imwrite(str(frames_dir / file_name), frame.image,
                           [cv2.IMWRITE_PNG_COMPRESSION, 3]):
            raise OSError(f'could not write {frames_dir / file_name}')
        objects = frame_annotations(frame)
        frames.append({'index': frame.index, 'file_name': f'frames/{file_name}',
                       'objects': objects})
        for obj in objects:
            x, y, w, h = obj['bbox']
            lines.append(f'{frame.index + 1},{obj["track_id"]},{x:g},{y:g},{w:g},{h:g},1,'
                         f'{obj["category_id"]},{obj["visible_fraction"]:.4f}')
            occluded += obj['visible_fraction'] < 0.9
        track_ids.update(frame.track_ids.tolist())
        max_visible = max(max_visible, len(objects))
    info = {'description': 'yolact_ros synthetic tracking sequence', 'seed': seed,
            'size': size, 'fps': fps, 'frames': num_frames}
    gt_json, gt_txt = out_dir / 'gt.json', out_dir / 'gt.txt'
    write_text(gt_json, json.dumps(
        {'info': info, 'categories': [{'id': cid, 'name': name} for cid, name in CATEGORIES],
         'frames': frames}, separators=(',', ':')))
    write_text(gt_txt, ''.join(line + '\n' for line in lines))
    return SequenceSummary(frames=num_frames, tracks=len(track_ids), boxes=len(lines),
                           occluded_boxes=int(occluded), max_visible=max_visible,
                           gt_json=gt_json, gt_txt=gt_txt)


def synthetic_video_frames(num_frames: int, size: ImageSize,
                           seed: int) -> Iterator[Scene]:
    """Yield the scenes of a short video: shapes drifting, bouncing and rotating over clutter.

    Args:
        num_frames: number of frames.
        size: ``S`` for ``S x S`` frames, or ``(width, height)``.
        seed: the video is a function of the arguments.

    Yields:
        One :class:`Scene` per frame (the image and its ground truth).
    """
    (width, height), = image_sizes(size)
    if num_frames < 1:
        raise ValueError(f'num_frames must be >= 1, got {num_frames}')
    rng = np.random.default_rng([seed, 1 << 20])
    background = random_background(rng, height, width)
    shapes = random_shapes(rng, height, width, 'low')
    side = min(width, height)
    velocities = rng.uniform(-0.015, 0.015, size=(len(shapes), 2)) * side
    spins = rng.uniform(-4.0, 4.0, size=len(shapes))
    for _ in range(num_frames):
        yield compose_scene(background, shapes, noise_sigma=3.0, rng=rng)
        moved = []
        for index, shape in enumerate(shapes):
            x, y = shape.center[0] + velocities[index, 0], shape.center[1] + velocities[index, 1]
            if not 0 <= x < width:
                velocities[index, 0] *= -1
                x = float(np.clip(x, 0, width - 1))
            if not 0 <= y < height:
                velocities[index, 1] *= -1
                y = float(np.clip(y, 0, height - 1))
            moved.append(_replace_pose(shape, (x, y), shape.angle + spins[index]))
        shapes = moved


def _replace_pose(shape: ShapeSpec, center: Tuple[float, float], angle: float) -> ShapeSpec:
    """Return ``shape`` moved to ``center`` and rotated to ``angle`` degrees."""
    return replace(shape, center=(float(center[0]), float(center[1])), angle=float(angle % 360))


def write_synthetic_video(path: Union[str, Path], frames: int = 60,
                          size: ImageSize = (640, 480), seed: int = 0,
                          fps: float = 10.0) -> Path:
    """Render :func:`synthetic_video_frames` to a video file.

    The codec follows the suffix: ``.avi`` uses MJPG, ``.mp4`` uses mp4v (both work with the
    opencv-python wheels).

    Returns:
        ``path``.
    """
    path = Path(path)
    codecs = {'.avi': 'MJPG', '.mp4': 'mp4v'}
    suffix = path.suffix.lower()
    if suffix not in codecs:
        raise ValueError(f'{path}: video suffix must be one of {sorted(codecs)}')
    width, height = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codecs[suffix]), float(fps),
                             (width, height))
    if not writer.isOpened():
        raise OSError(f'{path}: OpenCV could not open a {codecs[suffix]} video writer')
    try:
        for scene in synthetic_video_frames(frames, (width, height), seed):
            writer.write(scene.image)
    finally:
        writer.release()
    return path
