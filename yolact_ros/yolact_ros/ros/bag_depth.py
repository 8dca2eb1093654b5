"""Depth in ``yolact bag``: the image frames of a bag, each with its paired depth frame.

The bag's image, depth and camera_info messages are read together in log order; each image is
paired with the depth frame closest in stamp within ``max_skew``
(:class:`~yolact_ros.ros.depth_pairing.StreamPairing`) and the newest camera_info read before,
as ``segment_node`` pairs them live. Without depth (``depth=None``) the images pass unchanged.
"""

from dataclasses import dataclass, field
from typing import Any, Iterator, List, Mapping, Optional, Tuple

from yolact_ros.ros.bag_tool import BagError, open_bag, resolve_input
from yolact_ros.ros.depth_pairing import (
    camera_info_to_intrinsics, depth_to_array, StreamPairing)
from yolact_ros.ros.frame_pipeline import DepthFrame
from yolact_ros.ros.messages import stamp_to_ns

DEPTH_TYPE = 'sensor_msgs/msg/Image'
CAMERA_INFO_TYPE = 'sensor_msgs/msg/CameraInfo'


@dataclass(frozen=True)
class BagDepth:
    """The depth input of ``yolact bag``.

    Attributes:
        depth_topic: aligned depth images (``16UC1`` millimetres or ``32FC1`` metres).
        camera_info_topic: the depth camera's ``sensor_msgs/CameraInfo``.
        options: keyword arguments of :func:`~yolact_ros.geometry.instances_3d`
            (``NodeParams.depth_options()``).
        max_skew: seconds between an image's stamp and its depth frame's, at most.
    """

    depth_topic: str
    camera_info_topic: str
    options: Mapping[str, Any] = field(default_factory=dict)
    max_skew: float = 0.05


@dataclass
class DepthCounts:
    """Frames paired with depth, frames left 2D, and whether camera_info was ever read."""

    paired: int = 0
    unpaired: int = 0
    camera_info_read: bool = False


def depth_connections(reader, depth: BagDepth) -> Tuple[list, list]:
    """Return the connections of the depth and camera_info topics.

    Raises:
        BagError: a topic is missing or of another type; the text lists the bag's topics.
    """
    found = []
    for topic, msgtype in ((depth.depth_topic, DEPTH_TYPE),
                           (depth.camera_info_topic, CAMERA_INFO_TYPE)):
        connections = [c for c in reader.connections if c.topic == topic]
        if not connections or any(c.msgtype != msgtype for c in connections):
            have = ', '.join(sorted(f'{c.topic} ({c.msgtype})' for c in reader.connections
                                    if c.msgtype in (DEPTH_TYPE, CAMERA_INFO_TYPE)))
            raise BagError(f"topic '{topic}' of type {msgtype} is not in the bag; its image "
                           f'and camera_info topics: {have or "none"}')
        found.append(connections)
    return found[0], found[1]


def check_depth_topics(source, depth: BagDepth) -> None:
    """Raise :class:`BagError` unless bag ``source`` has both topics of ``depth``."""
    with open_bag(resolve_input(source)) as reader:
        depth_connections(reader, depth)


def paired_frames(reader, image_connections: list, depth: Optional[BagDepth],
                  counts: DepthCounts) -> Iterator[Tuple[int, int, Any, Optional[DepthFrame]]]:
    """Yield ``(index, log_time, message, depth_frame)`` for each image, in reading order.

    ``message`` is the deserialised image, or the exception deserialising it raised (the
    caller reports it as a bad frame). ``depth_frame`` is None without ``depth``, without a
    depth frame within ``max_skew`` or before any camera_info (counted in ``counts``).

    Raises:
        BagError: a paired depth image or camera_info cannot be read.
    """
    from rosbags.highlevel import AnyReaderError

    if depth is None:
        for index, (connection, log_time, raw) in enumerate(
                reader.messages(connections=image_connections)):
            try:
                yield index, log_time, reader.deserialize(raw, connection.msgtype), None
            except AnyReaderError as error:
                yield index, log_time, error, None
        return
    depth_conns, info_conns = depth_connections(reader, depth)
    kinds = {id(c): kind for kind, conns in (('depth', depth_conns), ('info', info_conns))
             for c in conns}
    pairing: StreamPairing = StreamPairing(int(depth.max_skew * 1e9))
    state = {'info': None, 'index': 0}
    for connection, log_time, raw in reader.messages(
            connections=image_connections + depth_conns + info_conns):
        kind = kinds.get(id(connection), 'image')
        try:
            msg = reader.deserialize(raw, connection.msgtype)
        except AnyReaderError as error:
            if kind != 'image':
                continue  # a corrupt depth or camera_info message: as if not recorded
            msg = error
        if kind == 'info':
            state['info'] = msg
            continue
        if kind == 'depth':
            ready = pairing.add_depth(stamp_to_ns(msg.header.stamp), msg)
        else:
            stamp = 0 if isinstance(msg, Exception) else stamp_to_ns(msg.header.stamp)
            ready = pairing.add_colour(stamp, (state['index'], log_time, msg, state['info']))
            state['index'] += 1
        yield from _frames(ready, depth, counts)
    yield from _frames(pairing.finish(), depth, counts)


def _frames(ready: List, depth: BagDepth, counts: DepthCounts) -> Iterator:
    """Turn released ``((index, log_time, msg, info), depth_msg)`` pairs into frames."""
    for (index, log_time, msg, info), depth_msg in ready:
        counts.camera_info_read |= info is not None
        if isinstance(msg, Exception) or depth_msg is None or info is None:
            counts.unpaired += not isinstance(msg, Exception)
            yield index, log_time, msg, None
            continue
        try:
            frame = DepthFrame(depth=depth_to_array(depth_msg),
                               intrinsics=camera_info_to_intrinsics(info), options=depth.options)
        except ValueError as error:
            raise BagError(f"cannot read depth on '{depth.depth_topic}' or camera_info on "
                           f"'{depth.camera_info_topic}' for frame {index}: {error}") from None
        counts.paired += 1
        yield index, log_time, msg, frame
