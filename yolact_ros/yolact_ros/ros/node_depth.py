"""The depth side of ``segment_node``: subscriptions, pairing, camera_info and tf.

:class:`DepthInputs` subscribes to ``depth/image`` and ``depth/camera_info`` (relative names,
remappable, the QoS of the image; one per camera, ``NAME/depth/...`` for camera ``NAME``), keeps
the recent depth frames in a :class:`~yolact_ros.ros.depth_pairing.DepthBuffer` and gives the
worker the :class:`~yolact_ros.ros.frame_pipeline.DepthFrame` of a colour frame: the depth frame
closest in stamp within ``depth.max_skew``, decoded, with the latest camera_info and, with
``target_frame`` and tf2 installed, the transform into it. Without a pair or camera_info the
frame stays 2D.
"""

from typing import Any, Optional, Tuple

import numpy as np
from sensor_msgs.msg import CameraInfo, Image

from yolact_ros.geometry import quaternion_matrix
from yolact_ros.ros.cameras import camera_topic
from yolact_ros.ros.depth_pairing import (
    camera_info_to_intrinsics, depth_to_array, DepthBuffer)
from yolact_ros.ros.frame_pipeline import BadFrameError, DepthFrame
from yolact_ros.ros.messages import stamp_to_ns
from yolact_ros.ros.node_support import input_qos
from yolact_ros.ros.params import NodeParams


class DepthInputs:
    """Depth subscriptions of one camera and the pairing of its colour frames (per activation).

    ``camera`` is the camera's name ('' for the single unnamed camera): it prefixes the topics.
    """

    def __init__(self, node, params: NodeParams, camera: str = '') -> None:
        self._node = node
        self.buffer: DepthBuffer = DepthBuffer()
        self._info = None
        self._warned = set()
        self.paired = 0
        self.unpaired = 0
        qos = input_qos(params)
        self._subscriptions = [
            node.create_subscription(
                Image, camera_topic(camera, 'depth/image'), self._on_depth, qos),
            node.create_subscription(
                CameraInfo, camera_topic(camera, 'depth/camera_info'), self._on_info, qos)]
        self.depth_topic, self.info_topic = (s.topic_name for s in self._subscriptions)
        self._tf: Optional[TfAdapter] = None  # made when target_frame is first set

    def _on_depth(self, msg) -> None:
        self.buffer.add(stamp_to_ns(msg.header.stamp), msg)

    def _on_info(self, msg) -> None:
        self._info = msg

    def frame_for(self, image_msg, params: NodeParams) -> Optional[DepthFrame]:
        """Return the depth frame paired with ``image_msg``, or None (counted as unpaired).

        Waits up to ``depth.max_skew`` for a depth frame still on its way, never when none has
        arrived. Missing camera_info: one warning naming its topic, and None.

        Raises:
            BadFrameError: the paired depth image or camera_info cannot be read.
        """
        skew_ns = int(params.depth_max_skew * 1e9)
        depth_msg = self.buffer.pair(stamp_to_ns(image_msg.header.stamp), skew_ns,
                                     wait_s=params.depth_max_skew)
        info = self._info
        if depth_msg is None or info is None:
            self.unpaired += 1
            if depth_msg is not None:
                self._warn_once('info', f"no camera_info received on '{self.info_topic}': "
                                'publishing 2D outputs only until it comes')
            return None
        try:
            depth, intrinsics = depth_to_array(depth_msg), camera_info_to_intrinsics(info)
        except ValueError as error:
            raise BadFrameError(f"depth on '{self.depth_topic}': {error}") from None
        self.paired += 1
        frame_id, rotation, translation = self._target(image_msg, params.target_frame)
        return DepthFrame(depth=depth, intrinsics=intrinsics, options=params.depth_options(),
                          frame_id=frame_id, rotation=rotation, translation=translation)

    def _target(self, image_msg, target_frame: str) -> Tuple[str, Any, Any]:
        """Return ``(frame_id, rotation, translation)`` into ``target_frame``; '' if none."""
        if not target_frame or target_frame == image_msg.header.frame_id:
            return '', None, None
        if self._tf is None:
            self._tf = TfAdapter(self._node)
        if not self._tf.available:
            self._warn_once('tf', f"target_frame '{target_frame}' needs tf2_ros, which is not "
                            'installed: 3D outputs stay in the camera frame')
            return '', None, None
        found = self._tf.lookup(target_frame, image_msg.header)
        if found is None:
            return '', None, None
        return (target_frame, *found)

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self._node.get_logger().warning(text)

    def diagnostics(self) -> dict:
        """Return the depth values of ``/diagnostics``."""
        return {'depth_topic': self.depth_topic, 'depth_frames_received': self.buffer.received,
                'depth_paired_frames': self.paired, 'depth_unpaired_frames': self.unpaired,
                'camera_info_received': self._info is not None}

    def destroy(self) -> None:
        """Unsubscribe and drop the frames held."""
        for subscription in self._subscriptions:
            self._node.destroy_subscription(subscription)
        self._subscriptions = []
        self.buffer.clear()


class TfAdapter:
    """A thin tf2 lookup: the rotation and translation of the camera frame in a target frame.

    tf2_ros is optional (a ROS install has it; the PyPI wheels do not): without it
    :attr:`available` is False. The math of moving instances is the core's
    (:func:`yolact_ros.geometry.transform_instances`).
    """

    def __init__(self, node) -> None:
        self._node = node
        try:
            from tf2_ros import Buffer, TransformListener
        except ImportError:
            self.available = False
            return
        self.available = True
        self._buffer = Buffer()
        self._listener = TransformListener(self._buffer, node)

    def lookup(self, target_frame: str, header) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """Return ``(rotation [3, 3], translation [3])`` at the header's stamp, or None."""
        from rclpy.time import Time

        try:
            transform = self._buffer.lookup_transform(
                target_frame, header.frame_id, Time.from_msg(header.stamp)).transform
        except Exception as error:  # tf2's LookupException, ExtrapolationException, ...
            self._node.get_logger().warning(
                f"no transform from '{header.frame_id}' to '{target_frame}': {error}",
                throttle_duration_sec=5.0)
            return None
        q, t = transform.rotation, transform.translation
        return quaternion_matrix(q.x, q.y, q.z, q.w), np.array([t.x, t.y, t.z])
