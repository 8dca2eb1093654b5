"""``segment_node``: the rclpy lifecycle node that runs YOLACT on a camera stream.

Thin by design: conversions, message building, parameter validation and frame scheduling live in
the rclpy-free modules beside this one. Lifecycle: configure loads the model and creates the
publishers; activate warms up, starts the worker thread and subscribes; deactivate unsubscribes,
stops the worker and frees GPU memory; cleanup drops the model and publishers.

The subscription callback only stores the newest frame (:class:`FrameSlot`); one worker thread
converts it, runs the model and publishes, so the node never falls behind the camera. The frame
itself goes through :func:`~yolact_ros.ros.frame_pipeline.process_frame`, as in ``yolact bag``.
"""

import functools
import os
import sys
import threading
import time
import traceback
from typing import Any, Callable, List, Optional

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import (
    FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType, SetParametersResult)
import rclpy
from rclpy.exceptions import ParameterUninitializedException
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy)
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2DArray, LabelInfo
from yolact_ros_msgs.msg import InstanceArray

from yolact_ros.ros.frame_pipeline import (
    BadFrameError, FrameResult, InferenceError, OutputOptions, process_frame)
from yolact_ros.ros.frame_slot import FrameSlot
from yolact_ros.ros.messages import (
    build_diagnostics, build_header, build_label_info, ros_message_types)
from yolact_ros.ros.params import (
    check_classes, load_segmenter, NodeParams, PARAM_SPECS, ParamSpec, SPECS)
from yolact_ros.ros.stats import LatencyWindow, RateMeter

SUCCESS = TransitionCallbackReturn.SUCCESS
FAILURE = TransitionCallbackReturn.FAILURE

# Parameters whose change reaches the Segmenter's postprocessing at once.
_POSTPROCESS_PARAMS = {'score_threshold', 'nms_iou', 'top_k', 'max_detections', 'mask_threshold'}

SegmenterFactory = Callable[[NodeParams], Any]


def parameter_descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """Return the ROS descriptor (type, range, description) of one parameter spec."""
    description = spec.description
    if not spec.runtime:
        description += f' Applied {spec.applies}.'
    descriptor = ParameterDescriptor(
        name=spec.name, description=description, additional_constraints=spec.constraints)
    default = spec.default
    if isinstance(default, bool):
        descriptor.type = ParameterType.PARAMETER_BOOL
    elif isinstance(default, int):
        descriptor.type = ParameterType.PARAMETER_INTEGER
        if spec.min_value is not None:
            descriptor.integer_range = [IntegerRange(
                from_value=int(spec.min_value), to_value=int(spec.max_value), step=1)]
    elif isinstance(default, float):
        descriptor.type = ParameterType.PARAMETER_DOUBLE
        if spec.min_value is not None:
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(spec.min_value), to_value=float(spec.max_value), step=0.0)]
    elif isinstance(default, str):
        descriptor.type = ParameterType.PARAMETER_STRING
    else:
        descriptor.type = ParameterType.PARAMETER_STRING_ARRAY
    return descriptor


def _qos_name(policy) -> str:
    return getattr(policy, 'name', str(policy)).lower()


def input_qos(params: NodeParams) -> QoSProfile:
    """Return the input subscription QoS: sensor-data (best effort) unless reliable is asked."""
    reliability = (ReliabilityPolicy.RELIABLE if params.qos_reliability == 'reliable'
                   else ReliabilityPolicy.BEST_EFFORT)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=params.qos_depth,
                      reliability=reliability, durability=DurabilityPolicy.VOLATILE)


OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                        reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)
LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _logged(callback: Callable) -> Callable:
    """Log a lifecycle callback's exception (rclpy turns it into ERROR without a word)."""
    @functools.wraps(callback)
    def wrapper(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            return callback(self, state)
        except Exception:
            self.get_logger().error(f'{callback.__name__} raised:\n{traceback.format_exc()}')
            return TransitionCallbackReturn.ERROR
    return wrapper


class SegmentNode(LifecycleNode):
    """Lifecycle node: ``image`` in, instances, detections, masks and diagnostics out."""

    def __init__(self, node_name: str = 'segment_node', *,
                 segmenter_factory: SegmenterFactory = load_segmenter, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._factory = segmenter_factory
        self._types = ros_message_types()
        for spec in PARAM_SPECS:
            default = Parameter.Type.STRING_ARRAY if spec.default == () else spec.default
            self.declare_parameter(spec.name, default, parameter_descriptor(spec))
        self._params = NodeParams.from_values(self._read_parameters())
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._slot: FrameSlot = FrameSlot()
        self._segmenter: Optional[Any] = None
        self._applied: Optional[NodeParams] = None  # the values configure used
        self._outputs: dict = {}
        self._subscription = None
        self._input_topic = ''
        self._activity_timers: List[Any] = []
        self._input_timer = None
        self._worker: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._input_rate = RateMeter()
        self._output_rate = RateMeter()
        self._latency = LatencyWindow()
        self._processed = 0
        self._bad_frames = 0
        self._errors = 0
        self._last_error = ''
        self._unreported_drops = 0
        self._last_overlay = -float('inf')

    # ------------------------------------------------------------------ parameters

    def _read_parameters(self) -> dict:
        values = {}
        for spec in PARAM_SPECS:
            try:
                values[spec.name] = self.get_parameter(spec.name).value
            except ParameterUninitializedException:
                values[spec.name] = spec.default
        return values

    @property
    def params(self) -> NodeParams:
        """Parameter values in force (runtime ones apply at once, others at configure)."""
        return self._params

    def _on_set_parameters(self, parameters: List[Parameter]) -> SetParametersResult:
        values = {p.name: p.value for p in parameters if p.name in SPECS}
        if not values:
            return SetParametersResult(successful=True)
        class_names = self._segmenter.class_names if self._segmenter is not None else None
        try:
            updated = self._params.with_values(values, class_names)
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
        if self._segmenter is not None and _POSTPROCESS_PARAMS & set(values):
            self._segmenter.postprocess = updated.postprocess()
        self._params = updated
        deferred = [f'{name} {SPECS[name].applies}' for name in sorted(values)
                    if not SPECS[name].runtime]
        if deferred:
            self.get_logger().info(f'new value applies later: {"; ".join(deferred)}')
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ lifecycle

    @_logged
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model, create the publishers and publish ``label_info``."""
        params = self._params
        weights = params.weights
        if not weights:
            self.get_logger().error('configure failed: parameter weights is empty; set it to '
                                    'a checkpoint file')
            return FAILURE
        if not os.path.isfile(weights):
            self.get_logger().error(f"configure failed: weights file '{weights}' not found")
            return FAILURE
        try:
            segmenter = self._factory(params)
        except Exception as error:  # any loader failure fails the transition
            self.get_logger().error(f"configure failed: cannot load weights '{weights}' "
                                    f'(device {params.device}, half {params.half}): {error}')
            return FAILURE
        reason = check_classes(params.classes, segmenter.class_names)
        if reason is not None:
            segmenter.release()
            self.get_logger().error(f'configure failed: parameter classes: {reason}')
            return FAILURE
        self._segmenter = segmenter
        self._applied = params
        self._outputs = {
            'instances': self.create_publisher(InstanceArray, 'instances', OUTPUT_QOS),
            'detections': self.create_publisher(Detection2DArray, 'detections', OUTPUT_QOS),
            'instance_mask': self.create_publisher(Image, 'instance_mask', OUTPUT_QOS),
            'overlay': self.create_publisher(Image, 'overlay', OUTPUT_QOS),
            'label_info': self.create_publisher(LabelInfo, 'label_info', LATCHED_QOS),
            'diagnostics': self.create_publisher(DiagnosticArray, '/diagnostics', 10),
        }
        header = build_header(self._types, self.get_clock().now().nanoseconds)
        self._outputs['label_info'].publish(build_label_info(
            self._types, header, segmenter.class_names, params.score_threshold))
        self.get_logger().info(
            f"configured: weights '{weights}' on {segmenter.device}, "
            f'{len(segmenter.class_names)} classes')
        return SUCCESS

    @_logged
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Warm the model up, start the worker and subscribe to the input."""
        try:
            self._segmenter.warmup()
        except Exception as error:  # e.g. CUDA out of memory
            self.get_logger().error(f'activate failed: warm-up raised {error}')
            return FAILURE
        params = self._applied
        self._stop.clear()
        self._slot = FrameSlot()  # counters (diagnostics) are since activation
        self._unreported_drops = self._processed = self._bad_frames = self._errors = 0
        self._last_error = ''
        self._worker = threading.Thread(target=self._work, name='segment_worker', daemon=True)
        self._worker.start()
        if params.image_transport == 'compressed':
            self._subscription = self.create_subscription(
                CompressedImage, 'image/compressed', self._on_image, input_qos(params))
        else:
            self._subscription = self.create_subscription(
                Image, 'image', self._on_image, input_qos(params))
        self._input_topic = self._subscription.topic_name
        self._input_timer = self.create_timer(self._params.no_image_timeout, self._check_input)
        self._activity_timers = [self.create_timer(1.0, self._publish_diagnostics),
                                 self._input_timer]
        self.get_logger().info(
            f"active: subscribed to '{self._input_topic}' "
            f'({params.qos_reliability}, depth {params.qos_depth})')
        return super().on_activate(state)

    @_logged
    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe, stop the worker and free GPU memory."""
        self._stop_activity()
        if self._segmenter is not None:
            self._segmenter.release()
        return super().on_deactivate(state)

    @_logged
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Drop the model and the publishers."""
        self._drop_configuration()
        return SUCCESS

    @_logged
    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop everything, from whichever state."""
        self._stop_activity()
        self._drop_configuration()
        return SUCCESS

    @_logged
    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Recover to unconfigured after a failed transition."""
        self._stop_activity()
        self._drop_configuration()
        return SUCCESS

    def _stop_activity(self) -> None:
        for timer in self._activity_timers:
            self.destroy_timer(timer)
        self._activity_timers, self._input_timer = [], None
        if self._subscription is not None:
            self.destroy_subscription(self._subscription)
            self._subscription = None
        self._stop.set()
        self._slot.close()
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    def _drop_configuration(self) -> None:
        for publisher in self._outputs.values():
            self.destroy_publisher(publisher)
        self._outputs = {}
        if self._segmenter is not None:
            self._segmenter.release()
        self._segmenter = None
        self._applied = None

    def destroy_node(self) -> None:
        """Stop the worker thread, then destroy the node."""
        self._stop_activity()
        super().destroy_node()

    def start(self) -> bool:
        """Configure and activate (what ``autostart`` does); return whether both succeeded."""
        if self.trigger_configure() != SUCCESS:
            return False
        return self.trigger_activate() == SUCCESS

    # ------------------------------------------------------------------ frames

    def _on_image(self, msg) -> None:
        self._slot.put(msg)
        self._input_rate.tick()

    def _work(self) -> None:
        while not self._stop.is_set():
            taken = self._slot.take(timeout=0.5)
            if taken is None:
                continue
            msg, dropped = taken
            self._unreported_drops += dropped
            self._process(msg)

    def _process(self, msg) -> None:
        params = self._params
        pubs = self._outputs
        now = time.monotonic()
        overlay_due = (params.publish_overlay and pubs['overlay'].get_subscription_count() > 0
                       and now - self._last_overlay >= 1.0 / params.overlay_max_rate)
        # An output nobody subscribes to is not built (a recorder subscribes too).
        options = OutputOptions.from_params(
            params, overlay=overlay_due,
            instance_mask=pubs['instance_mask'].get_subscription_count() > 0,
            instances=pubs['instances'].get_subscription_count() > 0,
            detections=pubs['detections'].get_subscription_count() > 0)
        try:
            result = process_frame(msg, self._segmenter, self._types, options,
                                   dropped_frames=self._unreported_drops,
                                   now_ns=lambda: self.get_clock().now().nanoseconds)
        except BadFrameError as error:
            self._bad_frames += 1
            self.get_logger().warning(f"skipping bad frame on '{self._input_topic}': {error}",
                                      throttle_duration_sec=5.0)
            return
        except InferenceError as error:  # keep serving; reported in diagnostics
            self._errors += 1
            self._last_error = str(error)
            self.get_logger().error(f'inference failed: {error}', throttle_duration_sec=5.0)
            return
        if 'overlay' in result.messages:
            self._last_overlay = now
        self._publish(result)

    def _publish(self, result: FrameResult) -> None:
        for topic, message in result.messages.items():
            self._outputs[topic].publish(message)
        self._unreported_drops = 0
        self._processed += 1
        self._output_rate.tick()
        self._latency.add(result.latency_ms)

    # ------------------------------------------------------------------ monitoring

    def _check_input(self) -> None:
        """Warn once if nothing arrived: name the topic and the QoS of its publishers."""
        if self._input_timer is not None:
            self._input_timer.cancel()
        if self._subscription is None or self._slot.received > 0:
            return
        topic = self._input_topic
        params = self._applied
        infos = self.get_publishers_info_by_topic(topic)
        if not infos:
            found = 'no publishers on it; check the topic name or remapping'
        else:
            found = 'publishers: ' + '; '.join(
                f'{info.node_namespace.rstrip("/")}/{info.node_name} ({info.topic_type}, '
                f'reliability {_qos_name(info.qos_profile.reliability)}, durability '
                f'{_qos_name(info.qos_profile.durability)})' for info in infos)
            if params.qos_reliability == 'reliable' and any(
                    info.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
                    for info in infos):
                found += ('; a best_effort publisher cannot reach this reliable subscription: '
                          'set qos_reliability to best_effort')
        self.get_logger().warning(
            f"no image received on '{topic}' within {self._params.no_image_timeout:g} s "
            f'(subscribed {params.qos_reliability}); {found}')

    def _publish_diagnostics(self) -> None:
        publisher = self._outputs.get('diagnostics')
        if publisher is None:
            return
        p50, p95 = self._latency.percentile(50), self._latency.percentile(95)
        level, message = 'OK', 'running'
        if self._slot.received == 0:
            level, message = 'WARN', 'no input images'
        if self._errors:
            level, message = 'ERROR', f'inference errors: {self._last_error}'
        segmenter = self._segmenter
        device = str(segmenter.device) if segmenter is not None else 'none'
        values = {
            'input_topic': self._input_topic,
            'input_rate_hz': self._input_rate.rate(),
            'output_rate_hz': self._output_rate.rate(),
            'latency_p50_ms': p50,
            'latency_p95_ms': p95,
            'frames_received': self._slot.received,
            'frames_processed': self._processed,
            'dropped_frames': self._slot.dropped,
            'bad_frames': self._bad_frames,
            'inference_errors': self._errors,
            'device': device,
        }
        header = build_header(self._types, self.get_clock().now().nanoseconds)
        publisher.publish(build_diagnostics(
            self._types, header, name=f'{self.get_name()}: segmentation', hardware_id=device,
            level=level, message=message, values=values))


def main(args: Optional[List[str]] = None) -> None:
    """Run ``segment_node`` (``ros2 run yolact_ros segment_node --ros-args ...``)."""
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        node = SegmentNode()
        if node.params.autostart and not node.start():
            node.get_logger().error('autostart failed; the node stays up for a lifecycle '
                                    'manager to retry')
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ValueError as error:  # invalid parameter values at start
        print(f'segment_node: {error}', file=sys.stderr)
        code = 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    if code:
        sys.exit(code)


if __name__ == '__main__':
    main()
