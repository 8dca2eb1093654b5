"""Build the node's output messages from :class:`~yolact_ros.structures.Detections`.

Pure functions: the message classes come in a :class:`MessageTypes` (rclpy's from
:func:`ros_message_types`, rosbags' from :func:`rosbags_message_types`), and every message is
constructed with all its fields by keyword, so the same code serves the node, the bag tool and
tests without a running ROS graph. Headers are passed through untouched (the input's, verbatim);
all coordinates are source-image pixels.
"""

import array
from dataclasses import dataclass
import math
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from yolact_ros.ros.mask_encoding import encode_window
from yolact_ros.structures import Detections, WindowedMasks

_BYTE_LEVELS = {'OK': 0, 'WARN': 1, 'ERROR': 2, 'STALE': 3}


@dataclass(frozen=True)
class MessageTypes:
    """Message classes and array-field converters of one ROS Python binding."""

    Time: type
    Header: type
    Image: type
    RegionOfInterest: type
    Point: type
    Vector3: type
    Quaternion: type
    Pose: type
    PoseWithCovariance: type
    Point2D: type
    Pose2D: type
    BoundingBox2D: type
    ObjectHypothesis: type
    ObjectHypothesisWithPose: type
    Detection2D: type
    Detection2DArray: type
    BoundingBox3D: type
    Detection3D: type
    Detection3DArray: type
    VisionClass: type
    LabelInfo: type
    InstanceMask: type
    Instance: type
    InstanceArray: type
    KeyValue: type
    DiagnosticStatus: type
    DiagnosticArray: type
    ColorRGBA: type
    Duration: type
    Marker: type
    MarkerArray: type
    PointField: type
    PointCloud2: type
    u8: Callable[[np.ndarray], Any]
    u32: Callable[[np.ndarray], Any]
    f64: Callable[[np.ndarray], Any]
    level: Callable[[int], Any]


def ros_message_types() -> MessageTypes:
    """Return the rclpy message classes (imports ROS message packages; no rclpy init needed)."""
    from builtin_interfaces.msg import Duration, Time
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from geometry_msgs.msg import Point, Pose, PoseWithCovariance, Quaternion, Vector3
    from sensor_msgs.msg import Image, PointCloud2, PointField, RegionOfInterest
    from std_msgs.msg import ColorRGBA, Header
    from vision_msgs.msg import (
        BoundingBox2D, BoundingBox3D, Detection2D, Detection2DArray, Detection3D,
        Detection3DArray, LabelInfo, ObjectHypothesis, ObjectHypothesisWithPose, Point2D, Pose2D,
        VisionClass)
    from visualization_msgs.msg import Marker, MarkerArray
    from yolact_ros_msgs.msg import Instance, InstanceArray, InstanceMask

    return MessageTypes(
        Time=Time, Header=Header, Image=Image, RegionOfInterest=RegionOfInterest, Point=Point,
        Vector3=Vector3, Quaternion=Quaternion, Pose=Pose, PoseWithCovariance=PoseWithCovariance,
        Point2D=Point2D, Pose2D=Pose2D, BoundingBox2D=BoundingBox2D,
        ObjectHypothesis=ObjectHypothesis, ObjectHypothesisWithPose=ObjectHypothesisWithPose,
        Detection2D=Detection2D, Detection2DArray=Detection2DArray, BoundingBox3D=BoundingBox3D,
        Detection3D=Detection3D, Detection3DArray=Detection3DArray, VisionClass=VisionClass,
        LabelInfo=LabelInfo, InstanceMask=InstanceMask, Instance=Instance,
        InstanceArray=InstanceArray, KeyValue=KeyValue, DiagnosticStatus=DiagnosticStatus,
        DiagnosticArray=DiagnosticArray, ColorRGBA=ColorRGBA, Duration=Duration, Marker=Marker,
        MarkerArray=MarkerArray, PointField=PointField, PointCloud2=PointCloud2,
        # array.array from bytes is a memcpy; from an ndarray rclpy would iterate.
        u8=lambda a: array.array('B', np.ascontiguousarray(a, np.uint8).tobytes()),
        u32=lambda a: array.array('I', np.ascontiguousarray(a, np.uint32).tobytes()),
        f64=lambda a: array.array('d', np.ascontiguousarray(a, np.float64).tobytes()),
        level=lambda value: bytes([value]))


def rosbags_message_types(typestore) -> MessageTypes:
    """Return the classes of a rosbags typestore holding vision_msgs and yolact_ros_msgs.

    See :func:`yolact_ros.ros.msg_definitions.rosbags_typestore`.
    """
    types = typestore.types

    def get(name: str) -> type:
        return types[name]

    return MessageTypes(
        Time=get('builtin_interfaces/msg/Time'), Header=get('std_msgs/msg/Header'),
        Image=get('sensor_msgs/msg/Image'),
        RegionOfInterest=get('sensor_msgs/msg/RegionOfInterest'),
        Point=get('geometry_msgs/msg/Point'), Vector3=get('geometry_msgs/msg/Vector3'),
        Quaternion=get('geometry_msgs/msg/Quaternion'),
        Pose=get('geometry_msgs/msg/Pose'),
        PoseWithCovariance=get('geometry_msgs/msg/PoseWithCovariance'),
        Point2D=get('vision_msgs/msg/Point2D'), Pose2D=get('vision_msgs/msg/Pose2D'),
        BoundingBox2D=get('vision_msgs/msg/BoundingBox2D'),
        ObjectHypothesis=get('vision_msgs/msg/ObjectHypothesis'),
        ObjectHypothesisWithPose=get('vision_msgs/msg/ObjectHypothesisWithPose'),
        Detection2D=get('vision_msgs/msg/Detection2D'),
        Detection2DArray=get('vision_msgs/msg/Detection2DArray'),
        BoundingBox3D=get('vision_msgs/msg/BoundingBox3D'),
        Detection3D=get('vision_msgs/msg/Detection3D'),
        Detection3DArray=get('vision_msgs/msg/Detection3DArray'),
        VisionClass=get('vision_msgs/msg/VisionClass'), LabelInfo=get('vision_msgs/msg/LabelInfo'),
        InstanceMask=get('yolact_ros_msgs/msg/InstanceMask'),
        Instance=get('yolact_ros_msgs/msg/Instance'),
        InstanceArray=get('yolact_ros_msgs/msg/InstanceArray'),
        KeyValue=get('diagnostic_msgs/msg/KeyValue'),
        DiagnosticStatus=get('diagnostic_msgs/msg/DiagnosticStatus'),
        DiagnosticArray=get('diagnostic_msgs/msg/DiagnosticArray'),
        ColorRGBA=get('std_msgs/msg/ColorRGBA'), Duration=get('builtin_interfaces/msg/Duration'),
        Marker=_marker_with_jazzy_fields(types),
        MarkerArray=get('visualization_msgs/msg/MarkerArray'),
        PointField=get('sensor_msgs/msg/PointField'),
        PointCloud2=get('sensor_msgs/msg/PointCloud2'),
        u8=lambda a: np.ascontiguousarray(a, np.uint8).reshape(-1),
        u32=lambda a: np.ascontiguousarray(a, np.uint32).reshape(-1),
        f64=lambda a: np.ascontiguousarray(a, np.float64).reshape(-1),
        level=int)


def _marker_with_jazzy_fields(types) -> Callable[..., Any]:
    """Return a ``Marker`` factory that fills the fields Jazzy added (texture, mesh_file).

    Markers are built with the fields Humble and Jazzy share (rclpy defaults the others);
    rosbags' classes need every field.
    """
    marker = types['visualization_msgs/msg/Marker']
    image = types['sensor_msgs/msg/CompressedImage']
    mesh_file, header = types['visualization_msgs/msg/MeshFile'], types['std_msgs/msg/Header']
    time = types['builtin_interfaces/msg/Time']

    def build(**fields):
        empty = np.zeros(0, np.uint8)
        texture = image(header=header(stamp=time(sec=0, nanosec=0), frame_id=''), format='',
                        data=empty)
        return marker(**fields, texture_resource='', texture=texture, uv_coordinates=[],
                      mesh_file=mesh_file(filename='', data=empty))
    return build


# --------------------------------------------------------------------------- detections


def label_image(detections: Detections) -> np.ndarray:
    """Return the instance label image ``uint16[H, W]``: 0 background, instance ``i`` is ``i + 1``.

    Where masks overlap, the higher-scoring (lower-numbered) instance wins.
    """
    height, width = detections.image_size
    labels = np.zeros((height, width), np.uint16)
    masks = detections.mask_windows
    for i in range(len(detections) - 1, -1, -1):
        labels[masks.slices(i)][masks.windows[i]] = i + 1
    return labels


def stamp_to_ns(stamp) -> int:
    """Return a ``builtin_interfaces/Time`` as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def latency_ms(stamp, now_ns: int) -> float:
    """Return milliseconds from an image stamp to ``now_ns``; NaN for a zero (missing) stamp."""
    stamp_ns = stamp_to_ns(stamp)
    if stamp_ns == 0:
        return math.nan
    return (now_ns - stamp_ns) / 1e6


def _bbox(t: MessageTypes, box: np.ndarray):
    x1, y1, x2, y2 = (float(v) for v in box)
    return t.BoundingBox2D(
        center=t.Pose2D(position=t.Point2D(x=(x1 + x2) / 2.0, y=(y1 + y2) / 2.0), theta=0.0),
        size_x=x2 - x1, size_y=y2 - y1)


def _instance_mask(t: MessageTypes, masks: WindowedMasks, index: int, encoding: int):
    encoded = encode_window(masks.windows[index], masks.origins[index], masks.image_size,
                            encoding)
    roi = encoded.roi
    return t.InstanceMask(
        encoding=encoded.encoding,
        roi=t.RegionOfInterest(x_offset=roi.x_offset, y_offset=roi.y_offset, height=roi.height,
                               width=roi.width, do_rectify=False),
        data=t.u8(np.frombuffer(encoded.data, np.uint8)), counts=t.u32(encoded.counts),
        area=encoded.area)


def _check_track_ids(detections: Detections,
                     track_ids: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """Return ``int64[D]`` track ids, or None; raise if they do not fit the detections."""
    if track_ids is None:
        return None
    track_ids = np.asarray(track_ids, np.int64)
    if track_ids.shape != (len(detections),):
        raise ValueError(f'expected track_ids [{len(detections)}], got {list(track_ids.shape)}')
    return track_ids


def build_instance_array(t: MessageTypes, header, detections: Detections, *, encoding: int,
                         dropped_frames: int = 0, latency: float = math.nan,
                         track_ids: Optional[np.ndarray] = None,
                         geometry: Optional[Sequence[Any]] = None):
    """Return a ``yolact_ros_msgs/InstanceArray``; instance ``i`` gets ``id = i + 1``.

    ``track_ids``: ``int64[D]`` track id of each detection (``0``: not tracked) for
    ``Instance.track_id``; ``None`` (tracking off): every ``track_id`` is 0. ``geometry``: one
    :class:`~yolact_ros.geometry.Instance3D` per detection for the 3D fields; ``None`` (no
    depth): they are all zero.
    """
    height, width = detections.image_size
    track_ids = _check_track_ids(detections, track_ids)
    if geometry is not None and len(geometry) != len(detections):
        raise ValueError(f'expected {len(detections)} Instance3D, got {len(geometry)}')
    no_3d = _instance_3d_fields(t, None)  # shared by the instances without 3D
    instances = [
        t.Instance(id=i + 1, track_id=0 if track_ids is None else int(track_ids[i]),
                   class_id=int(detections.class_ids[i]),
                   class_name=str(detections.class_names[i]),
                   score=float(detections.scores[i]), bbox=_bbox(t, detections.boxes[i]),
                   mask=_instance_mask(t, detections.mask_windows, i, encoding),
                   **(no_3d if geometry is None else _instance_3d_fields(t, geometry[i])))
        for i in range(len(detections))]
    times = detections.times
    return t.InstanceArray(
        header=header, height=int(height), width=int(width), instances=instances,
        preprocess_ms=float(times.preprocess_ms), inference_ms=float(times.inference_ms),
        postprocess_ms=float(times.postprocess_ms), latency_ms=float(latency),
        dropped_frames=int(dropped_frames))


def _instance_3d_fields(t: MessageTypes, geometry: Optional[Any]) -> dict:
    """Return the 3D fields of an ``Instance`` from an ``Instance3D`` (all zero: None, empty)."""
    if geometry is None or geometry.count == 0:
        center, size, count, valid = (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0, False
        position = center
    else:
        center, size = geometry.box_center.tolist(), geometry.box_size.tolist()
        position, count, valid = geometry.centroid.tolist(), geometry.count, geometry.reliable
    return {'num_points': int(count), 'valid_3d': bool(valid),
            'position': t.Point(x=float(position[0]), y=float(position[1]),
                                z=float(position[2])),
            'bbox_3d': bbox_3d(t, center, size)}


def bbox_3d(t: MessageTypes, center: Sequence[float], size: Sequence[float]):
    """Return a ``vision_msgs/BoundingBox3D``: axis-aligned, ``center`` and ``size`` metres."""
    return t.BoundingBox3D(
        center=t.Pose(position=t.Point(x=float(center[0]), y=float(center[1]),
                                       z=float(center[2])),
                      orientation=t.Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)),
        size=t.Vector3(x=float(size[0]), y=float(size[1]), z=float(size[2])))


def build_detection_array(t: MessageTypes, header, detections: Detections, *,
                          class_id: str = 'name', bboxes: Optional[Sequence] = None,
                          track_ids: Optional[np.ndarray] = None):
    """Return a ``vision_msgs/Detection2DArray``.

    ``Detection2D.id`` is the track id (``int64[D]`` ``track_ids``, given while tracking is on;
    ``'0'`` for a detection not tracked), else the per-frame instance id (as in ``instances``
    and ``instance_mask``). The single hypothesis' ``class_id`` is the class name
    (``class_id='name'``) or the numeric class index as a string (``'id'``, the ``label_info``
    key). ``bboxes``: the detections' ``BoundingBox2D`` messages when already built (those of
    ``instances``), else they are built here.
    """
    if class_id not in ('name', 'id'):
        raise ValueError(f"class_id must be 'name' or 'id', got {class_id!r}")
    track_ids = _check_track_ids(detections, track_ids)
    detections_out = []
    # One identity pose for every hypothesis: the message is serialised as a whole, and
    # building 4 nested messages per detection was a third of the node's work (rclpy).
    pose = _identity_pose(t)
    for i in range(len(detections)):
        label = (str(detections.class_names[i]) if class_id == 'name'
                 else str(int(detections.class_ids[i])))
        hypothesis = t.ObjectHypothesisWithPose(
            hypothesis=t.ObjectHypothesis(class_id=label, score=float(detections.scores[i])),
            pose=pose)
        bbox = bboxes[i] if bboxes is not None else _bbox(t, detections.boxes[i])
        detections_out.append(t.Detection2D(header=header, results=[hypothesis], bbox=bbox,
                                            id=str(i + 1 if track_ids is None
                                                   else int(track_ids[i]))))
    return t.Detection2DArray(header=header, detections=detections_out)


def _identity_pose(t: MessageTypes):
    return t.PoseWithCovariance(
        pose=t.Pose(position=t.Point(x=0.0, y=0.0, z=0.0),
                    orientation=t.Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)),
        covariance=t.f64(np.zeros(36)))


def build_label_info(t: MessageTypes, header, class_names: Sequence[str], threshold: float):
    """Return a ``vision_msgs/LabelInfo`` mapping class index to name."""
    return t.LabelInfo(
        header=header,
        class_map=[t.VisionClass(class_id=i, class_name=str(name))
                   for i, name in enumerate(class_names)],
        threshold=float(threshold))


def build_image(t: MessageTypes, header, pixels: np.ndarray, encoding: str):
    """Return a ``sensor_msgs/Image`` of ``uint8[H, W, 3]`` (bgr8) or ``uint16[H, W]`` (mono16).

    16-bit data is written little-endian (``is_bigendian = 0``).
    """
    expected = {'bgr8': (np.uint8, 3), 'mono16': (np.uint16, 2)}
    if encoding not in expected:
        raise ValueError(f"encoding must be 'bgr8' or 'mono16', got {encoding!r}")
    dtype, ndim = expected[encoding]
    if pixels.dtype != dtype or pixels.ndim != ndim or (ndim == 3 and pixels.shape[2] != 3):
        raise ValueError(f'{encoding} needs {np.dtype(dtype)} with {ndim} dims, got '
                         f'{pixels.dtype}{list(pixels.shape)}')
    height, width = pixels.shape[:2]
    itemsize = 3 if encoding == 'bgr8' else 2
    data = np.ascontiguousarray(pixels.astype(pixels.dtype.newbyteorder('<'), copy=False))
    return t.Image(header=header, height=height, width=width, encoding=encoding, is_bigendian=0,
                   step=width * itemsize, data=t.u8(data.view(np.uint8).reshape(-1)))


def build_header(t: MessageTypes, stamp_ns: int, frame_id: str = ''):
    """Return a ``std_msgs/Header`` stamped ``stamp_ns`` nanoseconds."""
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return t.Header(stamp=t.Time(sec=sec, nanosec=nanosec), frame_id=frame_id)


def build_diagnostics(t: MessageTypes, header, *, name: str, hardware_id: str, level: str,
                      message: str, values: Mapping[str, Any]):
    """Return a ``diagnostic_msgs/DiagnosticArray`` with one status.

    ``level`` is ``'OK'``, ``'WARN'``, ``'ERROR'`` or ``'STALE'``; ``values`` become key/value
    pairs (floats with 3 decimals, ``None`` as ``'n/a'``).
    """
    if level not in _BYTE_LEVELS:
        raise ValueError(f'level must be one of {sorted(_BYTE_LEVELS)}, got {level!r}')
    status = t.DiagnosticStatus(
        level=t.level(_BYTE_LEVELS[level]), name=name, message=message, hardware_id=hardware_id,
        values=[t.KeyValue(key=key, value=_format_value(value)) for key, value in values.items()])
    return t.DiagnosticArray(header=header, status=[status])


def _format_value(value: Optional[Any]) -> str:
    if value is None:
        return 'n/a'
    if isinstance(value, float):
        return f'{value:.3f}'
    return str(value)
