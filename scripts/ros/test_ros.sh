#!/bin/bash
# Build the colcon workspace (CI-only vision_msgs subset, yolact_ros_msgs, yolact_ros) and run the
# ROS tests with `colcon test` against real rclpy, inside a loopback-only network namespace.
# YOLACT_ROS_REQUIRE_RCLPY=1: a missing rclpy or message package fails instead of skipping.
#
#   scripts/ros/test_ros.sh [extra pytest arguments, e.g. -k lifecycle]
#
# Env: VENV (default .venv), YOLACT_ROS_WS (default .ros_ws), YOLACT_ROS_SKIP_INSTALL=1 to skip
# the wheel install check, YOLACT_ROS_SKIP_BUILD=1 to reuse the last build.
# Needs root (or unprivileged user namespaces) for the network namespace.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export VENV=${VENV:-$root/.venv}
export YOLACT_ROS_WS=${YOLACT_ROS_WS:-$root/.ros_ws}
cd "$root"

if [ "${YOLACT_ROS_SKIP_INSTALL:-0}" != 1 ]; then
  "$here/install_ros_wheels.sh" "$VENV"
fi
# xmllint and the package format-3 XSD, for the package.xml validation test.
xsd=/usr/share/ament_xmllint/xml-catalog/download.ros.org/schema/package_format3.xsd
if ! command -v xmllint > /dev/null || [ ! -f "$xsd" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && apt-get install -y -qq libxml2-utils python3-ament-xmllint > /dev/null
  fi
fi
if [ "${YOLACT_ROS_SKIP_BUILD:-0}" != 1 ]; then
  "$here/build_ws.sh"
fi

# shellcheck disable=SC1091
. "$here/env.sh"
export YOLACT_ROS_REQUIRE_RCLPY=1
rm -f "$YOLACT_ROS_WS/build/yolact_ros/pytest.xml"
status=0
"$here/loopback_only.sh" colcon --log-base "$YOLACT_ROS_WS/log" test \
  --base-paths yolact_ros --packages-select yolact_ros \
  --build-base "$YOLACT_ROS_WS/build" --install-base "$YOLACT_ROS_WS/install" \
  --event-handlers console_direct+ --return-code-on-test-failure \
  --pytest-args test/ros -p no:cacheprovider "$@" || status=$?

# One plain closing line from the JUnit report (the runner's own summary is above).
python - "$YOLACT_ROS_WS/build/yolact_ros/pytest.xml" <<'PY' || status=1
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == 'testsuite' else list(root)
count = {k: sum(int(s.get(k, 0)) for s in suites) for k in ('tests', 'failures', 'errors',
                                                              'skipped')}
failed = count['failures'] + count['errors']
passed = count['tests'] - failed - count['skipped']
print(f"ros: {passed} passed, {failed} failed, {count['skipped']} skipped")
sys.exit(1 if failed or not passed else 0)
PY
exit $status
