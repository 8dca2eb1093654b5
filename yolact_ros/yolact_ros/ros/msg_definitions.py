"""Message definitions (fields and constants, comments dropped) of the types the node publishes.

Embedded so that tools without a ROS install (``yolact bag``, tests) can register them with
rosbags' type system; ``test_msg_definitions.py`` checks they equal the packages' ``.msg`` files.
"""

from typing import Dict

MSG_DEFINITIONS: Dict[str, str] = {
    'vision_msgs/msg/BoundingBox2D': (
        'vision_msgs/Pose2D center\n'
        'float64 size_x\n'
        'float64 size_y\n'
    ),
    'vision_msgs/msg/BoundingBox3D': (
        'geometry_msgs/Pose center\n'
        'geometry_msgs/Vector3 size\n'
    ),
    'vision_msgs/msg/Detection2D': (
        'std_msgs/Header header\n'
        'ObjectHypothesisWithPose[] results\n'
        'BoundingBox2D bbox\n'
        'string id\n'
    ),
    'vision_msgs/msg/Detection2DArray': (
        'std_msgs/Header header\n'
        'Detection2D[] detections\n'
    ),
    'vision_msgs/msg/Detection3D': (
        'std_msgs/Header header\n'
        'ObjectHypothesisWithPose[] results\n'
        'BoundingBox3D bbox\n'
        'string id\n'
    ),
    'vision_msgs/msg/Detection3DArray': (
        'std_msgs/Header header\n'
        'Detection3D[] detections\n'
    ),
    'vision_msgs/msg/LabelInfo': (
        'std_msgs/Header header\n'
        'vision_msgs/VisionClass[] class_map\n'
        'float32 threshold\n'
    ),
    'vision_msgs/msg/ObjectHypothesis': (
        'string class_id\n'
        'float64 score\n'
    ),
    'vision_msgs/msg/ObjectHypothesisWithPose': (
        'ObjectHypothesis hypothesis\n'
        'geometry_msgs/PoseWithCovariance pose\n'
    ),
    'vision_msgs/msg/Point2D': (
        'float64 x\n'
        'float64 y\n'
    ),
    'vision_msgs/msg/Pose2D': (
        'vision_msgs/Point2D position\n'
        'float64 theta\n'
    ),
    'vision_msgs/msg/VisionClass': (
        'uint16 class_id\n'
        'string class_name\n'
    ),
    'yolact_ros_msgs/msg/Instance': (
        'uint32 id\n'
        'uint32 track_id\n'
        'uint16 class_id\n'
        'string class_name\n'
        'float32 score\n'
        'vision_msgs/BoundingBox2D bbox\n'
        'InstanceMask mask\n'
        'uint32 num_points\n'
        'bool valid_3d\n'
        'geometry_msgs/Point position\n'
        'vision_msgs/BoundingBox3D bbox_3d\n'
    ),
    'yolact_ros_msgs/msg/InstanceArray': (
        'std_msgs/Header header\n'
        'uint32 height\n'
        'uint32 width\n'
        'Instance[] instances\n'
        'float32 preprocess_ms\n'
        'float32 inference_ms\n'
        'float32 postprocess_ms\n'
        'float32 latency_ms\n'
        'uint32 dropped_frames\n'
    ),
    'yolact_ros_msgs/msg/InstanceMask': (
        'uint8 BITMAP_ROI=0\n'
        'uint8 RLE_COCO=1\n'
        'uint8 encoding\n'
        'sensor_msgs/RegionOfInterest roi\n'
        'uint8[] data\n'
        'uint32[] counts\n'
        'uint32 area\n'
    ),
}


def register_rosbags_types(typestore) -> None:
    """Register :data:`MSG_DEFINITIONS` with a ``rosbags`` typestore (in place)."""
    from rosbags.typesys import get_types_from_msg

    types = {}
    for name, text in MSG_DEFINITIONS.items():
        types.update(get_types_from_msg(text, name))
    typestore.register(types)


def rosbags_typestore(distro: str = 'jazzy'):
    """Return a ``rosbags`` typestore of ROS 2 ``distro`` with vision_msgs and yolact_ros_msgs."""
    from rosbags.typesys import get_typestore, Stores

    stores = {'humble': Stores.ROS2_HUMBLE, 'jazzy': Stores.ROS2_JAZZY}
    if distro not in stores:
        raise ValueError(f'unknown ROS 2 distro {distro!r}; expected one of {sorted(stores)}')
    typestore = get_typestore(stores[distro])
    register_rosbags_types(typestore)
    return typestore
