"""The installed ``segment_node`` executable, started as ``ros2 run`` / ``ros2 launch`` would."""

import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import Optional, Tuple

import _ros_gate  # noqa: F401, I100 - skips this module where rclpy cannot run
from ament_index_python.packages import get_package_prefix
from lifecycle_msgs.msg import State
from lifecycle_msgs.srv import GetState
import pytest
from rcl_interfaces.srv import GetParameters
import yaml

LOADED = 'configured: weights'  # the node's log line once the model is loaded
LOADING = (State.PRIMARY_STATE_UNCONFIGURED, State.TRANSITION_STATE_CONFIGURING)


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
    return graph.call(client, request, f'response of {name}')


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


def state_while_loading(graph, node_name: str, process: Process) -> Tuple[Optional[int], str]:
    """Send get_state as soon as it is discovered; return (state, '') or (None, why not).

    None when the start shows nothing: discovery came after the load, or no answer within 1 s
    (a request sent just after discovery is sometimes lost; a node that blocks its services
    while it loads never answers in time either).
    """
    get_state = graph.node.create_client(GetState, f'{node_name}/get_state')
    graph.wait_for(get_state.service_is_ready, 'the get_state service', timeout=60.0)
    if LOADED in process.output():
        return None, 'discovered after the model had loaded'
    future = get_state.call_async(GetState.Request())
    sent = time.monotonic()
    while not future.done():
        if time.monotonic() - sent > 1.0:
            get_state.remove_pending_request(future)
            return None, 'no answer within 1 s of the request'
        time.sleep(0.01)
    state = future.result().current_state.id
    if state not in LOADING and LOADED in process.output():
        return None, 'the load ended before the answer'
    return state, ''


def test_services_answer_while_autostart_loads_the_model(graph, executable, tmp_path):
    """get_state and get_parameters answer within 1 s while autostart loads the model (~3 s).

    On a loaded 2-core machine DDS discovery alone sometimes outlasts the load, and a request
    sent just after discovery is sometimes lost: such a start shows nothing, and the node is
    started again, up to 6 times (3 were not always enough: a CI check on a quiet machine, where
    the load is shortest, lost all three). A node that answers only once loaded fails all six.
    """
    outcomes = []
    for attempt in range(6):
        namespace = f'/boot{attempt}'
        process = Process([executable, '--ros-args', '-r', f'__ns:={namespace}'],
                          tmp_path / f'boot{attempt}.log')
        try:
            state, why_not = state_while_loading(graph, f'{namespace}/segment_node', process)
            if state is None:
                outcomes.append(why_not)
                continue
            assert state in LOADING, process.output()
            values = call(graph, GetParameters, f'{namespace}/segment_node/get_parameters',
                          GetParameters.Request(names=['weights'])).values
            assert values[0].string_value == ''
            # autostart still finishes
            assert settled_state(graph, f'{namespace}/segment_node') == State.PRIMARY_STATE_ACTIVE
            assert 'bundled demo model' in process.output()
            assert process.interrupt() == 0, process.output()
            return
        finally:
            process.kill()
    pytest.fail(f'no start answered get_state while loading: {outcomes}')


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


@pytest.fixture
def busy_cores():
    """Two processes spinning on the CPU while the test runs (a robot's busy computer)."""
    spinners = [subprocess.Popen([sys.executable, '-c', 'while True: pass']) for _ in range(2)]
    yield
    for spinner in spinners:
        spinner.kill()
        spinner.wait()


def test_ctrl_c_on_busy_cores_exits_0(graph, executable, tmp_path, busy_cores):
    """Eight starts, each asked its state every 0.1 s and given Ctrl-C once active: all exit 0.

    rclpy's signal thread triggers the executor's SIGINT guard condition; a teardown that freed
    it first crashed the node (SIGSEGV in rcl_trigger_guard_condition) when that thread ran
    late on busy cores: 4 of 30 such Ctrl-C before the fix, failing this test one run in three.
    """
    for index in range(8):
        namespace = f'/busy{index}'
        process = Process([executable, '--ros-args', '-r', f'__ns:={namespace}'],
                          tmp_path / f'busy{index}.log')
        try:
            assert settled_state(graph, f'{namespace}/segment_node') == State.PRIMARY_STATE_ACTIVE
            assert process.interrupt() == 0, (index, process.output())
        finally:
            process.kill()
