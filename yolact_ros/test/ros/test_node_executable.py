"""The installed ``segment_node`` executable, started as ``ros2 run`` / ``ros2 launch`` would."""

import os
from pathlib import Path
import signal
import subprocess
import time

import _ros_gate  # noqa: F401, I100 - skips this module where rclpy cannot run
from ament_index_python.packages import get_package_prefix, get_package_share_directory
import launch_standins
from lifecycle_msgs.msg import State
from lifecycle_msgs.srv import GetState
import numpy as np
import pytest
from rcl_interfaces.srv import GetParameters
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_harness import Graph
from sensor_msgs.msg import Image
import yaml
from yolact_ros_msgs.msg import InstanceArray

PACKAGE = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module', autouse=True)
def ros_context():
    rclpy.init()
    yield
    rclpy.shutdown()


@pytest.fixture
def graph():
    graph = Graph('executable_test_helper')
    yield graph
    graph.close()


@pytest.fixture(scope='module')
def executable() -> str:
    """Return the console script colcon installed in ``lib/yolact_ros`` (what ros2 run runs)."""
    path = Path(get_package_prefix('yolact_ros')) / 'lib' / 'yolact_ros' / 'segment_node'
    assert path.is_file() and os.access(path, os.X_OK), path
    return str(path)


class Process:
    """A node process whose output goes to a file, stopped with SIGINT like Ctrl-C."""

    def __init__(self, command, log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.popen = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log_path.read_text()

    def interrupt(self, timeout: float = 60.0) -> int:
        self.popen.send_signal(signal.SIGINT)
        try:
            return self.popen.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        self._log.close()


def call(graph, srv_type, name, request):
    client = graph.node.create_client(srv_type, name)
    graph.wait_for(lambda: client.service_is_ready(), f'service {name}', timeout=120.0)
    future = client.call_async(request)
    graph.wait_for(future.done, f'response of {name}')
    return future.result()


def test_executable_reads_params_file_and_stops_cleanly_on_sigint(graph, executable, tmp_path):
    missing = tmp_path / 'not_there.safetensors'
    params = tmp_path / 'params.yaml'
    params.write_text(yaml.safe_dump({'/**/segment_node': {'ros__parameters': {
        'weights': str(missing), 'score_threshold': 0.25, 'qos_reliability': 'reliable',
        'classes': ['person', 'car']}}}))
    process = Process([executable, '--ros-args', '--params-file', str(params),
                       '-r', '__ns:=/exe'], tmp_path / 'node.log')
    try:
        state = call(graph, GetState, '/exe/segment_node/get_state', GetState.Request())
        assert state.current_state.id == State.PRIMARY_STATE_UNCONFIGURED  # autostart failed
        values = call(graph, GetParameters, '/exe/segment_node/get_parameters',
                      GetParameters.Request(names=['score_threshold', 'qos_reliability',
                                                   'classes'])).values
        assert values[0].double_value == 0.25 and values[1].string_value == 'reliable'
        assert list(values[2].string_array_value) == ['person', 'car']
        graph.wait_for(lambda: f"weights file '{missing}' not found" in process.output(),
                       'the error naming the missing weights file')
        assert process.popen.poll() is None  # still up, for a lifecycle manager to retry
        assert process.interrupt() == 0, process.output()
    finally:
        process.kill()


def test_launch_file_command_runs_the_node_namespaced_and_remapped(
        graph, executable, tmp_path, monkeypatch, tiny_weights):
    share = get_package_share_directory('yolact_ros')
    launch_standins.install(monkeypatch, {'yolact_ros': share})
    (node,) = launch_standins.run_launch_file(
        Path(share) / 'launch' / 'segment.launch.py',
        {'weights': str(tiny_weights), 'device': 'cpu', 'namespace': 'robot1',
         'image': '/cam/image_raw'})
    command = launch_standins.command_line(node, executable)
    command += ['-p', 'qos_reliability:=reliable', '-p', 'score_threshold:=0.0']
    instances = graph.collect(InstanceArray, '/robot1/instances')
    publisher = graph.node.create_publisher(
        Image, '/cam/image_raw', QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
    process = Process(command, tmp_path / 'launched.log')
    try:
        # Model loading takes a while on a busy CPU: publish until the node answers.
        image = Image(height=48, width=64, encoding='rgb8', step=64 * 3,
                      data=np.random.default_rng(0).integers(0, 256, 48 * 64 * 3,
                                                             np.uint8).tobytes())
        image.header.frame_id = 'launched'
        deadline = time.monotonic() + 180.0
        while not instances:
            assert process.popen.poll() is None, process.output()
            assert time.monotonic() < deadline, process.output()
            image.header.stamp.sec += 1
            publisher.publish(image)
            time.sleep(0.2)
        out = instances[0]
        assert out.header.frame_id == 'launched' and (out.height, out.width) == (48, 64)
        assert out.header.stamp.sec >= 1
        names = graph.node.get_node_names_and_namespaces()
        assert ('segment_node', '/robot1') in names
        assert graph.node.count_subscribers('/cam/image_raw') == 1
        assert process.interrupt() == 0, process.output()
    finally:
        process.kill()
