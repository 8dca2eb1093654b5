"""3D geometry of instances: camera intrinsics, depth images, points, centroids and boxes.

No ROS and no torch: NumPy, and OpenCV where used.
"""

from yolact_ros.geometry.camera import (
    CameraIntrinsics, depth_to_meters, resample_depth)
from yolact_ros.geometry.instances import (
    Instance3D, instance_from_points, instances_3d, transform_instances)
from yolact_ros.geometry.transforms import quaternion_matrix

__all__ = ['CameraIntrinsics', 'Instance3D', 'depth_to_meters', 'instance_from_points',
           'instances_3d', 'quaternion_matrix', 'resample_depth', 'transform_instances']
