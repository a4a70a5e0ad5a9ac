#!/usr/bin/env bash
# Install npm dependencies (native ones build against Node's own headers) and
# build every workspace. Quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
export npm_config_nodedir="${npm_config_nodedir:-/usr}"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages (first run compiles sqlite3 and zstd, ~2 min)" >&2
  npm ci --no-audit --no-fund
fi
npx turbo run build --output-logs=errors-only
