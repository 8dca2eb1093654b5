#!/bin/bash
# Build the colcon workspace (CI-only vision_msgs subset, yolact_ros_msgs, yolact_ros) and run the
# ROS tests against real rclpy, inside a loopback-only network namespace:
#   1. `colcon test` on yolact_ros/test/ros (without the launch_testing pytest plugins)
#   2. pytest on yolact_ros/test/launch: real `ros2 launch` + `ros2` CLI + launch_testing
#      (skipped with a reason where launch/ros2cli are not installed: scripts/ros/install_launch.sh)
# YOLACT_ROS_REQUIRE_RCLPY=1: a missing rclpy or message package fails instead of skipping.
#
#   scripts/ros/test_ros.sh [extra pytest arguments for both, e.g. -k lifecycle]
#
# Env: VENV (default .venv), YOLACT_ROS_WS (default .ros_ws), YOLACT_ROS_SKIP_INSTALL=1 to skip
# the wheel and launch install checks, YOLACT_ROS_SKIP_BUILD=1 to reuse the last build.
# Needs root (or unprivileged user namespaces) for the network namespace. Installs no system
# package: for the package.xml validation it only says what to install.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export VENV=${VENV:-$root/.venv}
export YOLACT_ROS_WS=${YOLACT_ROS_WS:-$root/.ros_ws}
cd "$root"

# xmllint and the package format-3 XSD (Debian packages), for the package.xml validation test.
xsd=/usr/share/ament_xmllint/xml-catalog/download.ros.org/schema/package_format3.xsd
if ! command -v xmllint > /dev/null || [ ! -f "$xsd" ]; then
  echo "test_ros: package.xml validation will skip; to run it:" \
       "sudo apt-get install libxml2-utils python3-ament-xmllint"
fi
if [ "${YOLACT_ROS_SKIP_INSTALL:-0}" != 1 ]; then
  "$here/install_ros_wheels.sh" "$VENV"
  "$here/install_launch.sh" "$VENV"
fi
if [ "${YOLACT_ROS_SKIP_BUILD:-0}" != 1 ]; then
  "$here/build_ws.sh"
fi

# shellcheck disable=SC1091
. "$here/env.sh"
export YOLACT_ROS_REQUIRE_RCLPY=1
if [ -x "$VENV/bin/ros2" ]; then
  export YOLACT_ROS_REQUIRE_LAUNCH=1  # installed: the launch tests must run, not skip
fi
report=$YOLACT_ROS_WS/build/yolact_ros/pytest.xml
launch_report=$YOLACT_ROS_WS/build/yolact_ros/pytest_launch.xml
rm -f "$report" "$launch_report"
status=0
# Installing launch_testing registers pytest plugins that import `launch`, which turns off log
# propagation (caplog); the suites without launch tests run without them.
"$here/loopback_only.sh" colcon --log-base "$YOLACT_ROS_WS/log" test \
  --base-paths yolact_ros --packages-select yolact_ros \
  --build-base "$YOLACT_ROS_WS/build" --install-base "$YOLACT_ROS_WS/install" \
  --event-handlers console_direct+ --return-code-on-test-failure \
  --pytest-args test/ros -p no:cacheprovider -p no:launch_testing -p no:launch_ros "$@" ||
  status=$?
# The launch tests start `ros2 launch` / launch_testing; about 1 min.
(cd yolact_ros && "$here/loopback_only.sh" python -m pytest test/launch -p no:cacheprovider -rs \
   --junitxml="$launch_report" "$@") || status=$?

# One plain closing line from the JUnit reports (the runners' own summaries are above); the
# launch tests are merged into pytest.xml, which scripts/test.sh reads.
python - "$report" "$launch_report" <<'PY' || status=1
import os
import sys
import xml.etree.ElementTree as ET

suites, missing = [], [path for path in sys.argv[1:] if not os.path.exists(path)]
for path in sys.argv[1:]:
    if os.path.exists(path):
        root = ET.parse(path).getroot()
        suites += [root] if root.tag == 'testsuite' else list(root)
merged = ET.Element('testsuites')
merged.extend(suites)
ET.ElementTree(merged).write(sys.argv[1], encoding='utf-8', xml_declaration=True)
count = {k: sum(int(s.get(k, 0)) for s in suites) for k in ('tests', 'failures', 'errors',
                                                              'skipped')}
failed = count['failures'] + count['errors']
passed = count['tests'] - failed - count['skipped']
note = f" (no report: {', '.join(missing)})" if missing else ''
print(f"ros: {passed} passed, {failed} failed, {count['skipped']} skipped{note}")
sys.exit(1 if failed or missing or not passed else 0)
PY
exit $status
