"""The installed ``segment_node`` executable, started as ``ros2 run`` / ``ros2 launch`` would."""

import os
from pathlib import Path
import signal
import subprocess
import time

import _ros_gate  # noqa: F401, I100 - skips this module where rclpy cannot run
from ament_index_python.packages import get_package_prefix
from lifecycle_msgs.msg import State
from lifecycle_msgs.srv import GetState
import pytest
from rcl_interfaces.srv import GetParameters
import yaml

PACKAGE = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures('ros_context')


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


def settled_state(graph, node_name: str, timeout: float = 120.0) -> int:
    """Return the node's lifecycle state once no transition runs (autostart runs in the back)."""
    deadline = time.monotonic() + timeout
    while True:
        state = call(graph, GetState, f'{node_name}/get_state', GetState.Request())
        if state.current_state.id < State.TRANSITION_STATE_CONFIGURING:
            return state.current_state.id
        assert time.monotonic() < deadline, f'{node_name} still in {state.current_state.label}'
        time.sleep(0.1)


def test_executable_reads_params_file_and_stops_cleanly_on_sigint(graph, executable, tmp_path):
    missing = tmp_path / 'not_there.safetensors'
    params = tmp_path / 'params.yaml'
    params.write_text(yaml.safe_dump({'/**/segment_node': {'ros__parameters': {
        'weights': str(missing), 'score_threshold': 0.25, 'qos_reliability': 'reliable',
        'classes': ['person', 'car']}}}))
    process = Process([executable, '--ros-args', '--params-file', str(params),
                       '-r', '__ns:=/exe'], tmp_path / 'node.log')
    try:
        assert settled_state(graph, '/exe/segment_node') == State.PRIMARY_STATE_UNCONFIGURED
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


def test_services_answer_while_autostart_loads_the_model(graph, executable, tmp_path):
    """get_state and get_parameters answer at once (~1.5 s from the start), during configure."""
    get_state = graph.node.create_client(GetState, '/boot/segment_node/get_state')
    get_params = graph.node.create_client(GetParameters, '/boot/segment_node/get_parameters')
    started = time.monotonic()
    process = Process([executable, '--ros-args', '-r', '__ns:=/boot'], tmp_path / 'boot.log')
    try:
        graph.wait_for(get_state.service_is_ready, 'the get_state service', timeout=60.0)
        discovered = time.monotonic() - started
        future = get_state.call_async(GetState.Request())
        graph.wait_for(future.done, 'the get_state answer', timeout=60.0)
        answered = time.monotonic() - started
        first_state = future.result().current_state.id
        future = get_params.call_async(GetParameters.Request(names=['weights']))
        graph.wait_for(future.done, 'the get_parameters answer', timeout=60.0)
        assert future.result().values[0].string_value == ''
        assert first_state in (State.PRIMARY_STATE_UNCONFIGURED,
                               State.TRANSITION_STATE_CONFIGURING), process.output()
        # DDS discovery alone sometimes takes 3-4 s on a loaded 2-core machine; the node's
        # part is the answer once discovered (before this change: ACTIVE, after ~6 s).
        assert answered - discovered < 1.0, (
            f'get_state answered {answered:.2f} s after the start, '
            f'{answered - discovered:.2f} s after its discovery')
        deadline = time.monotonic() + 120.0
        while True:  # autostart still finishes
            future = get_state.call_async(GetState.Request())
            graph.wait_for(future.done, 'the get_state answer')
            if future.result().current_state.id == State.PRIMARY_STATE_ACTIVE:
                break
            assert time.monotonic() < deadline, process.output()
            time.sleep(0.1)
        assert 'bundled demo model' in process.output()
        assert process.interrupt() == 0, process.output()
    finally:
        process.kill()


@pytest.mark.parametrize('when,log_text', [
    ('loading', 'loading the bundled demo model'),  # SIGINT while autostart configures
    ('active', 'active: subscribed'),
])
def test_ctrl_c_exits_0_without_a_traceback(graph, executable, tmp_path, when, log_text):
    """Two SIGINTs (the terminal's and ros2 launch's) end the node cleanly."""
    process = Process([executable, '--ros-args', '-r', f'__ns:=/sigint_{when}'],
                      tmp_path / 'int.log')
    try:
        graph.wait_for(lambda: log_text in process.output(), f'the log line {log_text!r}',
                       timeout=120.0)
        process.popen.send_signal(signal.SIGINT)
        time.sleep(0.05)
        code = process.interrupt()
        output = process.output()
        assert code == 0, output
        assert 'Traceback' not in output and 'KeyboardInterrupt' not in output, output
    finally:
        process.kill()
