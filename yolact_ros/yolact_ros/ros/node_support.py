"""Helpers of ``segment_node``: parameter descriptors, QoS profiles, log texts, teardown.

Kept out of :mod:`yolact_ros.ros.node` so the node reads as its lifecycle and frame loop; these
functions need the ROS message classes but no running node.
"""

import functools
import traceback
from typing import Any, Callable, Iterable, Optional

from rcl_interfaces.msg import (
    FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType)
import rclpy
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import uninstall_signal_handlers

from yolact_ros.ros.params import NodeParams, ParamSpec

OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                        reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)
LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)


def parameter_descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """Return the ROS descriptor (type, inclusive range, description) of one parameter spec."""
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


def input_qos(params: NodeParams) -> QoSProfile:
    """Return the input subscription QoS: sensor-data (best effort) unless reliable is asked."""
    reliability = (ReliabilityPolicy.RELIABLE if params.qos_reliability == 'reliable'
                   else ReliabilityPolicy.BEST_EFFORT)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=params.qos_depth,
                      reliability=reliability, durability=DurabilityPolicy.VOLATILE)


def _qos_name(policy: Any) -> str:
    return getattr(policy, 'name', str(policy)).lower()


def describe_publishers(infos: Iterable[Any], subscribed_reliability: str) -> str:
    """Describe the publishers of the input topic (``TopicEndpointInfo``) for the no-image warning.

    Names each publisher with its type and QoS, and says when a best-effort publisher cannot
    reach a reliable subscription.
    """
    infos = list(infos)
    if not infos:
        return 'no publishers on it; check the topic name or remapping'
    found = 'publishers: ' + '; '.join(
        f'{info.node_namespace.rstrip("/")}/{info.node_name} ({info.topic_type}, '
        f'reliability {_qos_name(info.qos_profile.reliability)}, durability '
        f'{_qos_name(info.qos_profile.durability)})' for info in infos)
    if subscribed_reliability == 'reliable' and any(
            info.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for info in infos):
        found += ('; a best_effort publisher cannot reach this reliable subscription: '
                  'set qos_reliability to best_effort')
    return found


def frame_stamp(msg: Any) -> str:
    """Return an image message's header stamp as ``sec.nanosec`` (``?`` if it has none)."""
    stamp = getattr(getattr(msg, 'header', None), 'stamp', None)
    if stamp is None:
        return '?'
    return f'{stamp.sec}.{stamp.nanosec:09d}'


def one_line(error: BaseException) -> str:
    """Return ``Type: message`` of an exception on one line (the frame error log and status)."""
    text = ' '.join(str(error).split())
    return f'{type(error).__name__}: {text}' if text else type(error).__name__


def logged_transition(callback: Callable) -> Callable:
    """Log a lifecycle callback's exception (rclpy turns it into ERROR without a word)."""
    @functools.wraps(callback)
    def wrapper(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            return callback(self, state)
        except Exception:
            self.get_logger().error(f'{callback.__name__} raised:\n{traceback.format_exc()}')
            return TransitionCallbackReturn.ERROR
    return wrapper


def teardown(executor: Optional[Any], node: Optional[Any]) -> None:
    """Stop the executor, destroy the node and shut rclpy down, whatever interrupts it."""
    try:
        # First stop rclpy's signal thread (it joins): on Ctrl-C it triggers the executor's
        # SIGINT guard condition, which executor.shutdown() frees, and a trigger racing the
        # free crashed the node (SIGSEGV in rcl_trigger_guard_condition; 4 Ctrl-C in 30 on busy
        # cores).
        uninstall_signal_handlers()
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
    except KeyboardInterrupt:  # a SIGINT that arrived before main() ignored them
        pass
    finally:
        rclpy.try_shutdown()
