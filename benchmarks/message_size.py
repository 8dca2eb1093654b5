"""Print the serialised size of one ``instances`` message (640x480, 20 instances).

    python benchmarks/message_size.py        # no ROS install needed (rosbags' CDR serialiser)

Masks are filled ellipses of 40 to 200 pixels across at random places (fixed seed), the size
range of people and objects at a few metres. For comparison: the same masks as full-frame mono8
images (one per instance, what some segmenters publish), and the instance_mask label image.
"""

import numpy as np

from yolact_ros.ros.mask_encoding import BITMAP_ROI, RLE_COCO
from yolact_ros.ros.messages import (
    build_header, build_image, build_instance_array, label_image, rosbags_message_types)
from yolact_ros.ros.msg_definitions import rosbags_typestore
from yolact_ros.structures import Detections, StageTimes, WindowedMasks

HEIGHT, WIDTH, COUNT = 480, 640, 20


def synthetic_detections(height: int = HEIGHT, width: int = WIDTH, count: int = COUNT,
                         seed: int = 0) -> Detections:
    """Return ``count`` elliptical instances in a ``height`` x ``width`` image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    masks = np.zeros((count, height, width), bool)
    boxes = np.zeros((count, 4), np.float32)
    for i in range(count):
        ry, rx = rng.integers(20, 100, size=2)
        cy, cx = rng.integers(ry, height - ry), rng.integers(rx, width - rx)
        masks[i] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        boxes[i] = (cx - rx, cy - ry, cx + rx + 1, cy + ry + 1)
    return Detections(
        boxes=boxes, scores=np.linspace(0.95, 0.3, count).astype(np.float32),
        class_ids=np.zeros(count, np.int64), class_names=['person'] * count,
        category_ids=np.ones(count, np.int64), mask_windows=WindowedMasks.from_dense(masks),
        image_size=(height, width),
        times=StageTimes())


def instances_size(typestore, types, encoding: int, detections: Detections = None) -> int:
    """Return the CDR size in bytes of the ``instances`` message for ``detections``."""
    detections = synthetic_detections() if detections is None else detections
    msg = build_instance_array(types, build_header(types, 1, 'camera'), detections,
                               encoding=encoding)
    return len(typestore.serialize_cdr(msg, msg.__msgtype__))


def main() -> None:
    typestore = rosbags_typestore()
    types = rosbags_message_types(typestore)
    detections = synthetic_detections()
    header = build_header(types, 1, 'camera')
    label = build_image(types, header, label_image(detections), 'mono16')
    full_frame = HEIGHT * WIDTH * COUNT
    print(f'instances, {WIDTH}x{HEIGHT}, {COUNT} instances, '
          f'{int(detections.masks.sum())} mask pixels:')
    for name, encoding in (('BITMAP_ROI', BITMAP_ROI), ('RLE_COCO', RLE_COCO)):
        size = instances_size(typestore, types, encoding, detections)
        print(f'  {name:<34} {size / 1024:8.1f} KiB')
    print(f'  {"full-frame mono8 per instance":<34} {full_frame / 1024:8.1f} KiB (comparison)')
    size = len(typestore.serialize_cdr(label, label.__msgtype__))
    print(f'  {"instance_mask (mono16 label image)":<34} {size / 1024:8.1f} KiB')


if __name__ == '__main__':
    main()
