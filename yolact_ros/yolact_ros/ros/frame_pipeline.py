"""One camera frame through the model: image message in, the node's output messages out.

The one per-frame path of ``segment_node`` and ``yolact bag``, free of rclpy: decode a
``sensor_msgs/Image`` or ``CompressedImage`` (any Python binding: only its fields are read) to BGR,
run the Segmenter (its postprocessing applies the thresholds and the class allow-list) and build
the output messages with the classes of a
:class:`~yolact_ros.ros.messages.MessageTypes`, all carrying the input header verbatim.
:func:`segment_frames` segments several cameras' frames in one model call; each is then given to
:func:`process_frame` (``segmented``) for its messages.
"""

from dataclasses import dataclass, field
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from yolact_ros.geometry import CameraIntrinsics, Instance3D
from yolact_ros.ros.image_conversion import compressed_to_bgr, image_to_bgr
from yolact_ros.ros.mask_encoding import ENCODINGS
from yolact_ros.ros.messages import (
    build_detection_array, build_header, build_image, build_instance_array, label_image,
    latency_ms, MessageTypes, stamp_to_ns)
from yolact_ros.ros.messages_3d import build_detection3d_array, build_markers, build_point_cloud
from yolact_ros.structures import Detections
from yolact_ros.tracking import TrackTrails

# Per-frame output topics (relative names), in publishing order; ``label_info`` is sent once.
# The 3D ones (``depth.enabled``) last.
TOPICS_3D: Tuple[str, ...] = ('detections_3d', 'markers', 'points')
FRAME_TOPICS: Tuple[str, ...] = ('instances', 'detections', 'instance_mask', 'overlay',
                                 *TOPICS_3D)


class BadFrameError(ValueError):
    """The image message cannot be decoded (unknown encoding, wrong step, corrupt JPEG, ...)."""


class InferenceError(RuntimeError):
    """The Segmenter raised on a decoded frame; the original exception is the ``__cause__``."""


@dataclass(frozen=True)
class OutputOptions:
    """Which output messages to build for a frame, and how.

    Attributes:
        mask_encoding: ``InstanceMask`` encoding of ``instances``: ``'bitmap_roi'`` or
            ``'rle_coco'``.
        detection_class_id: hypothesis ``class_id`` of ``detections``: ``'name'`` or ``'id'``.
        instances, detections, instance_mask, overlay: build that topic's message.
        detections_3d, markers, points: build that 3D output when the frame has depth.
    """

    mask_encoding: str = 'bitmap_roi'
    detection_class_id: str = 'name'
    instances: bool = True
    detections: bool = True
    instance_mask: bool = False
    overlay: bool = False
    detections_3d: bool = False
    markers: bool = False
    points: bool = False

    def __post_init__(self) -> None:
        if self.mask_encoding not in ENCODINGS:
            raise ValueError(f'mask_encoding must be one of {", ".join(ENCODINGS)}, got '
                             f'{self.mask_encoding!r}')
        if self.detection_class_id not in ('name', 'id'):
            raise ValueError("detection_class_id must be 'name' or 'id', got "
                             f'{self.detection_class_id!r}')

    @classmethod
    def from_params(cls, params, *, instance_mask: bool, overlay: bool, instances: bool = True,
                    detections: bool = True, detections_3d: bool = True, markers: bool = False,
                    points: bool = False) -> 'OutputOptions':
        """Return the options a :class:`~yolact_ros.ros.params.NodeParams` selects.

        ``instances``, ``detections``, ``instance_mask`` and ``overlay`` say whether that
        output is wanted now (someone subscribes, the overlay rate allows one); the
        ``publish_*`` toggles still apply. The 3D outputs need ``depth.enabled``.
        """
        depth = bool(getattr(params, 'depth_enabled', False))
        return cls(mask_encoding=params.mask_encoding,
                   detection_class_id=params.detection_class_id,
                   instances=params.publish_instances and instances,
                   detections=params.publish_detections and detections,
                   instance_mask=params.publish_instance_mask and instance_mask,
                   overlay=params.publish_overlay and overlay,
                   detections_3d=depth and detections_3d, markers=depth and markers,
                   points=depth and points)


@dataclass(frozen=True)
class DepthFrame:
    """The depth input of one frame: an aligned depth image and what to do with it.

    Attributes:
        depth: ``uint16[H, W]`` millimetres or ``float32[H, W]`` metres, registered to the
            colour image (another size of the same aspect ratio is resampled).
        intrinsics: of the depth image (``depth/camera_info``).
        options: keyword arguments of :func:`~yolact_ros.geometry.instances_3d`
            (``NodeParams.depth_options()``).
        frame_id: frame of ``detections_3d``, ``markers`` and ``points`` when ``rotation``
            and ``translation`` move the camera frame into it; '' keeps the image's.
        rotation: ``float[3, 3]`` camera optical frame to ``frame_id``.
        translation: ``float[3]``.
    """

    depth: np.ndarray
    intrinsics: CameraIntrinsics
    options: Mapping[str, Any] = field(default_factory=dict)
    frame_id: str = ''
    rotation: Optional[np.ndarray] = None
    translation: Optional[np.ndarray] = None


@dataclass(frozen=True)
class FrameTimes:
    """Milliseconds spent per stage of one frame."""

    decode_ms: float
    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float
    build_ms: float

    @property
    def total_ms(self) -> float:
        """Sum of the stages."""
        return (self.decode_ms + self.preprocess_ms + self.inference_ms + self.postprocess_ms
                + self.build_ms)


@dataclass(frozen=True)
class FrameResult:
    """The outputs of one frame.

    Attributes:
        messages: output messages keyed by topic name (a subset of :data:`FRAME_TOPICS`, in
            that order), each with the input message's header.
        detections: the Segmenter's detections (source-image pixels).
        track_ids: ``int64[D]`` track ids of the detections (0: not tracked), or None when
            tracking is off.
        image: the decoded BGR ``uint8[H, W, 3]`` frame.
        times: stage timings.
        latency_ms: the ``latency_ms`` written into ``instances``.
        geometry: one :class:`~yolact_ros.geometry.Instance3D` per detection, in the camera
            optical frame, when the frame had depth; else None.
    """

    messages: Dict[str, Any]
    detections: Detections
    image: np.ndarray
    times: FrameTimes
    latency_ms: float
    track_ids: Optional[np.ndarray] = None
    geometry: Optional[Sequence[Instance3D]] = None


@dataclass(frozen=True)
class SegmentedFrame:
    """One image message decoded and segmented, its messages not built yet.

    Attributes:
        image: the decoded BGR ``uint8[H, W, 3]`` frame.
        detections: the Segmenter's detections of it (``times``: its batch's stages).
        start: ``time.perf_counter()`` when its decoding began.
        decode_ms: milliseconds its decoding took.
    """

    image: np.ndarray
    detections: Detections
    start: float
    decode_ms: float


def decode_image(msg) -> np.ndarray:
    """Return the BGR ``uint8[H, W, 3]`` pixels of an ``Image`` or ``CompressedImage`` message.

    A message with a ``format`` field is taken as ``CompressedImage``.

    Raises:
        BadFrameError: the message cannot be decoded; the text says why.
    """
    try:
        if hasattr(msg, 'format'):
            return compressed_to_bgr(msg.format, msg.data)
        return image_to_bgr(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                            bool(msg.is_bigendian))
    except ValueError as error:
        raise BadFrameError(str(error)) from None


def process_frame(msg, segmenter: Callable[[np.ndarray], Detections], types: MessageTypes,
                  options: OutputOptions, *, dropped_frames: int = 0,
                  now_ns: Optional[Callable[[], int]] = None,
                  tracker: Optional[Callable[[Detections, float], np.ndarray]] = None,
                  trails: Optional[TrackTrails] = None,
                  depth: Optional[DepthFrame] = None,
                  segmented: Optional[SegmentedFrame] = None) -> FrameResult:
    """Segment one image message and build the output messages the options ask for.

    Args:
        msg: ``sensor_msgs/Image`` or ``CompressedImage`` of any binding (rclpy, rosbags).
        segmenter: called with BGR ``uint8[H, W, 3]``, returns :class:`Detections` (the
            :class:`~yolact_ros.inference.Segmenter`).
        types: message classes of the binding to build the outputs with.
        options: which messages to build, and their encodings.
        dropped_frames: written into ``instances.dropped_frames``.
        now_ns: clock read once inference is done, for ``instances.latency_ms`` (now minus
            the image stamp: the node's). ``None`` (offline, ``yolact bag``): the latency is
            the frame's own processing time up to then, as if it had arrived at its stamp.
        tracker: called with the detections and the image stamp in seconds, returns their
            ``int64[D]`` track ids (``Tracker.update``); the messages carry them
            (``Instance.track_id``, ``Detection2D.id``) and the overlay shows them.
            ``None``: tracking off.
        trails: the tracks' trails, drawn on the overlay (``StreamTracker.trails``, updated
            by ``tracker``).
        depth: the depth frame paired with the image: the 3D fields of ``instances`` and the
            3D outputs the options ask for. ``None``: 2D only.
        segmented: the frame already decoded and segmented (one of a batch,
            :func:`segment_frames`); ``segmenter`` is then not called.

    Raises:
        BadFrameError: the image cannot be decoded.
        InferenceError: the segmenter raised.
    """
    if segmented is None:
        (segmented,) = segment_frames([msg], segmenter)
        if isinstance(segmented, Exception):
            raise segmented
    image, detections, start = segmented.image, segmented.detections, segmented.start
    header = msg.header
    track_ids = None
    if tracker is not None:
        track_ids = tracker(detections, stamp_to_ns(header.stamp) / 1e9)
    if now_ns is not None:
        latency = latency_ms(header.stamp, now_ns())
    else:
        latency = (time.perf_counter() - start) * 1e3
    built_start = time.perf_counter()
    messages: Dict[str, Any] = {}
    bboxes = None
    geometry = frame_geometry(detections, depth) if depth is not None else None
    if options.instances:
        messages['instances'] = build_instance_array(
            types, header, detections, encoding=ENCODINGS[options.mask_encoding],
            dropped_frames=dropped_frames, latency=latency, track_ids=track_ids,
            geometry=geometry)
        bboxes = [instance.bbox for instance in messages['instances'].instances]
    if options.detections:
        messages['detections'] = build_detection_array(
            types, header, detections, class_id=options.detection_class_id, bboxes=bboxes,
            track_ids=track_ids)
    if options.instance_mask:
        messages['instance_mask'] = build_image(types, header, label_image(detections),
                                                'mono16')
    if options.overlay:
        from yolact_ros.visualize import draw_overlay

        overlay = draw_overlay(image, detections, track_ids=track_ids,
                               trails=None if trails is None else trails.points())
        messages['overlay'] = build_image(types, header, overlay, 'bgr8')
    if geometry is not None:
        messages.update(build_3d_messages(types, header, detections, geometry, depth, options,
                                          track_ids))
    stages = detections.times
    times = FrameTimes(
        decode_ms=segmented.decode_ms, preprocess_ms=float(stages.preprocess_ms),
        inference_ms=float(stages.inference_ms), postprocess_ms=float(stages.postprocess_ms),
        build_ms=(time.perf_counter() - built_start) * 1e3)
    return FrameResult(messages=messages, detections=detections, image=image, times=times,
                       latency_ms=latency, track_ids=track_ids, geometry=geometry)


def segment_frames(msgs: Sequence[Any], segmenter: Callable[..., Any]
                   ) -> List[Union[SegmentedFrame, Exception]]:
    """Decode image messages and segment them in one call of ``segmenter``; one result each.

    The images may differ in size (the Segmenter resizes each to its input). One message is
    passed as one image, several as a list (the Segmenter's batch). A message that cannot be
    decoded gets its :class:`BadFrameError` and stays out of the batch; if the segmenter
    raises, every decoded message gets the same :class:`InferenceError`.
    """
    results: List[Union[SegmentedFrame, Exception, None]] = []
    decoded = []  # (index in results, image, start, decode_ms)
    for msg in msgs:
        start = time.perf_counter()
        try:
            image = decode_image(msg)
        except BadFrameError as error:
            results.append(error)
            continue
        decoded.append((len(results), image, start, (time.perf_counter() - start) * 1e3))
        results.append(None)
    if not decoded:
        return results
    images = [image for _, image, _, _ in decoded]
    try:
        found = segmenter(images[0]) if len(images) == 1 else segmenter(images)
    except Exception as error:  # any failure of the model is reported, not fatal here
        failure = InferenceError(str(error))
        failure.__cause__ = error
        for index, *_ in decoded:
            results[index] = failure
        return results
    found = [found] if len(images) == 1 else list(found)
    for (index, image, start, decode_ms), detections in zip(decoded, found):
        results[index] = SegmentedFrame(image=image, detections=detections, start=start,
                                        decode_ms=decode_ms)
    return results


def frame_geometry(detections: Detections, depth: DepthFrame) -> Sequence[Instance3D]:
    """Return each detection in 3D (camera optical frame) from the paired depth frame.

    Raises:
        BadFrameError: the depth image or its intrinsics do not fit the colour image (another
            aspect ratio, a wrong dtype).
    """
    from yolact_ros.geometry import instances_3d

    try:
        return instances_3d(detections.mask_windows, depth.depth, depth.intrinsics,
                            **depth.options)
    except ValueError as error:
        raise BadFrameError(f'depth: {error}') from None


def build_3d_messages(types: MessageTypes, header, detections: Detections,
                      geometry: Sequence[Instance3D], depth: DepthFrame,
                      options: OutputOptions, track_ids: Optional[np.ndarray]) -> Dict[str, Any]:
    """Return the 3D outputs the options ask for, moved to ``depth.frame_id`` if given.

    Their header is the image's, with ``frame_id`` replaced by ``depth.frame_id`` when the
    geometry is transformed into it.
    """
    wanted = [topic for topic in TOPICS_3D if getattr(options, topic)]
    if not wanted:
        return {}
    if depth.rotation is not None and depth.frame_id:
        from yolact_ros.geometry import transform_instances

        geometry = transform_instances(geometry, depth.rotation, depth.translation)
        header = build_header(types, stamp_to_ns(header.stamp), depth.frame_id)
    builders = {
        'detections_3d': lambda: build_detection3d_array(
            types, header, detections, geometry, class_id=options.detection_class_id,
            track_ids=track_ids),
        'markers': lambda: build_markers(types, header, detections, geometry,
                                         track_ids=track_ids),
        'points': lambda: build_point_cloud(types, header, detections, geometry)}
    return {topic: builders[topic]() for topic in wanted}
