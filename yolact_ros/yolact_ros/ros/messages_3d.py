"""Build the 3D outputs (``detections_3d``, ``markers``, ``points``) from instances in 3D.

Pure functions over :class:`~yolact_ros.ros.messages.MessageTypes`, like
:mod:`yolact_ros.ros.messages`: the node, ``yolact bag`` and tests share them. The inputs are the
detections and one :class:`~yolact_ros.geometry.Instance3D` per detection (in the frame of the
header given). Only the instances valid in 3D (``reliable``: at least ``depth.min_points``
points) appear in these outputs; ``instances`` carries every instance with its ``valid_3d`` flag.
"""

from typing import Optional, Sequence

import numpy as np

from yolact_ros.geometry import Instance3D
from yolact_ros.ros.messages import bbox_3d, MessageTypes
from yolact_ros.structures import Detections

# PointField datatypes (sensor_msgs/PointField constants).
_FLOAT32, _UINT32 = 7, 6
# One point of ``points``: x, y, z metres, the instance id (as in ``instances``) and class id.
POINT_DTYPE = np.dtype([('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('instance_id', '<u4'),
                        ('class_id', '<u4')])
_MARKER_CUBE, _MARKER_TEXT = 1, 9
_MARKER_ADD, _MARKER_DELETEALL = 0, 3
LABEL_HEIGHT_M = 0.06
_SMALLEST_SCALE_M = 1e-3  # RViz refuses a marker with a zero scale


def valid_indices(geometry: Sequence[Instance3D]) -> list:
    """Return the indices of the instances valid in 3D (reliable and with points)."""
    return [i for i, item in enumerate(geometry) if item.reliable and item.count > 0]


def detection_ids(detections: Detections, track_ids: Optional[np.ndarray]) -> list:
    """Return the ``Detection2D.id`` of each detection: its track id, else ``i + 1``."""
    if track_ids is None:
        return [i + 1 for i in range(len(detections))]
    return [int(v) for v in track_ids]


def build_detection3d_array(t: MessageTypes, header, detections: Detections,
                            geometry: Sequence[Instance3D], *, class_id: str = 'name',
                            track_ids: Optional[np.ndarray] = None):
    """Return a ``vision_msgs/Detection3DArray`` of the instances valid in 3D.

    Ids and hypotheses are those of ``detections`` (see
    :func:`~yolact_ros.ros.messages.build_detection_array`); the hypothesis pose is the
    centroid of the points (identity orientation), the bbox their axis-aligned box, metres.
    """
    _check(detections, geometry)
    ids = detection_ids(detections, track_ids)
    out = []
    for i in valid_indices(geometry):
        item = geometry[i]
        label = (str(detections.class_names[i]) if class_id == 'name'
                 else str(int(detections.class_ids[i])))
        x, y, z = (float(v) for v in item.centroid)
        pose = t.PoseWithCovariance(
            pose=t.Pose(position=t.Point(x=x, y=y, z=z),
                        orientation=t.Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)),
            covariance=t.f64(np.zeros(36)))
        hypothesis = t.ObjectHypothesisWithPose(
            hypothesis=t.ObjectHypothesis(class_id=label, score=float(detections.scores[i])),
            pose=pose)
        out.append(t.Detection3D(header=header, results=[hypothesis],
                                 bbox=bbox_3d(t, item.box_center, item.box_size),
                                 id=str(ids[i])))
    return t.Detection3DArray(header=header, detections=out)


def build_markers(t: MessageTypes, header, detections: Detections,
                  geometry: Sequence[Instance3D], *, track_ids: Optional[np.ndarray] = None):
    """Return a ``visualization_msgs/MarkerArray``: DELETEALL, then a box and a label each.

    Per instance valid in 3D: a translucent ``CUBE`` (namespace ``boxes``) over its axis-aligned
    box and a ``TEXT_VIEW_FACING`` label (namespace ``labels``: class, score, track) at its
    centre, both with the instance's stable id and the overlay's colour (the track's, else the
    class's). Marker id: the track id while tracking; ``i + 1`` with tracking off; ``-(i + 1)``
    for a detection not tracked while tracking is on (no clash with a track id).
    """
    from yolact_ros.visualize import class_color, track_color

    _check(detections, geometry)
    ids = detection_ids(detections, track_ids)
    markers = [_marker(t, header, 'boxes', 0, _MARKER_CUBE, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0),
                       (0.0, 0.0, 0.0, 0.0), action=_MARKER_DELETEALL)]
    for i in valid_indices(geometry):
        item = geometry[i]
        tracked = track_ids is not None and ids[i] > 0
        marker_id = ids[i] if tracked or track_ids is None else -(i + 1)
        blue, green, red = (track_color(ids[i]) if tracked
                            else class_color(int(detections.class_ids[i])))
        color = (red / 255.0, green / 255.0, blue / 255.0)
        size = np.maximum(item.box_size, _SMALLEST_SCALE_M)
        markers.append(_marker(t, header, 'boxes', marker_id, _MARKER_CUBE, item.box_center,
                               size, (*color, 0.4)))
        text = f'{detections.class_names[i]} {float(detections.scores[i]):.2f}' + (
            f' #{ids[i]}' if tracked else '')
        markers.append(_marker(t, header, 'labels', marker_id, _MARKER_TEXT, item.box_center,
                               (0.0, 0.0, LABEL_HEIGHT_M), (*color, 1.0), text=text))
    return t.MarkerArray(markers=markers)


def _marker(t: MessageTypes, header, ns: str, marker_id: int, kind: int, center, scale,
            rgba, *, action: int = _MARKER_ADD, text: str = ''):
    x, y, z = (float(v) for v in center)
    return t.Marker(
        header=header, ns=ns, id=int(marker_id), type=kind, action=action,
        pose=t.Pose(position=t.Point(x=x, y=y, z=z),
                    orientation=t.Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)),
        scale=t.Vector3(x=float(scale[0]), y=float(scale[1]), z=float(scale[2])),
        color=t.ColorRGBA(r=float(rgba[0]), g=float(rgba[1]), b=float(rgba[2]),
                          a=float(rgba[3])),
        lifetime=t.Duration(sec=0, nanosec=0), frame_locked=False, points=[], colors=[],
        text=text, mesh_resource='', mesh_use_embedded_materials=False)


def point_cloud_array(detections: Detections, geometry: Sequence[Instance3D]) -> np.ndarray:
    """Return the points of the instances valid in 3D as a :data:`POINT_DTYPE` array ``[n]``."""
    _check(detections, geometry)
    indices = valid_indices(geometry)
    cloud = np.empty(sum(geometry[i].count for i in indices), POINT_DTYPE)
    start = 0
    for i in indices:
        points = geometry[i].points
        end = start + len(points)
        for axis, name in enumerate('xyz'):
            cloud[name][start:end] = points[:, axis]
        cloud['instance_id'][start:end] = i + 1
        cloud['class_id'][start:end] = int(detections.class_ids[i])
        start = end
    return cloud


def build_point_cloud(t: MessageTypes, header, detections: Detections,
                      geometry: Sequence[Instance3D]):
    """Return an unordered ``sensor_msgs/PointCloud2`` (height 1) of the valid instances.

    Fields: ``x``, ``y``, ``z`` (float32, metres), ``instance_id`` (uint32, the instance's
    ``id`` in ``instances`` and ``instance_mask``) and ``class_id`` (uint32); 20 bytes a point,
    little-endian.
    """
    cloud = point_cloud_array(detections, geometry)
    fields = [t.PointField(name=name, offset=POINT_DTYPE.fields[name][1],
                           datatype=_FLOAT32 if name in 'xyz' else _UINT32, count=1)
              for name in POINT_DTYPE.names]
    return t.PointCloud2(
        header=header, height=1, width=len(cloud), fields=fields, is_bigendian=False,
        point_step=POINT_DTYPE.itemsize, row_step=POINT_DTYPE.itemsize * len(cloud),
        data=t.u8(cloud.view(np.uint8)), is_dense=True)


def _check(detections: Detections, geometry: Sequence[Instance3D]) -> None:
    if len(geometry) != len(detections):
        raise ValueError(f'expected {len(detections)} Instance3D, got {len(geometry)}')
