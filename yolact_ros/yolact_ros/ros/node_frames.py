"""The frame loop and monitoring of ``segment_node``, split from :mod:`yolact_ros.ros.node`.

:class:`FrameLoop` is a mixin of :class:`~yolact_ros.ros.node.SegmentNode`: its methods use the
node's attributes (the camera streams, publishers, parameters) and run on the worker thread
(``_work``) or the node's timers (``_check_input``, ``_publish_diagnostics``). Each camera's
subscription callback only stores its newest frame (:mod:`yolact_ros.ros.cameras`); the worker
takes the newest frame of every camera at once, segments them in one batch, and per camera pairs
the frame with that camera's depth when ``depth.enabled``, builds its messages with
:func:`~yolact_ros.ros.frame_pipeline.process_frame` and publishes them under its name.
"""

import functools
import time
from typing import Any, Dict, List, Tuple, Union

import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from yolact_ros.ros.cameras import camera_topic, CameraStream, FrameBatcher
from yolact_ros.ros.frame_pipeline import (
    BadFrameError, FRAME_TOPICS, FrameResult, InferenceError, OutputOptions, process_frame,
    segment_frames, SegmentedFrame)
from yolact_ros.ros.frame_slot import FrameSlot
from yolact_ros.ros.messages import build_diagnostics, build_header
from yolact_ros.ros.node_depth import DepthInputs
from yolact_ros.ros.node_support import describe_publishers, frame_stamp, input_qos, one_line
from yolact_ros.ros.params import NodeParams
from yolact_ros.ros.stats import FrameCounters
from yolact_ros.structures import Detections
from yolact_ros.tracking import StreamTracker


class FrameLoop:
    """Per-frame methods of ``SegmentNode`` (a mixin over the node's attributes)."""

    @property
    def _slot(self) -> FrameSlot:
        """The first camera's frame slot (the only one without ``cameras``)."""
        return self._streams[0].slot

    @property
    def _counters(self) -> FrameCounters:
        """The first camera's frame counters (the only ones without ``cameras``)."""
        return self._streams[0].counters

    # ------------------------------------------------------------------ streams

    def _start_streams(self, params: NodeParams) -> None:
        """Make one stream per camera (fresh counters, tracker, depth) and subscribe to each."""
        names = params.cameras or ('',)
        tracking = self._params.tracking_enabled
        self._streams = [CameraStream(
            name, tracker=StreamTracker(self._params.tracker_config()) if tracking else None,
            outputs={topic: self._outputs[camera_topic(name, topic)] for topic in FRAME_TOPICS
                     if camera_topic(name, topic) in self._outputs}) for name in names]
        self._batcher = FrameBatcher([stream.slot for stream in self._streams])
        msg_type, topic = ((CompressedImage, 'image/compressed')
                           if params.image_transport == 'compressed' else (Image, 'image'))
        for index, stream in enumerate(self._streams):
            stream.subscription = self.create_subscription(
                msg_type, stream.topic(topic), functools.partial(self._on_image, index),
                input_qos(params))
            stream.input_topic = stream.subscription.topic_name
            if params.depth_enabled:
                stream.depth = DepthInputs(self, params, stream.name)

    def _stop_streams(self) -> None:
        """Unsubscribe every camera and wake the worker (pending frames count as dropped)."""
        for stream in self._streams:
            if stream.subscription is not None:
                self.destroy_subscription(stream.subscription)
                stream.subscription = None
        self._batcher.close()

    # ------------------------------------------------------------------ frames

    def _on_image(self, index: int, msg) -> None:
        self._batcher.put(index, msg)
        self._streams[index].input_rate.tick()

    def _work(self) -> None:
        """Serve frames until stopped; if anything escapes, report the death and leave ACTIVE."""
        try:
            while not self._stop.is_set():
                taken = self._batcher.take(timeout=0.5)
                if taken:
                    self._serve(taken)
        except BaseException as error:  # the thread ends here: never silently
            self._worker_failure = one_line(error)
            self._worker_died.trigger()

    def _on_worker_died(self) -> None:
        """Leave ACTIVE after the worker thread died: deactivate with ERROR -> unconfigured."""
        if not self._worker_failure:
            return
        self.get_logger().error(f'the frame worker died ({self._worker_failure}); no frames are '
                                'processed: leaving active through error processing')
        if self._worker is not None:  # still active
            self.trigger_deactivate()

    def _serve(self, taken: List[Tuple[int, Any, int]]) -> None:
        """Segment the newest frame of each camera in one batch, then publish each camera's."""
        streams = [self._streams[index] for index, _, _ in taken]
        for stream, (_, _, dropped) in zip(streams, taken):
            stream.counters.unreported_drops += dropped
        msgs = [msg for _, msg, _ in taken]
        for stream, msg, segmented in zip(streams, msgs, segment_frames(msgs, self._segmenter)):
            self._serve_frame(stream, msg, segmented)

    def _serve_frame(self, stream: CameraStream, msg,
                     segmented: Union[SegmentedFrame, Exception]) -> None:
        """Publish one camera's frame; any failure is logged (one line), counted and reported."""
        counters = stream.counters
        try:
            if isinstance(segmented, Exception):
                raise segmented
            self._process(stream, msg, segmented)
        except BadFrameError as error:
            counters.bad_frames += 1
            self.get_logger().warning(f"skipping bad frame on '{stream.input_topic}': {error}",
                                      throttle_duration_sec=5.0)
        except Exception as error:  # inference, message building, publishing: keep serving
            counters.frame_errors += 1
            if isinstance(error, InferenceError):
                counters.inference_errors += 1
                where, error = 'inference', error.__cause__ or error
            else:
                where = 'processing'
            counters.last_error = f'frame {frame_stamp(msg)}: {where} failed: {one_line(error)}'
            self.get_logger().error(counters.last_error, throttle_duration_sec=5.0)

    def _process(self, stream: CameraStream, msg, segmented: SegmentedFrame) -> None:
        params = self._params
        pubs = stream.outputs
        now = time.monotonic()
        overlay_due = (params.publish_overlay and pubs['overlay'].get_subscription_count() > 0
                       and now - stream.last_overlay >= 1.0 / params.overlay_max_rate)
        # An output nobody subscribes to is not built (a recorder subscribes too).
        wanted = {topic: publisher.get_subscription_count() > 0
                  for topic, publisher in pubs.items()}
        options = OutputOptions.from_params(
            params, overlay=overlay_due, instance_mask=wanted['instance_mask'],
            instances=wanted['instances'], detections=wanted['detections'],
            detections_3d=wanted.get('detections_3d', False),
            markers=wanted.get('markers', False), points=wanted.get('points', False))
        depth_inputs = stream.depth
        depth = depth_inputs.frame_for(msg, params) if depth_inputs is not None else None
        tracker = stream.tracker
        track = functools.partial(self._track, stream) if tracker is not None else None
        result = process_frame(msg, self._segmenter, self._types, options,
                               dropped_frames=stream.counters.unreported_drops,
                               now_ns=lambda: self.get_clock().now().nanoseconds,
                               tracker=track,
                               trails=tracker.trails if tracker is not None else None,
                               depth=depth, segmented=segmented)
        if 'overlay' in result.messages:
            stream.last_overlay = now
        self._publish(stream, result)

    def _track(self, stream: CameraStream, detections: Detections,
               stamp_s: float) -> np.ndarray:
        """Return the track ids of a frame's detections (its camera's tracker, at its stamp).

        The tracker sees the published detections, all above ``score_threshold``: its second
        stage works on those between ``score_threshold`` and ``tracking.high_threshold``.
        Runtime changes of the ``tracking.*`` thresholds apply from this frame on; a stamp
        earlier than the last (a replayed bag) starts the tracks afresh.
        """
        tracker = stream.tracker
        last_stamp = tracker.last_stamp
        config = self._params.tracker_config()
        if tracker.tracker.config != config:
            tracker.tracker.config = config
        track_ids = tracker(detections, stamp_s)
        if tracker.restarted:
            self.get_logger().warning(
                f'image stamp went back ({stamp_s:.3f} s after {last_stamp:.3f} s) on '
                f"'{stream.input_topic}': tracks restart", throttle_duration_sec=5.0)
        stream.live_tracks = len(tracker.tracker.tracks)
        return track_ids

    def _publish(self, stream: CameraStream, result: FrameResult) -> None:
        for topic, message in result.messages.items():
            stream.outputs[topic].publish(message)
        stream.counters.unreported_drops = 0
        stream.counters.processed += 1
        stream.output_rate.tick()
        stream.latency.add(result.latency_ms)

    # ------------------------------------------------------------------ monitoring

    def _check_input(self) -> None:
        """Warn once per silent camera: name the topic and the QoS of its publishers."""
        if self._input_timer is not None:
            self._input_timer.cancel()
        reliability = self._applied.qos_reliability
        for stream in self._streams:
            if stream.subscription is None or stream.slot.received > 0:
                continue
            topic = stream.input_topic
            found = describe_publishers(self.get_publishers_info_by_topic(topic), reliability)
            self.get_logger().warning(
                f"no image received on '{topic}' within {self._params.no_image_timeout:g} s "
                f'(subscribed {reliability}); {found}')

    def _publish_diagnostics(self) -> None:
        """Publish one status per camera (processed, dropped, latency, ...) on /diagnostics."""
        publisher = self._outputs.get('diagnostics')
        if publisher is None:
            return
        segmenter = self._segmenter
        device = str(segmenter.device) if segmenter is not None else 'none'
        for stream in self._streams:
            values = self._stream_values(stream, device)
            if stream.depth is not None:
                values.update(stream.depth.diagnostics())
            level, message = stream.counters.status(stream.slot.received)
            name = f'{self.get_name()}: segmentation' + (f' {stream.name}' if stream.name else '')
            header = build_header(self._types, self.get_clock().now().nanoseconds)
            publisher.publish(build_diagnostics(
                self._types, header, name=name, hardware_id=device, level=level,
                message=message, values=values))

    @staticmethod
    def _stream_values(stream: CameraStream, device: str) -> Dict[str, Any]:
        """Return one camera's diagnostics values."""
        counters = stream.counters
        return {
            'input_topic': stream.input_topic,
            'input_rate_hz': stream.input_rate.rate(),
            'output_rate_hz': stream.output_rate.rate(),
            'latency_p50_ms': stream.latency.percentile(50),
            'latency_p95_ms': stream.latency.percentile(95),
            'frames_received': stream.slot.received,
            'frames_processed': counters.processed,
            'dropped_frames': stream.slot.dropped,
            'bad_frames': counters.bad_frames,
            'frame_errors': counters.frame_errors,
            'inference_errors': counters.inference_errors,
            'device': device,
            'live_tracks': stream.live_tracks if stream.tracker is not None else None,
        }
