#!/bin/bash
# Build the colcon workspace: the CI-only vision_msgs subset, yolact_ros_msgs and yolact_ros,
# against the ROS 2 wheels in the venv (scripts/ros/install_ros_wheels.sh). About 1 minute.
# Build, install and log spaces go to $YOLACT_ROS_WS (default .ros_ws, git-ignored).
#
#   scripts/ros/build_ws.sh [extra colcon build arguments]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
export VENV=${VENV:-$root/.venv}
export YOLACT_ROS_WS=${YOLACT_ROS_WS:-$root/.ros_ws}
export VIRTUAL_ENV=$VENV PATH=$VENV/bin:$PATH
export AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV
unset COLCON_PREFIX_PATH
cd "$root"
# On a machine with vision_msgs installed (a ROS distribution) the subset is not needed.
base_paths=(.ci/vision_msgs yolact_ros_msgs yolact_ros)
colcon --log-base "$YOLACT_ROS_WS/log" build \
  --base-paths "${base_paths[@]}" \
  --build-base "$YOLACT_ROS_WS/build" --install-base "$YOLACT_ROS_WS/install" \
  --symlink-install --event-handlers console_cohesion- status- summary+ \
  --cmake-args -DBUILD_TESTING=OFF "-DPython3_EXECUTABLE=$VENV/bin/python" \
  "$@"
