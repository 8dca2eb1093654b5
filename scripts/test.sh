#!/bin/bash
# Run every test: the Python suite, then the ROS 2 suite against real rclpy (Jazzy PyPI wheels)
# inside a loopback-only network namespace. Sets up .venv first if needed (scripts/setup.sh).
#
#   bash scripts/test.sh             # everything (ROS part needs root or user namespaces)
#   bash scripts/test.sh -k parity   # extra arguments go to the Python suite's pytest
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export VENV=${VENV:-$root/.venv}
cd "$root"
[ -x "$VENV/bin/yolact" ] || bash scripts/setup.sh

reports=$(mktemp -d)
status=0
# The rclpy tests under test/ros run in the ROS suite below (they need the built workspace).
"$VENV/bin/python" -m pytest yolact_ros/test --ignore=yolact_ros/test/ros -q -p no:cacheprovider \
  --junitxml="$reports/python.xml" "$@" || status=$?
bash scripts/ros/test_ros.sh || status=$?
cp "${YOLACT_ROS_WS:-$root/.ros_ws}/build/yolact_ros/pytest.xml" "$reports/ros.xml" 2>/dev/null || true

# One closing line for both suites.
"$VENV/bin/python" - "$reports"/*.xml <<'PY' || status=1
import sys
import xml.etree.ElementTree as ET

totals = dict.fromkeys(('tests', 'failures', 'errors', 'skipped'), 0)
for path in sys.argv[1:]:
    root = ET.parse(path).getroot()
    for suite in [root] if root.tag == 'testsuite' else list(root):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
failed = totals['failures'] + totals['errors']
passed = totals['tests'] - failed - totals['skipped']
print(f"all: {passed} passed, {failed} failed, {totals['skipped']} skipped")
sys.exit(1 if failed or not passed else 0)
PY
rm -rf "$reports"
exit $status
