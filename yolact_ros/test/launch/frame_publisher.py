"""Publish camera-sized frames to a running segment_node and report what it counted (JSON).

Run as its own process, so that a Fast DDS profile given through the environment
(``FASTDDS_DEFAULT_PROFILES_FILE``) applies to this publisher only::

    python frame_publisher.py --topic /image --count 20 --rate 10 --width 640 --height 480

Prints one JSON line: ``frames_received`` and ``frames_processed`` from the node's last
``/diagnostics`` status, and the ``(stamp, frame_id)`` headers of the ``instances`` received.
"""

import argparse
import json
import time

import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--topic', default='/image')
    parser.add_argument('--instances', default='/instances')
    parser.add_argument('--count', type=int, default=20)
    parser.add_argument('--rate', type=float, default=10.0)
    parser.add_argument('--width', type=int, default=640)
    parser.add_argument('--height', type=int, default=480)
    parser.add_argument('--timeout', type=float, default=20.0,
                        help='seconds to wait for the node, then for its counters')
    return parser.parse_args(argv)


def main(argv=None) -> None:
    from diagnostic_msgs.msg import DiagnosticArray
    from yolact_ros_msgs.msg import InstanceArray

    args = parse_args(argv)
    rclpy.init()
    node = rclpy.create_node('frame_publisher')
    publisher = node.create_publisher(Image, args.topic, qos_profile_sensor_data)
    counters = {}
    headers = []

    def on_diagnostics(msg) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if 'frames_received' in values:
                counters.update(values)

    def on_instances(msg) -> None:
        headers.append([msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id])

    node.create_subscription(DiagnosticArray, '/diagnostics', on_diagnostics, 10)
    node.create_subscription(InstanceArray, args.instances, on_instances, QoSProfile(
        depth=args.count, reliability=ReliabilityPolicy.RELIABLE))

    def spin_until(done, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if done():
                return True
            rclpy.spin_once(node, timeout_sec=0.05)
        return done()

    matched = spin_until(lambda: publisher.get_subscription_count() > 0 and counters,
                         args.timeout)
    spin_until(lambda: False, 0.5)  # let the node's reader match this writer too
    frame = np.random.default_rng(0).integers(
        0, 255, (args.height, args.width, 3), np.uint8)
    start = time.monotonic()
    for i in range(args.count):
        msg = Image(height=args.height, width=args.width, encoding='bgr8', is_bigendian=0,
                    step=args.width * 3, data=frame.tobytes())
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + i, 500
        msg.header.frame_id = f'camera_{i}'
        publisher.publish(msg)
        spin_until(lambda: False, max(0.0, start + (i + 1) / args.rate - time.monotonic()))
    # The counters are published once a second: wait until they stop changing.
    last, stable_since = None, time.monotonic()
    end = time.monotonic() + args.timeout
    while time.monotonic() < end and time.monotonic() - stable_since < 2.5:
        spin_until(lambda: False, 0.2)
        state = (counters.get('frames_received'), counters.get('frames_processed'), len(headers))
        if state != last:
            last, stable_since = state, time.monotonic()
    print(json.dumps({'matched': bool(matched), 'sent': args.count,
                      'frames_received': int(counters.get('frames_received', -1)),
                      'frames_processed': int(counters.get('frames_processed', -1)),
                      'instances_headers': headers}), flush=True)
    node.destroy_node()
    rclpy.shutdown()


if __name__ == '__main__':
    main()
