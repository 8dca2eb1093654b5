"""yolact_ros: real-time YOLACT instance segmentation for ROS 2, training and evaluation.

Importing this package is cheap: it imports neither ROS, OpenCV nor optional dependencies.
Start from :class:`yolact_ros.inference.Segmenter`.
"""

__version__ = '0.1.0'
