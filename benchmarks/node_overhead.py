"""Per-frame CPU time segment_node adds around the Segmenter (640x480 rgb8, 20 instances).

    python benchmarks/node_overhead.py      # rclpy message classes if importable, else rosbags'

Times the node's own work on one frame: converting the Image fields to BGR, building and (for
rosbags) serialising instances + detections, and, when subscribed, the instance_mask label
image. Publishing (DDS) is not included. Prints the median over repeated runs.
"""

import statistics
import time

from message_size import synthetic_detections
import numpy as np

from yolact_ros.ros.image_conversion import image_to_bgr
from yolact_ros.ros.mask_encoding import BITMAP_ROI
from yolact_ros.ros.messages import (
    build_detection_array, build_header, build_image, build_instance_array, label_image)


def message_types():
    """Return ``(name, MessageTypes)``: rclpy's where importable, else rosbags'."""
    try:
        from yolact_ros.ros.messages import ros_message_types

        return 'rclpy', ros_message_types()
    except ImportError:
        from yolact_ros.ros.messages import rosbags_message_types
        from yolact_ros.ros.msg_definitions import rosbags_typestore

        return 'rosbags', rosbags_message_types(rosbags_typestore())


def median_ms(function, repeats: int = 30) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    binding, types = message_types()
    detections = synthetic_detections()
    height, width = detections.image_size
    data = np.random.default_rng(0).integers(0, 256, height * width * 3, np.uint8).tobytes()
    header = build_header(types, 1, 'camera')
    stages = {
        'rgb8 -> bgr': lambda: image_to_bgr('rgb8', height, width, width * 3, data),
        'instances (BITMAP_ROI)': lambda: build_instance_array(
            types, header, detections, encoding=BITMAP_ROI),
        'detections': lambda: build_detection_array(types, header, detections),
        'instance_mask (if subscribed)': lambda: build_image(
            types, header, label_image(detections), 'mono16'),
    }
    print(f'node overhead per frame, {width}x{height}, {len(detections)} instances '
          f'({binding} messages), median ms:')
    total = 0.0
    for name, function in stages.items():
        value = median_ms(function)
        total += value
        print(f'  {name:<32} {value:7.2f}')
    print(f'  {"total":<32} {total:7.2f}')


if __name__ == '__main__':
    main()
