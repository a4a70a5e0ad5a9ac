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
# npm links a workspace's bin only when its target exists, and a fresh install comes before the first build.
if [ ! -e node_modules/.bin/bulwark-gateway ] || [ ! -e node_modules/.bin/bulwark-agent ]; then
  npm rebuild --ignore-scripts @bulwark/gateway @bulwark/agent >/dev/null
fi
