#!/usr/bin/env bash
# Every benchmark, each against restic and borg on the same data.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh
for bench in test/bench/*-bench.ts; do
  npx tsx "$bench"
done
