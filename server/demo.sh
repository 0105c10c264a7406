#!/usr/bin/env bash
# make demo: the daemon with its defaults, the fixture CNN and the 10,000
# Fashion-MNIST test images uploaded, a corruption study submitted and
# followed, the result as a table, and the dashboard's address. The daemon
# keeps running until Ctrl-C; DEMO_EXIT=1 stops it once the study is done
# (CI). DEMO_PORT picks the port (default 8080, or the next free one).
#
# usage: server/demo.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build}
spec=api/examples/demo-cnn.json
data_dir=$build/demo-data
port=${DEMO_PORT:-8080}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# the first free port from the one asked for
for _ in $(seq 20); do
	port_busy "$port" || break
	port=$((port + 1))
done
if port_busy "$port"; then
	echo "demo: no free port from ${DEMO_PORT:-8080} on" >&2
	exit 1
fi
server=http://127.0.0.1:$port

mkdir -p "$data_dir"
"$build/paracorrd" --data-dir "$data_dir" --port "$port" 2>"$build/demo-daemon.log" &
daemon=$!
stop() { kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true; }
trap stop EXIT
trap 'echo; echo "demo: stopping the daemon"; exit 0' INT TERM

for _ in $(seq 100); do
	port_busy "$port" && break
	kill -0 "$daemon" 2>/dev/null || { cat "$build/demo-daemon.log" >&2; exit 1; }
	sleep 0.1
done
echo "demo: paracorrd is listening on $server (log: $build/demo-daemon.log)"

# uploads and the job; then its progress, the report, the tables
job=$("$build/paracorr" submit --server "$server" "$spec" | sed -n 's/^  "id": "\(j-[0-9a-f]*\)".*/\1/p')
[ -n "$job" ] || { echo "demo: the job was not accepted" >&2; exit 1; }
"$build/paracorr" fetch --server "$server" --wait -o "$build/demo-report.json" "$job"
echo
"$build/paracorr" report "$build/demo-report.json"
"$build/paracorr" fetch --server "$server" --chart accuracy -o "$build/demo-accuracy.svg" "$job"
echo
echo "report:    $build/demo-report.json (paracorr report $build/demo-report.json)"
echo "chart:     $build/demo-accuracy.svg"
echo "dashboard: $server/#/jobs/$job"

if [ "${DEMO_EXIT:-0}" = 1 ]; then
	exit 0
fi
echo "demo: the daemon keeps running; Ctrl-C stops it"
wait "$daemon"
