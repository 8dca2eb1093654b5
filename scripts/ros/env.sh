# Source me: environment for building/running yolact_ros against the ROS 2 PyPI wheels in a venv.
#   . scripts/ros/env.sh            # VENV (default .venv) and YOLACT_ROS_WS (default .ros_ws)
_yr_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export VENV=${VENV:-$_yr_root/.venv}
export YOLACT_ROS_WS=${YOLACT_ROS_WS:-$_yr_root/.ros_ws}
export VIRTUAL_ENV=$VENV
export PATH=$VENV/bin:$PATH
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV
_yr_u=$-; set +u  # colcon's setup scripts read unset variables
# composition_interfaces of the launch/ros2cli bundle (scripts/ros/install_launch.sh), if there
if [ -f "$VENV/launch_ws/install/local_setup.bash" ]; then
  # shellcheck disable=SC1091
  . "$VENV/launch_ws/install/local_setup.bash"
fi
if [ -f "$YOLACT_ROS_WS/install/local_setup.bash" ]; then
  # shellcheck disable=SC1091
  . "$YOLACT_ROS_WS/install/local_setup.bash"
fi
case $_yr_u in *u*) set -u ;; esac; unset _yr_u
# The wheels (and the launch/ros2cli packages) live in the venv: keep it on the ament/CMake
# search paths after the workspaces.
case :$AMENT_PREFIX_PATH: in *:$VENV:*) ;; *) AMENT_PREFIX_PATH=$AMENT_PREFIX_PATH:$VENV ;; esac
case :$CMAKE_PREFIX_PATH: in *:$VENV:*) ;; *) CMAKE_PREFIX_PATH=$CMAKE_PREFIX_PATH:$VENV ;; esac
export AMENT_PREFIX_PATH CMAKE_PREFIX_PATH
unset _yr_root
