#!/bin/bash
# Install the real `ros2 launch`, launch_ros, the `ros2` CLI and launch_testing into the venv, for
# the launch tests (yolact_ros/test/launch), with ../shared/ros2/install-launch.sh where that
# exists beside the repository (CI). Elsewhere it says so and exits 0: the launch tests then skip.
# About 35 s the first time, 2 s after. Replaces pytest >= 9 with 8.4.2 (its plugin needs < 9).
#
#   scripts/ros/install_launch.sh [VENV]      # default: .venv; builds into VENV/launch_ws
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-${VENV:-$root/.venv}}
installer=${YOLACT_ROS_SHARED:-$root/../shared}/ros2/install-launch.sh
if [ ! -f "$installer" ]; then
  echo "install_launch: $installer not found; launch tests will skip" \
       "(on a ROS install: apt-get install ros-jazzy-launch-testing-ros ros-jazzy-ros2cli)"
  exit 0
fi
bash "$installer" "$venv" "$venv/launch_ws"
