"""Parameter descriptors and validation agree: the ranges of PARAM_SPECS are the only truth."""

import math

import _ros_gate  # noqa: F401, I100 - skips this module where rclpy cannot run
import pytest
from rcl_interfaces.msg import ParameterType
import rclpy
from rclpy.parameter import Parameter

from yolact_ros.ros.node_support import parameter_descriptor
from yolact_ros.ros.params import field_name, NodeParams, PARAM_SPECS, SPECS, validate_param

RANGED = [spec for spec in PARAM_SPECS if spec.min_value is not None]


def descriptor_range(spec):
    """Return ``(low, high, outside_low, outside_high)`` of a spec's ROS descriptor."""
    descriptor = parameter_descriptor(spec)
    if descriptor.type == ParameterType.PARAMETER_INTEGER:
        (bounds,) = descriptor.integer_range
        return bounds.from_value, bounds.to_value, bounds.from_value - 1, bounds.to_value + 1
    assert descriptor.type == ParameterType.PARAMETER_DOUBLE, spec.name
    (bounds,) = descriptor.floating_point_range
    low, high = bounds.from_value, bounds.to_value
    # ROS accepts a double within 1e-9 of an end (rcl_interfaces' tolerance): step past it.
    return low, high, low - 1e-6, high + 1e-6


@pytest.mark.parametrize('spec', RANGED, ids=[spec.name for spec in RANGED])
def test_descriptor_ends_are_accepted_and_beyond_them_rejected(spec):
    low, high, below, above = descriptor_range(spec)
    assert (low, high) == (spec.min_value, spec.max_value)
    assert validate_param(spec.name, low) is None, spec.name
    assert validate_param(spec.name, high) is None, spec.name
    assert validate_param(spec.name, below) is not None, spec.name
    assert validate_param(spec.name, above) is not None, spec.name
    for value in (low, high):  # the Segmenter and the tracker take the ends too
        params = NodeParams.from_values({spec.name: value})
        params.postprocess()
        params.tracker_config()


def test_every_numeric_parameter_has_a_range_and_unranged_ones_have_none():
    for spec in PARAM_SPECS:
        numeric = isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool)
        assert numeric == (spec.min_value is not None), spec.name
        descriptor = parameter_descriptor(spec)
        assert bool(descriptor.integer_range or descriptor.floating_point_range) == numeric


@pytest.fixture(scope='module')
def node():
    from yolact_ros.ros.node import SegmentNode

    rclpy.init()
    node = SegmentNode(namespace='/descriptors',
                       parameter_overrides=[Parameter('autostart', value=False)])
    yield node
    node.destroy_node()
    rclpy.shutdown()


# Parameters checked together: the other end is moved out of the way while one is tested.
PARTNERS = {'depth.min_depth': ('depth.max_depth', 100.0),
            'depth.max_depth': ('depth.min_depth', 0.0)}


@pytest.mark.parametrize('spec', RANGED, ids=[spec.name for spec in RANGED])
def test_a_live_node_accepts_exactly_the_descriptor_range(node, spec):
    low, high, below, above = descriptor_range(spec)
    partner = PARTNERS.get(spec.name)
    if partner is not None:
        assert node.set_parameters([Parameter(partner[0], value=partner[1])])[0].successful
    for value, accepted in ((low, True), (high, True), (below, False), (above, False)):
        (result,) = node.set_parameters([Parameter(spec.name, value=value)])
        assert result.successful == accepted, (spec.name, value, result.reason)
    node.set_parameters([Parameter(spec.name, value=spec.default)])
    if partner is not None:
        node.set_parameters([Parameter(partner[0], value=SPECS[partner[0]].default)])
    assert not math.isnan(float(getattr(node.params, field_name(spec.name))))
