#!/usr/bin/env bash
# The whole job end to end on one machine: create a site, run the gateway,
# enroll a local agent, back up a sample tree, restore it, prove it matches.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/node_modules/.bin:$PATH"

work="${BULWARK_QUICKSTART_DIR:-$(mktemp -d /tmp/bulwark-quickstart.XXXXXX)}"
mkdir -p "$work"
port="${BULWARK_PORT:-0}"   # 0: any free port
echo "== Working in $work"

echo "== 1. Create a site (CA, gateway certificate, recovery key, WORM store, catalog)"
head -c 24 /dev/urandom | base64 > "$work/restore-password"
chmod 600 "$work/restore-password"
bulwark-gateway init --dir "$work/site" --restore-password-file "$work/restore-password"
echo "   The restore password is in $work/restore-password (in real use, the security admin keeps it)."

echo "== 2. Start the gateway (wss:// with mutual TLS 1.3)"
bulwark-gateway serve --dir "$work/site" --listen "127.0.0.1:$port" --mqtt-listen 127.0.0.1:0 > "$work/gateway.out" 2> "$work/gateway.log" &
gateway_pid=$!
agent_pid=
trap 'kill $gateway_pid $agent_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do
  grep -q listening "$work/gateway.out" 2>/dev/null && break
  if ! kill -0 $gateway_pid 2>/dev/null; then echo "The gateway did not start:" >&2; cat "$work/gateway.log" >&2; exit 1; fi
  sleep 0.1
done
cat "$work/gateway.out"
url=$(grep -o 'wss://[^ ]*' "$work/gateway.out")

echo "== 3. Enroll a local agent with a one-time token"
token=$(bulwark-gateway token --dir "$work/site" | tail -n 1)
bulwark-agent enroll --state "$work/agent" --gateway "$url" --token "$token"

echo "== 4. Make a sample tree and back it up"
sample="$work/sample"
mkdir -p "$sample/docs/nested" "$sample/media"
for i in $(seq 1 200); do echo "document $i: quarterly numbers, contracts and notes" > "$sample/docs/doc-$i.txt"; done
head -c 20000000 /dev/urandom > "$sample/media/video.bin"
seq 1 400000 > "$sample/docs/nested/table.csv"
: > "$sample/docs/empty"
ln -s docs/doc-1.txt "$sample/shortcut"
bulwark-agent backup --state "$work/agent" "$sample"

echo "== 5. Back it up again: unchanged files are not read or sent"
bulwark-agent backup --state "$work/agent" "$sample"
bulwark-agent points --state "$work/agent"

echo "== 6. Restore the latest point and compare"
bulwark-agent restore --state "$work/agent" latest --to "$work/restored"
if diff -r --no-dereference "$sample" "$work/restored/sample"; then
  echo "== MATCH: the restored tree is byte-identical to the original."
else
  echo "== MISMATCH: the restore differs from the original" >&2
  exit 1
fi
echo "== 7. A disk image: the first backup reads it, the next sends only changed 4 KiB blocks"
image="$work/disk.img"
truncate -s 64M "$image"
dd if=/dev/urandom of="$image" bs=1M count=16 seek=8 conv=notrunc status=none
bulwark-agent backup --state "$work/agent" --volume "$image"
dd if=/dev/urandom of="$image" bs=4096 count=8 seek=3000 conv=notrunc status=none
bulwark-agent backup --state "$work/agent" --volume "$image"
bulwark-agent restore --state "$work/agent" latest --to-volume "$work/restored.img"
cmp "$image" "$work/restored.img" && echo "== MATCH: the restored image is identical."

echo "== 8. The fleet: the agent service takes a signed command over the embedded MQTT broker"
bulwark-agent run --state "$work/agent" > "$work/agent-service.log" 2>&1 &
agent_pid=$!
agent_id=$(sed -n 's/.*"agentId": "\([^"]*\)".*/\1/p' "$work/agent/agent.json")
for _ in $(seq 1 100); do bulwark-gateway agents --dir "$work/site" --json | grep -q '"online"' && break; sleep 0.2; done
bulwark-gateway run --dir "$work/site" "$agent_id" backup --path "$sample"

echo "== Gateway view:"
bulwark-gateway agents --dir "$work/site"
bulwark-gateway points --dir "$work/site"
bulwark-gateway verify --dir "$work/site" --full
