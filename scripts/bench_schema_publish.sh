#!/usr/bin/env bash
# Single-event CLI publish latency with and without a payload schema.
# Usage: scripts/bench_schema_publish.sh [RUNS]   (builds the release binary first)
# Prints the median and p95 wall time of `gitmesh mesh-publish` over RUNS interleaved runs for:
#   schema:    scheduling/task.enqueued (built-in schema, compiled on each run)
#   no-schema: audit/login.seen (no schema known)
#   ledger:    the same as "schema" with 20 extra publisher-signed schemas from the ledger
set -euo pipefail
runs="${1:-200}"
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin="$PWD/target/release/gitmesh"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

one() { # label root topic type payload: time one publish, append ns to label's file
    local t0 t1
    t0=$(date +%s%N)
    "$bin" --root "$2" mesh-publish --topic "$3" --event-type "$4" --payload-json "$5" > /dev/null
    t1=$(date +%s%N)
    echo $((t1 - t0)) >> "$tmp/$1.ns"
}

report() { # label
    sort -n "$tmp/$1.ns" | awk -v label="$1" '
        { v[NR] = $1 }
        END { printf "%-10s runs %d  median %.2f ms  p95 %.2f ms\n", label, NR,
              v[int((NR + 1) / 2)] / 1e6, v[int(NR * 0.95)] / 1e6 }'
}

"$bin" --root "$tmp/a" mesh-init --node-id bench-a > /dev/null
"$bin" --root "$tmp/b" mesh-init --node-id bench-b > /dev/null
# Node b uses 20 more schemas from the ledger: it signs and publishes them (as the first
# node of its mesh it is a schema publisher), syncs so its import verifies and keeps them,
# then drops its local override copies so the ledger's are the ones read.
src="$tmp/src"
for i in $(seq 1 20); do
    mkdir -p "$src/bench/type$i.seen"
    echo '{"type": "object", "required": ["id"]}' > "$src/bench/type$i.seen/v1.json"
done
"$bin" --root "$tmp/b" schema publish "$src" > /dev/null
"$bin" --root "$tmp/b" mesh-sync > /dev/null
"$bin" --root "$tmp/b" mesh-sync > /dev/null
rm -rf "$tmp/b/state/event_mesh/schemas"
"$bin" --root "$tmp/b" --json schema list | grep -q '"source":"ledger"'

task='{"task_id":"t-1","routing_options":[{"score":1,"healthy":true}]}'
# Interleaved, so load from other processes affects the three cases alike.
for ((i = 0; i < runs; i++)); do
    one schema "$tmp/a" scheduling task.enqueued "$task"
    one no-schema "$tmp/a" audit login.seen '{"user":"ann"}'
    one ledger "$tmp/b" scheduling task.enqueued "$task"
done
report schema
report no-schema
report ledger
