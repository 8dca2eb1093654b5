"""ROS 2 integration: pure conversions and message builders, and the rclpy node (``node``).

Importing this package does not import rclpy; only :mod:`yolact_ros.ros.node` does.
"""
