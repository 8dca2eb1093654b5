"""The frame loop and monitoring of ``segment_node``, split from :mod:`yolact_ros.ros.node`.

:class:`FrameLoop` is a mixin of :class:`~yolact_ros.ros.node.SegmentNode`: its methods use the
node's attributes (the frame slot, publishers, parameters, counters) and run on the worker
thread (``_work``) or the node's timers (``_check_input``, ``_publish_diagnostics``). The
subscription callback only stores the newest frame; the worker takes it, pairs it with depth
when ``depth.enabled``, runs :func:`~yolact_ros.ros.frame_pipeline.process_frame` and publishes.
"""

import time

import numpy as np

from yolact_ros.ros.frame_pipeline import (
    BadFrameError, FRAME_TOPICS, FrameResult, InferenceError, OutputOptions, process_frame)
from yolact_ros.ros.messages import build_diagnostics, build_header
from yolact_ros.ros.node_support import describe_publishers, frame_stamp, one_line
from yolact_ros.structures import Detections


class FrameLoop:
    """Per-frame methods of ``SegmentNode`` (a mixin over the node's attributes)."""

    # ------------------------------------------------------------------ frames

    def _on_image(self, msg) -> None:
        self._slot.put(msg)
        self._input_rate.tick()

    def _work(self) -> None:
        """Serve frames until stopped; if anything escapes, report the death and leave ACTIVE."""
        try:
            while not self._stop.is_set():
                taken = self._slot.take(timeout=0.5)
                if taken is None:
                    continue
                msg, dropped = taken
                self._counters.unreported_drops += dropped
                self._serve(msg)
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

    def _serve(self, msg) -> None:
        """Process one frame; any failure is logged (one line), counted and reported."""
        counters = self._counters
        try:
            self._process(msg)
        except BadFrameError as error:
            counters.bad_frames += 1
            self.get_logger().warning(f"skipping bad frame on '{self._input_topic}': {error}",
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

    def _process(self, msg) -> None:
        params = self._params
        pubs = self._outputs
        now = time.monotonic()
        overlay_due = (params.publish_overlay and pubs['overlay'].get_subscription_count() > 0
                       and now - self._last_overlay >= 1.0 / params.overlay_max_rate)
        # An output nobody subscribes to is not built (a recorder subscribes too).
        wanted = {topic: publisher.get_subscription_count() > 0
                  for topic, publisher in pubs.items() if topic in FRAME_TOPICS}
        options = OutputOptions.from_params(
            params, overlay=overlay_due, instance_mask=wanted['instance_mask'],
            instances=wanted['instances'], detections=wanted['detections'],
            detections_3d=wanted.get('detections_3d', False),
            markers=wanted.get('markers', False), points=wanted.get('points', False))
        depth_inputs = self._depth
        depth = depth_inputs.frame_for(msg, params) if depth_inputs is not None else None
        result = process_frame(msg, self._segmenter, self._types, options,
                               dropped_frames=self._counters.unreported_drops,
                               now_ns=lambda: self.get_clock().now().nanoseconds,
                               tracker=self._track if self._tracker is not None else None,
                               trails=self._tracker.trails if self._tracker is not None else None,
                               depth=depth)
        if 'overlay' in result.messages:
            self._last_overlay = now
        self._publish(result)

    def _track(self, detections: Detections, stamp_s: float) -> np.ndarray:
        """Return the track ids of a frame's detections (the worker's tracker, at its stamp).

        The tracker sees the published detections, all above ``score_threshold``: its second
        stage works on those between ``score_threshold`` and ``tracking.high_threshold``.
        Runtime changes of the ``tracking.*`` thresholds apply from this frame on; a stamp
        earlier than the last (a replayed bag) starts the tracks afresh.
        """
        stream = self._tracker
        last_stamp = stream.last_stamp
        config = self._params.tracker_config()
        if stream.tracker.config != config:
            stream.tracker.config = config
        track_ids = stream(detections, stamp_s)
        if stream.restarted:
            self.get_logger().warning(
                f'image stamp went back ({stamp_s:.3f} s after {last_stamp:.3f} s): '
                'tracks restart', throttle_duration_sec=5.0)
        self._live_tracks = len(stream.tracker.tracks)
        return track_ids

    def _publish(self, result: FrameResult) -> None:
        for topic, message in result.messages.items():
            self._outputs[topic].publish(message)
        self._counters.unreported_drops = 0
        self._counters.processed += 1
        self._output_rate.tick()
        self._latency.add(result.latency_ms)

    # ------------------------------------------------------------------ monitoring

    def _check_input(self) -> None:
        """Warn once if nothing arrived: name the topic and the QoS of its publishers."""
        if self._input_timer is not None:
            self._input_timer.cancel()
        if self._subscription is None or self._slot.received > 0:
            return
        topic, reliability = self._input_topic, self._applied.qos_reliability
        found = describe_publishers(self.get_publishers_info_by_topic(topic), reliability)
        self.get_logger().warning(
            f"no image received on '{topic}' within {self._params.no_image_timeout:g} s "
            f'(subscribed {reliability}); {found}')

    def _publish_diagnostics(self) -> None:
        publisher = self._outputs.get('diagnostics')
        if publisher is None:
            return
        counters = self._counters
        level, message = counters.status(self._slot.received)
        segmenter = self._segmenter
        device = str(segmenter.device) if segmenter is not None else 'none'
        values = {
            'input_topic': self._input_topic,
            'input_rate_hz': self._input_rate.rate(),
            'output_rate_hz': self._output_rate.rate(),
            'latency_p50_ms': self._latency.percentile(50),
            'latency_p95_ms': self._latency.percentile(95),
            'frames_received': self._slot.received,
            'frames_processed': counters.processed,
            'dropped_frames': self._slot.dropped,
            'bad_frames': counters.bad_frames,
            'frame_errors': counters.frame_errors,
            'inference_errors': counters.inference_errors,
            'device': device,
            'live_tracks': self._live_tracks if self._tracker is not None else None,
        }
        if self._depth is not None:
            values.update(self._depth.diagnostics())
        header = build_header(self._types, self.get_clock().now().nanoseconds)
        publisher.publish(build_diagnostics(
            self._types, header, name=f'{self.get_name()}: segmentation', hardware_id=device,
            level=level, message=message, values=values))
