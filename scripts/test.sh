#!/usr/bin/env bash
# The whole test suite: system packages the tests need, npm packages, build,
# then every test against real components (gateway and agent processes,
# Mosquitto, the kernel guard in a qemu guest). Ends with one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/support/install-deps.sh
bash scripts/setup.sh
results="$(mktemp -d)"
status=0
npx vitest run --reporter=default --reporter=json --outputFile="$results/vitest.json" || status=1
npm test --workspace kernel-guard 2>&1 | tee "$results/kernel-guard.log" || status=1
node -e '
  const fs = require("fs");
  const [vitestFile, guardFile] = process.argv.slice(1);
  let passed = 0, failed = 0;
  try { const v = JSON.parse(fs.readFileSync(vitestFile, "utf8")); passed += v.numPassedTests; failed += v.numFailedTests; } catch { failed++; }
  const m = /^(\d+) passed, (\d+) failed$/m.exec(fs.existsSync(guardFile) ? fs.readFileSync(guardFile, "utf8") : "");
  if (m) { passed += Number(m[1]); failed += Number(m[2]); } else failed++;
  console.log(`${passed} passed, ${failed} failed`);
' "$results/vitest.json" "$results/kernel-guard.log"
exit $status
