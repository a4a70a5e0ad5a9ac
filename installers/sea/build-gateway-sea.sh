#!/bin/sh
# Builds the gateway as a Node single executable (SEA):
#   OUT/bulwark-gateway   this machine's node with the bundled gateway injected
#   OUT/*.node            the native addons it process.dlopen()s from its own directory
#   OUT/addons.txt        their names (an installer ships them beside the binary and
#                         registers them with the kernel guard as --gateway-lib)
# Usage: build-gateway-sea.sh [OUT_DIR [TEST_STANDIN]]   (default gateway/dist/sea). Skips
# the work when the binary is newer than node, the gateway, proto and this folder.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-$ROOT/gateway/dist/sea}
STANDIN=${2:-} # kernel-guard test only: see bundle-gateway.mjs --test-standin
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
NODE=$(command -v node)
EXE=$OUT/bulwark-gateway
if [ -f "$EXE" ] && [ "$EXE" -nt "$NODE" ] && [ -z "$(find "$ROOT/gateway/src" "$ROOT/proto/dist" "$HERE" ${STANDIN:+"$STANDIN"} -newer "$EXE" -type f 2>/dev/null | head -n1)" ]; then
	exit 0
fi
node "$HERE/bundle-gateway.mjs" "$OUT" ${STANDIN:+--test-standin "$STANDIN"} > "$OUT/bundle.log" 2>&1 ||
	{ cat "$OUT/bundle.log" >&2; echo "sea: bundling the gateway failed (log above)" >&2; exit 1; }
cat > "$OUT/sea-config.json" <<JSON
{ "main": "$OUT/bulwark-gateway.cjs", "output": "$OUT/sea-prep.blob", "disableExperimentalSEAWarning": true, "useCodeCache": true }
JSON
node --experimental-sea-config "$OUT/sea-config.json" > "$OUT/sea.log" 2>&1 ||
	{ cat "$OUT/sea.log" >&2; echo "sea: node --experimental-sea-config failed (log above)" >&2; exit 1; }
cp "$NODE" "$EXE.tmp"
chmod u+w "$EXE.tmp"
# postject from the workspace's devDependencies, else a pinned one-off copy
PJ=$(cd "$ROOT" && node -e 'try{console.log(require.resolve("postject/dist/cli.js"))}catch{}')
if [ -n "$PJ" ]; then
	set -- node "$PJ"
else
	set -- npx --yes postject@1.0.0-alpha.6
fi
"$@" "$EXE.tmp" NODE_SEA_BLOB "$OUT/sea-prep.blob" \
	--sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 > "$OUT/postject.log" 2>&1 ||
	{ cat "$OUT/postject.log" >&2; echo "sea: postject failed (log above)" >&2; exit 1; }
mv "$EXE.tmp" "$EXE"
rm -f "$OUT/sea-prep.blob" "$OUT/sea-config.json"
