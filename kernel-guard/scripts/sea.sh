#!/bin/sh
# Builds the guest's gateway at BUILD/gateway: the REAL gateway as a Node
# single executable (installers/sea/build-gateway-sea.sh, into
# BUILD/gateway-sea/ with the native addons it dlopens from its own
# directory), plus the stand-in's raw store verbs (test/gateway-standin.cjs:
# ingest write delete status status-store hold-open) that the attack cases
# need. Also bundles the agent (agent/dist/bundle) when it is missing.
set -eu
B=${1:?usage: sea.sh BUILD_DIR}
HERE=$(cd "$(dirname "$0")/.." && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# the gateway and the agent bundle import @bulwark/proto's build output
[ -f "$ROOT/proto/dist/index.js" ] || (cd "$ROOT" && npm run build --workspace @bulwark/proto)
sh "$ROOT/installers/sea/build-gateway-sea.sh" "$B/gateway-sea" "$HERE/test/gateway-standin.cjs"
if [ ! -f "$B/gateway" ] || [ "$B/gateway-sea/bulwark-gateway" -nt "$B/gateway" ]; then
	cp "$B/gateway-sea/bulwark-gateway" "$B/gateway.tmp"
	mv "$B/gateway.tmp" "$B/gateway"
fi
if [ ! -f "$ROOT/agent/dist/bundle/bulwark-agent.js" ] ||
	[ -n "$(find "$ROOT/agent/src" "$ROOT/proto/dist" -newer "$ROOT/agent/dist/bundle/bulwark-agent.js" -type f 2>/dev/null | head -n1)" ]; then
	(cd "$ROOT/agent" && node scripts/bundle.mjs)
fi
