#!/bin/bash
# Rewrite the manylinux build-machine paths (/opt/python/cpXY-cpXY/...) that the ROS 2 PyPI wheels
# bake into their exported CMake files, so CMake packages can be built against them.
#
#   scripts/ros/fix_wheel_cmake_paths.sh VENV
set -euo pipefail
venv=${1:?usage: fix_wheel_cmake_paths.sh VENV}
py=$venv/bin/python
pyinc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
npinc=$("$py" -c 'import numpy; print(numpy.get_include())')
ver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
verd=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
# grep finds nothing once fixed (exit 1): idempotent.
{ grep -rlZ "/opt/python/cp${ver}-cp${ver}" "$venv/share" --include='*.cmake' || true; } |
  xargs -0 -r sed -i \
    -e "s#/opt/python/cp${ver}-cp${ver}/lib/python${verd}/site-packages/numpy/_core/include#${npinc}#g" \
    -e "s#/opt/python/cp${ver}-cp${ver}/include/python${verd}#${pyinc}#g"
