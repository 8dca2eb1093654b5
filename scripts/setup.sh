#!/bin/bash
# Set up yolact_ros in a virtual environment (.venv): PyTorch, the package and its tools.
#
#   bash scripts/setup.sh          # the Python package: predict, train, eval, demo, bag, export
#   bash scripts/setup.sh --ros    # also ROS 2 Jazzy from PyPI wheels + a colcon workspace
#                                  # (.ros_ws) with yolact_ros_msgs and the node, for the tests
# Needs Python 3.10+ with venv (Debian/Ubuntu: sudo apt-get install python3-venv); --ros needs
# Python 3.11 on x86_64 (the Jazzy wheels are built for it). PYTHON=python3.11 picks another one.
# Downloads torch's CUDA build and its NVIDIA libraries (a few GB); .venv takes about 6 GB.
# Installs no system package.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$root/.venv}
python=${PYTHON:-python3}

if [ "${1:-}" = "--ros" ]; then
  interpreter=$python
  [ -x "$venv/bin/python" ] && interpreter=$venv/bin/python
  found=$("$interpreter" -c 'import platform, sys
print(f"{sys.version_info[0]}.{sys.version_info[1]} {platform.machine()}")')
  if [ "$found" != "3.11 x86_64" ]; then
    echo "setup: --ros needs Python 3.11 on x86_64 (the ROS 2 Jazzy PyPI wheels), found" \
      "$found; run with PYTHON=python3.11 (and a new VENV), or use a ROS install" >&2
    exit 1
  fi
fi
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv" || {
    echo "setup: cannot create a virtual environment with $python (install python3-venv)" >&2
    exit 1
  }
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
# torch first, pinned: the versions this project is tested with.
"${pip[@]}" 'torch==2.14.1' 'torchvision==0.29.1'
# compat mode puts the source folder on sys.path, so new modules need no reinstall.
"${pip[@]}" --config-settings editable_mode=compat -e "$root/yolact_ros[train,export,bag,test,bench]"
# HOTA (benchmarks/tracking.py): trackeval without its declared opencv-python (GUI build, needs
# libGL), which would clobber opencv-python-headless's cv2; it runs on the headless build.
"${pip[@]}" --no-deps 'trackeval==1.3.0'

if [ "${1:-}" = "--ros" ]; then
  "$root/scripts/ros/install_ros_wheels.sh" "$venv"
  VENV=$venv "$root/scripts/ros/build_ws.sh"
fi
echo "setup: done. Try: $venv/bin/yolact demo"
