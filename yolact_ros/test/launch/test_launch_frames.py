"""launch_testing: segment.launch.py started by the test, frames in, ``instances`` out.

Runs with launch_testing's pytest plugin (``@pytest.mark.launch_test``) or ``launch_test``.
"""

import time
import unittest

import _launch_gate  # noqa: F401,I100  (skips the module where launch tests cannot run)
from ament_index_python.packages import get_package_share_directory
import launch
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
import launch_testing
import launch_testing.actions
import launch_testing.asserts
import numpy as np
import pytest

NAMESPACE = 'lt'
FRAMES = 3


@pytest.mark.launch_test
def generate_test_description():
    """Include the package's launch file in a namespace; tests start at once."""
    launch_file = f"{get_package_share_directory('yolact_ros')}/launch/segment.launch.py"
    return launch.LaunchDescription([
        IncludeLaunchDescription(PythonLaunchDescriptionSource(launch_file),
                                 launch_arguments={'namespace': NAMESPACE,
                                                   'device': 'cpu'}.items()),
        launch_testing.actions.ReadyToTest(),
    ])


class TestFramesIn(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        import rclpy

        rclpy.init()
        cls.node = rclpy.create_node('launch_test_client')

    @classmethod
    def tearDownClass(cls):
        import rclpy

        cls.node.destroy_node()
        rclpy.shutdown()

    def spin_until(self, done, timeout):
        import rclpy

        end = time.monotonic() + timeout
        while not done() and time.monotonic() < end:
            rclpy.spin_once(self.node, timeout_sec=0.05)
        return done()

    def publish_until_answered(self, publisher, msg, received, timeout):
        """Publish ``msg`` until an answer carries its stamp (or ``timeout`` s pass).

        Discovery is not symmetric: the publisher may see the node's subscription before the
        node sees the publisher, and a best-effort frame sent then is lost. Sending it again
        every 3 s is what a camera's next frame would do.
        """
        def answered():
            return any(m.header.stamp == msg.header.stamp for m in received)

        end = time.monotonic() + timeout
        while not answered() and time.monotonic() < end:
            publisher.publish(msg)
            self.spin_until(answered, min(3.0, max(0.0, end - time.monotonic())))
        return answered()

    def test_instances_carry_the_input_header(self, proc_output):
        from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        from yolact_ros_msgs.msg import InstanceArray

        received = []
        self.node.create_subscription(
            InstanceArray, f'/{NAMESPACE}/instances', received.append,
            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        publisher = self.node.create_publisher(Image, f'/{NAMESPACE}/image',
                                               qos_profile_sensor_data)
        # The node subscribes once active (model loaded): up to a minute on a busy machine.
        proc_output.assertWaitFor('active: subscribed', timeout=90)
        self.assertTrue(self.spin_until(lambda: publisher.get_subscription_count() > 0, 30))
        image = np.zeros((96, 128, 3), np.uint8)
        image[20:70, 30:90] = (0, 200, 255)
        for i in range(FRAMES):  # one at a time: the node keeps only the newest frame
            msg = Image(height=96, width=128, encoding='bgr8', step=128 * 3,
                        data=image.tobytes())
            msg.header.stamp.sec, msg.header.frame_id = 100 + i, f'cam_{i}'
            self.assertTrue(self.publish_until_answered(publisher, msg, received, 30),
                            f'no /{NAMESPACE}/instances for frame {i}')
        # A frame sent again may be answered twice: the answers, in order, once each.
        answers = [(m.header.stamp.sec, m.header.frame_id) for m in received]
        self.assertEqual(list(dict.fromkeys(answers)),
                         [(100 + i, f'cam_{i}') for i in range(FRAMES)])
        for msg in received:
            self.assertEqual((msg.height, msg.width), (96, 128))


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):

    def test_node_exits_cleanly(self, proc_info):
        """The node ends with exit code 0 when launch stops it (SIGINT)."""
        launch_testing.asserts.assertExitCodes(proc_info)
