"""segment_node answers its services while a transition loads the model (in-process, rclpy)."""

import threading
import time

import _ros_gate  # noqa: F401, I100 - skips this module where rclpy cannot run
from lifecycle_msgs.msg import State
from lifecycle_msgs.srv import GetState
import rclpy
from rclpy.parameter import Parameter
from ros_harness import FakeSegmenter, Graph

from yolact_ros.ros.node import SegmentNode, SUCCESS


def test_services_answer_and_parameters_apply_while_configure_loads(fake_weights):
    rclpy.init()
    graph = Graph('concurrency_helper')
    loading, release = threading.Event(), threading.Event()
    segmenter = FakeSegmenter()

    def slow_factory(params):
        loading.set()
        assert release.wait(30.0)
        return segmenter

    node = SegmentNode(namespace='/slow', segmenter_factory=slow_factory, parameter_overrides=[
        Parameter('weights', value=str(fake_weights)), Parameter('autostart', value=False)])
    graph.add(node)
    try:
        node.schedule_autostart()  # runs in the executor, as in main()
        assert loading.wait(30.0)
        client = graph.node.create_client(GetState, '/slow/segment_node/get_state')
        graph.wait_for(client.service_is_ready, 'the get_state service')
        answer = graph.call(client, GetState.Request(), 'get_state during configure')
        assert answer.current_state.id == State.TRANSITION_STATE_CONFIGURING
        started = time.monotonic()
        assert node.set_parameters([Parameter('score_threshold', value=0.8)])[0].successful
        assert time.monotonic() - started < 5.0  # not waiting for the load
        release.set()
        graph.wait_for(lambda: node._state_machine.current_state[0]
                       == State.PRIMARY_STATE_ACTIVE, 'autostart to finish')
        assert segmenter.postprocess.score_threshold == 0.8  # set while loading, not lost
        assert node.trigger_configure() != SUCCESS  # not allowed from active: refused, no raise
    finally:
        release.set()
        graph.close()
        rclpy.shutdown()
