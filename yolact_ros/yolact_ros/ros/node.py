"""``segment_node``: the rclpy lifecycle node that runs YOLACT on a camera stream.

Thin by design: conversions, message building, parameter validation and frame scheduling live in
the rclpy-free modules beside this one. Lifecycle: configure loads the model and creates the
publishers; activate warms up, starts the worker thread and subscribes; deactivate unsubscribes,
stops the worker and frees GPU memory; cleanup drops the model and publishers.

The subscription callback only stores the newest frame (:class:`FrameSlot`); one worker thread
converts it, runs the model and publishes, so the node never falls behind the camera. The frame
itself goes through :func:`~yolact_ros.ros.frame_pipeline.process_frame`, as in ``yolact bag``;
with ``tracking.enabled``, the worker's :class:`~yolact_ros.tracking.StreamTracker` (new at
each activate) gives the detections track ids at the image stamps and the overlay trails; with
``depth.enabled`` each frame is paired with depth (:mod:`yolact_ros.ros.node_depth`) for the 3D
outputs. With ``cameras``, each camera has its slot, tracker, depth and topics under its name;
the worker segments the newest frame of every camera in one batch (:mod:`yolact_ros.ros.cameras`).
The frame loop and monitoring are in :mod:`yolact_ros.ros.node_frames`.
A frame that fails is logged (one line, rate-limited), counted and reported as ERROR in
``/diagnostics``; the worker goes on. Should the worker thread die, the node leaves ACTIVE
through error processing. Per-frame outputs are lifecycle publishers: silent unless active.
"""

from dataclasses import replace
import os
import signal
import sys
import threading
from typing import Any, Callable, List, Optional

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.exceptions import ParameterUninitializedException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle.node import LifecycleNodeMixin
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, PointCloud2
from vision_msgs.msg import Detection2DArray, Detection3DArray, LabelInfo
from visualization_msgs.msg import MarkerArray
from yolact_ros_msgs.msg import InstanceArray

from yolact_ros.ros.cameras import camera_topic, CameraStream, FrameBatcher
from yolact_ros.ros.frame_pipeline import FRAME_TOPICS, TOPICS_3D
from yolact_ros.ros.messages import build_header, build_label_info, ros_message_types
from yolact_ros.ros.node_frames import FrameLoop
from yolact_ros.ros.node_support import (
    LATCHED_QOS, logged_transition, OUTPUT_QOS, parameter_descriptor, teardown)
from yolact_ros.ros.params import (
    check_classes, load_segmenter, NodeParams, PARAM_SPECS, SPECS)

SUCCESS = TransitionCallbackReturn.SUCCESS
FAILURE = TransitionCallbackReturn.FAILURE
ERROR = TransitionCallbackReturn.ERROR

# Parameters whose change reaches the Segmenter's postprocessing at once.
_POSTPROCESS_PARAMS = {'score_threshold', 'nms_iou', 'top_k', 'max_detections', 'mask_threshold',
                       'classes'}

SegmenterFactory = Callable[[NodeParams], Any]

# Publishers of the node as a whole (not per frame, not per camera).
_NODE_TOPICS = ('label_info', 'diagnostics')


class SegmentNode(FrameLoop, LifecycleNodeMixin, Node):
    """Lifecycle node: ``image`` in, instances, detections, masks and diagnostics out.

    Callback groups: the lifecycle services are reentrant, so ``get_state`` answers while a
    transition (a model load) runs; transitions themselves run one at a time. Parameter
    services, the subscription and the timers share the default group; the autostart timer has
    its own, so a multi-threaded executor serves everything else while the model loads.
    """

    def __init__(self, node_name: str = 'segment_node', *,
                 segmenter_factory: SegmenterFactory = load_segmenter, **kwargs) -> None:
        Node.__init__(self, node_name, **kwargs)
        LifecycleNodeMixin.__init__(self, callback_group=ReentrantCallbackGroup())
        self._transition_lock = threading.Lock()
        self._lock = threading.Lock()  # the Segmenter and its postprocessing vs parameters
        self._factory = segmenter_factory
        self._types = ros_message_types()
        for spec in PARAM_SPECS:
            default = Parameter.Type.STRING_ARRAY if spec.default == () else spec.default
            self.declare_parameter(spec.name, default, parameter_descriptor(spec))
        self._params = NodeParams.from_values(self._read_parameters())
        self.add_on_set_parameters_callback(self._on_set_parameters)

        # One stream per camera (one unnamed without ``cameras``), new at each activate.
        self._streams: List[CameraStream] = [CameraStream('')]
        self._batcher = FrameBatcher([self._streams[0].slot])
        self._segmenter: Optional[Any] = None
        self._applied: Optional[NodeParams] = None  # the values configure used
        self._outputs: dict = {}
        self._activity_timers: List[Any] = []
        self._input_timer = None
        self._autostart_timer = None
        self._worker: Optional[threading.Thread] = None
        self._worker_failure = ''
        self._worker_died = self.create_guard_condition(self._on_worker_died)
        self._stop = threading.Event()

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
        with self._lock:
            segmenter = self._segmenter
            class_names = segmenter.class_names if segmenter is not None else None
            try:
                updated = self._params.with_values(values, class_names)
            except ValueError as error:
                return SetParametersResult(successful=False, reason=str(error))
            if segmenter is not None and _POSTPROCESS_PARAMS & set(values):
                segmenter.postprocess = updated.postprocess(class_names)
            self._params = updated
        deferred = [f'{name} {SPECS[name].applies}' for name in sorted(values)
                    if not SPECS[name].runtime]
        if deferred:
            self.get_logger().info(f'new value applies later: {"; ".join(deferred)}')
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ lifecycle

    def _LifecycleNodeMixin__change_state(self, transition_id: int) -> TransitionCallbackReturn:
        """Run one transition at a time: the services and ``trigger_*`` all come through here.

        Overrides rclpy's private ``__change_state``, because the lifecycle services are
        reentrant (``get_state`` must answer during a transition). A transition the current
        state does not allow fails instead of raising out of the executor.
        """
        with self._transition_lock:
            try:
                return LifecycleNodeMixin._LifecycleNodeMixin__change_state(self, transition_id)
            except _rclpy.RCLError as error:
                if self.context.ok():  # else shutting down: nothing to report
                    self.get_logger().warning(f'transition {transition_id} refused: {error}')
                return FAILURE

    @logged_transition
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model, create the publishers and publish ``label_info``."""
        params = self._params
        weights = self._weights_file(params.weights)
        if weights is None:
            return FAILURE
        from yolact_ros.runtime import set_threads

        threads = set_threads(params.threads)
        try:
            segmenter = self._factory(replace(params, weights=weights))
        except Exception as error:  # any loader failure fails the transition
            self.get_logger().error(f"configure failed: cannot load weights '{weights}' "
                                    f'(device {params.device}, half {params.half}): {error}')
            return FAILURE
        if not self.context.ok():  # Ctrl-C while the model loaded
            segmenter.release()
            return FAILURE
        if not self._adopt(segmenter):
            return FAILURE
        self._applied = params
        self._outputs = self._create_outputs()
        header = build_header(self._types, self.get_clock().now().nanoseconds)
        self._outputs['label_info'].publish(build_label_info(
            self._types, header, segmenter.class_names, params.score_threshold))
        self.get_logger().info(
            f"configured: weights '{weights}' on {segmenter.device}, "
            f'{len(segmenter.class_names)} classes, {threads} threads')
        return SUCCESS

    def _weights_file(self, weights: str) -> Optional[str]:
        """Return the weights file to load (empty: the bundled demo model); None if missing."""
        if not weights:
            from yolact_ros.weights import demo_weights, WeightsError

            try:
                weights = str(demo_weights())
            except WeightsError as error:
                self.get_logger().error(f'configure failed: weights is empty and {error}')
                return None
            self.get_logger().info(f"weights is empty: loading the bundled demo model '{weights}'")
        if not os.path.isfile(weights):
            self.get_logger().error(f"configure failed: weights file '{weights}' not found")
            return None
        return weights

    def _adopt(self, segmenter: Any) -> bool:
        """Check the allow-list against the model and apply the parameters in force now."""
        with self._lock:  # parameters may have changed while the model loaded
            params = self._params
            reason = check_classes(params.classes, segmenter.class_names)
            if reason is None:
                segmenter.postprocess = params.postprocess(segmenter.class_names)
                self._segmenter = segmenter
        if reason is not None:
            segmenter.release()
            self.get_logger().error(f'configure failed: parameter classes: {reason}')
        return reason is None

    def _create_outputs(self) -> dict:
        """Create the publishers: per-frame topics are lifecycle ones (silent unless active)."""
        types = {'instances': InstanceArray, 'detections': Detection2DArray,
                 'instance_mask': Image, 'overlay': Image, 'detections_3d': Detection3DArray,
                 'markers': MarkerArray, 'points': PointCloud2}
        topics = [topic for topic in FRAME_TOPICS
                  if self._applied.depth_enabled or topic not in TOPICS_3D]
        outputs = {camera_topic(camera, topic): self.create_lifecycle_publisher(
            types[topic], camera_topic(camera, topic), OUTPUT_QOS)
            for camera in self._applied.cameras or ('',) for topic in topics}
        outputs['label_info'] = self.create_publisher(LabelInfo, 'label_info', LATCHED_QOS)
        outputs['diagnostics'] = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        return outputs

    @logged_transition
    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Warm the model up, start the worker and subscribe to each camera's input."""
        try:
            self._segmenter.warmup()
        except Exception as error:  # e.g. CUDA out of memory
            self.get_logger().error(f'activate failed: warm-up raised {error}')
            return FAILURE
        params = self._applied
        self._stop.clear()
        # Fresh streams per activation: counters (diagnostics) are since activation, and
        # tracks do not survive a pause of the stream.
        self._start_streams(params)
        self._worker_failure = ''
        self._worker = threading.Thread(target=self._work, name='segment_worker', daemon=True)
        self._worker.start()
        self._input_timer = self.create_timer(self._params.no_image_timeout, self._check_input)
        self._activity_timers = [self.create_timer(1.0, self._publish_diagnostics),
                                 self._input_timer]
        topics = ', '.join(f"'{stream.input_topic}'" for stream in self._streams)
        self.get_logger().info(
            f'active: subscribed to {topics} ({params.qos_reliability}, depth {params.qos_depth})')
        return super().on_activate(state)

    @logged_transition
    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe, stop the worker and free GPU memory; after a worker death: ERROR."""
        failure = self._worker_failure
        self._stop_activity()
        if self._segmenter is not None:
            self._segmenter.release()
        if failure:  # on_error then brings the node to unconfigured
            return ERROR
        return super().on_deactivate(state)

    @logged_transition
    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Drop the model and the publishers."""
        self._drop_configuration()
        return SUCCESS

    @logged_transition
    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop everything, from whichever state."""
        self._stop_activity()
        self._drop_configuration()
        return SUCCESS

    @logged_transition
    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Recover to unconfigured after a failed transition or a dead worker."""
        self._stop_activity()
        self._drop_configuration()
        return SUCCESS

    def _stop_activity(self) -> None:
        for timer in self._activity_timers:
            self.destroy_timer(timer)
        self._activity_timers, self._input_timer = [], None
        self._stop_streams()
        self._stop.set()
        if self._worker is not None:
            self._worker.join()
            self._worker = None
        for stream in self._streams:  # after the worker, which reads their depth
            if stream.depth is not None:
                stream.depth.destroy()
                stream.depth = None

    def _drop_configuration(self) -> None:
        for topic, publisher in self._outputs.items():
            if topic in _NODE_TOPICS:
                self.destroy_publisher(publisher)
            else:
                self.destroy_lifecycle_publisher(publisher)
        self._outputs = {}
        with self._lock:
            segmenter, self._segmenter = self._segmenter, None
        if segmenter is not None:
            segmenter.release()
        self._applied = None

    def destroy_node(self) -> None:
        """Wait for a running transition (a model load), stop the worker, destroy the node."""
        with self._transition_lock:
            self._stop_activity()
            super().destroy_node()

    def start(self) -> bool:
        """Configure and activate (what ``autostart`` does); return whether both succeeded."""
        if self.trigger_configure() != SUCCESS:
            return False
        return self.trigger_activate() == SUCCESS

    def schedule_autostart(self) -> None:
        """Run :meth:`start` from the executor, once, in a callback group of its own.

        The model loads while the executor's other threads answer the lifecycle and parameter
        services; main() does not block before spinning.
        """
        def autostart() -> None:
            self._autostart_timer.cancel()
            if not self.start() and self.context.ok():  # not when Ctrl-C interrupted it
                self.get_logger().error('autostart failed; the node stays up for a lifecycle '
                                        'manager to retry')

        self._autostart_timer = self.create_timer(
            0.0, autostart, callback_group=MutuallyExclusiveCallbackGroup())


def main(args: Optional[List[str]] = None) -> None:
    """Run ``segment_node`` (``ros2 run yolact_ros segment_node --ros-args ...``).

    Spins at once (services answer while autostart loads the model); Ctrl-C exits 0 without a
    traceback, also when a second SIGINT (the terminal's and ``ros2 launch``'s) arrives during
    the teardown.
    """
    node = executor = None
    code = 0
    try:
        rclpy.init(args=args)
        node = SegmentNode()
        executor = MultiThreadedExecutor(num_threads=4)
        executor.add_node(node)
        if node.params.autostart:
            node.schedule_autostart()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ValueError as error:  # invalid parameter values at start
        print(f'segment_node: {error}', file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the teardown is not interrupted
        teardown(executor, node)
    if code:
        sys.exit(code)


if __name__ == '__main__':
    main()
