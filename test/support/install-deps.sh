#!/usr/bin/env bash
# Install the system packages the test suite needs, when missing.
# Idempotent and quick when everything is present. Add a line to PACKAGES:
#   "<command that must exist> <debian package>"
set -euo pipefail

PACKAGES=(
  "mosquitto mosquitto"
  "mkfs.xfs xfsprogs"
)

missing=()
for entry in "${PACKAGES[@]}"; do
  read -r cmd pkg <<<"$entry"
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then missing+=("$pkg"); fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
