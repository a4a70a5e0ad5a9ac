#!/usr/bin/env bash
# The whole test suite: system packages the tests need, npm packages, build,
# then every test against real components (gateway and agent processes,
# Mosquitto, the kernel guard in a qemu guest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/support/install-deps.sh
bash scripts/setup.sh
status=0
npx vitest run || status=1
npm test --workspace kernel-guard || status=1
exit $status
