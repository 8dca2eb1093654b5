# Source me: environment for building/running yolact_ros against the ROS 2 PyPI wheels in a venv.
#   . scripts/ros/env.sh            # VENV (default .venv) and YOLACT_ROS_WS (default .ros_ws)
_yr_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export VENV=${VENV:-$_yr_root/.venv}
export YOLACT_ROS_WS=${YOLACT_ROS_WS:-$_yr_root/.ros_ws}
export VIRTUAL_ENV=$VENV
export PATH=$VENV/bin:$PATH
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
if [ -f "$YOLACT_ROS_WS/install/local_setup.bash" ]; then
  export AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV
  _yr_u=$-; set +u  # colcon's setup scripts read unset variables
  # shellcheck disable=SC1091
  . "$YOLACT_ROS_WS/install/local_setup.bash"
  case $_yr_u in *u*) set -u ;; esac; unset _yr_u
fi
# The wheels live in the venv: keep it on the ament/CMake search paths after the workspace.
export AMENT_PREFIX_PATH=${AMENT_PREFIX_PATH:+$AMENT_PREFIX_PATH:}$VENV
export CMAKE_PREFIX_PATH=${CMAKE_PREFIX_PATH:+$CMAKE_PREFIX_PATH:}$VENV
unset _yr_root
