#!/bin/bash
# Run a command in a private network namespace that has only loopback (multicast routed to it),
# so DDS discovery and data can never leave the machine. Needs root (or unprivileged user
# namespaces: then it maps the caller to root inside). Also pins ROS discovery to localhost.
#
#   scripts/ros/loopback_only.sh COMMAND [ARGS...]
set -euo pipefail
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
if [ "$(id -u)" -eq 0 ]; then
  ns=(unshare --net)
else
  ns=(unshare --net --map-root-user)
fi
exec "${ns[@]}" bash -c '
  ip link set lo up
  ip link set lo multicast on
  ip route add 224.0.0.0/4 dev lo 2>/dev/null || true
  exec "$@"' _ "$@"
