#!/bin/bash
# Run every test: the Python suite, then the ROS 2 suite against real rclpy (Jazzy PyPI wheels)
# inside a loopback-only network namespace. Sets up .venv first if needed (scripts/setup.sh).
# Installs no system package: what the tests need from the system is checked first, and the
# command that installs what is missing is printed.
#
#   bash scripts/test.sh             # everything (ROS part needs root or user namespaces)
#   bash scripts/test.sh -k parity   # extra arguments go to the Python suite's pytest
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export VENV=${VENV:-$root/.venv}
cd "$root"

# What the tests need from the system (Debian/Ubuntu package names).
missing=()
command -v git > /dev/null || missing+=(git)                   # test_quickstart clones
command -v unshare > /dev/null || missing+=(util-linux)        # loopback-only namespace
command -v ip > /dev/null || missing+=(iproute2)
# Optional: without them the package.xml validation test skips (and says so at the end).
optional=()
command -v xmllint > /dev/null || optional+=(libxml2-utils)
[ -f /usr/share/ament_xmllint/xml-catalog/download.ros.org/schema/package_format3.xsd ] \
  || optional+=(python3-ament-xmllint)
if [ ${#optional[@]} -gt 0 ]; then
  echo "test: package.xml validation will be skipped; to run it: sudo apt-get install -y" \
    "${optional[*]}" >&2
fi
if [ ! -x "$VENV/bin/python" ] && ! "${PYTHON:-python3}" -c 'import ensurepip, venv' 2> /dev/null
then
  missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "test: missing system packages: ${missing[*]}. Install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

[ -x "$VENV/bin/yolact" ] || bash scripts/setup.sh

# The real launch_testing / launch_ros (installed for the ROS suite) register pytest plugins
# that break caplog in the Python suite: disable them there when they are installed.
plugins=()
while read -r name; do
  plugins+=(-p "no:$name")
done < <("$VENV/bin/python" - <<'PY'
from importlib.metadata import entry_points

names = {entry.name for entry in entry_points(group='pytest11')}
print('\n'.join(sorted(names & {'launch_testing', 'launch_ros'})))
PY
)

reports=$(mktemp -d)
status=0
# The rclpy tests under test/ros run in the ROS suite below (they need the built workspace).
"$VENV/bin/python" -m pytest yolact_ros/test --ignore=yolact_ros/test/ros --ignore=yolact_ros/test/launch -q \
  -p no:cacheprovider \
  ${plugins[@]+"${plugins[@]}"} --junitxml="$reports/python.xml" "$@" || status=$?
bash scripts/ros/test_ros.sh || status=$?
cp "${YOLACT_ROS_WS:-$root/.ros_ws}/build/yolact_ros/pytest.xml" "$reports/ros.xml" 2>/dev/null || true

# Closing lines for both suites: each group of skipped tests and why, then the totals.
"$VENV/bin/python" - "$reports"/*.xml <<'PY' || status=1
import ast
from collections import Counter
import sys
import xml.etree.ElementTree as ET


def skip_reason(skipped):
    """Return why a test was skipped; a module skipped at collection keeps it in the text."""
    reason = skipped.get('message') or ''
    if reason == 'collection skipped' and skipped.text:
        try:  # ('path', line, 'Skipped: reason')
            reason = str(ast.literal_eval(skipped.text.strip())[2])
        except (ValueError, SyntaxError, IndexError, TypeError):
            reason = skipped.text.strip()
    return reason.removeprefix('Skipped: ').strip() or 'no reason given'


totals = dict.fromkeys(('tests', 'failures', 'errors', 'skipped'), 0)
skips = Counter()
for path in sys.argv[1:]:
    root = ET.parse(path).getroot()
    for suite in [root] if root.tag == 'testsuite' else list(root):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
        for skipped in suite.iter('skipped'):
            skips[skip_reason(skipped)] += 1
for reason, count in sorted(skips.items(), key=lambda item: -item[1]):
    print(f'skipped: {reason} \u2014 {count} test{"s" if count > 1 else ""} skipped')
failed = totals['failures'] + totals['errors']
passed = totals['tests'] - failed - totals['skipped']
print(f"all: {passed} passed, {failed} failed, {totals['skipped']} skipped")
sys.exit(1 if failed or not passed else 0)
PY
rm -rf "$reports"
exit $status
