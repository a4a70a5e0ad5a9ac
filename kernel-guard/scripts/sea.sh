#!/bin/sh
# Builds the gateway stand-in as a Node single executable (SEA) at
# BUILD/gateway: a copy of this machine's node with the script injected.
set -eu
B=${1:?usage: sea.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")/.." && pwd)
SRC=$HERE/test/gateway-standin.cjs
CLIENT=$HERE/../gateway/src/guard/client.ts
NODE=$(command -v node)
if [ -f "$B/gateway" ] && [ "$B/gateway" -nt "$SRC" ] && [ "$B/gateway" -nt "$NODE" ] &&
	{ [ ! -f "$CLIENT" ] || [ "$B/gateway" -nt "$CLIENT" ]; }; then
	exit 0
fi
# One script: the gateway's real guard client (transpiled with the
# workspace's TypeScript when it is installed), then the stand-in.
node "$HERE/scripts/bundle-standin.cjs" "$CLIENT" "$SRC" "$B/standin.cjs"
cat > "$B/sea-config.json" <<JSON
{ "main": "$B/standin.cjs", "output": "$B/sea-prep.blob", "disableExperimentalSEAWarning": true }
JSON
node --experimental-sea-config "$B/sea-config.json" > "$B/sea.log" 2>&1 ||
	{ cat "$B/sea.log" >&2; echo "kernel-guard: node --experimental-sea-config failed (log above)" >&2; exit 1; }
cp "$NODE" "$B/gateway.tmp"
# postject from the workspace's devDependencies, else a pinned one-off copy
PJ=$(cd "$HERE" && node -e 'try{console.log(require.resolve("postject/dist/cli.js"))}catch{}')
if [ -n "$PJ" ]; then
	set -- node "$PJ"
else
	set -- npx --yes postject@1.0.0-alpha.6
fi
"$@" "$B/gateway.tmp" NODE_SEA_BLOB "$B/sea-prep.blob" \
	--sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 > "$B/postject.log" 2>&1 ||
	{ cat "$B/postject.log" >&2; echo "kernel-guard: postject failed (log above)" >&2; exit 1; }
mv "$B/gateway.tmp" "$B/gateway"
rm -f "$B/sea-prep.blob" "$B/sea-config.json"
