#!/usr/bin/env bash
# Runs libFuzzer targets one after another (make fuzz; tests/fuzz/README.md):
#   tests/fuzz/run.sh BUILD SECONDS TARGET...
# Each target starts from its seeds (BUILD/fuzz/seeds/<target>: the
# committed tests/fuzz/corpus/<target>/, what gen_seeds makes, the
# fixtures), keeps what it finds in BUILD/fuzz/corpus/<target>/ across
# runs, and runs SECONDS seconds in one process (the machine is shared)
# with -rss_limit_mb=2048. A crash, leak, UB report, timeout or OOM leaves
# its input in BUILD/fuzz/crashes/ and makes the script exit 1 after the
# other targets have run. Prints each target's executions and exec/s.
set -uo pipefail
cd "$(dirname "$0")/../.."
build=$1 seconds=$2
shift 2
root=$build/fuzz
mkdir -p "$root/crashes"

# the seeds, rebuilt from the tree each run
rm -rf "$root/seeds"
mkdir -p "$root/seeds"
"$root/gen_seeds" "$root/seeds" || exit 1
for d in tests/fuzz/corpus/*/; do
	t=$(basename "$d")
	mkdir -p "$root/seeds/$t"
	cp "$d"* "$root/seeds/$t/"
done
max_onnx=262144
for f in tests/reference/fixtures/*.onnx; do
	[ "$(stat -c %s "$f")" -le $max_onnx ] && cp "$f" "$root/seeds/onnx/"
done
for f in tests/reference/fixtures/zoo/*.onnx.gz; do
	out=$root/seeds/onnx/$(basename "$f" .gz)
	gzip -dc "$f" >"$out"
	[ "$(stat -c %s "$out")" -le $max_onnx ] || rm -f "$out"
done
mkdir -p "$root/seeds/spec" "$root/seeds/settings" "$root/seeds/charts"
cp api/examples/*.json "$root/seeds/spec/"
rm -f "$root/seeds/spec/demo-report.json"
cp api/examples/demo-report.json "$root/seeds/charts/"
cp config/paracorr.conf "$root/seeds/settings/"

# per target: -max_len, and the dictionary
max_len() {
	case $1 in
	onnx) echo $max_onnx ;;
	http) echo 131072 ;; # a large upload; the target interleaves its sends with MHD
	data | charts) echo 65536 ;;
	*) echo 16384 ;;
	esac
}
dict() {
	case $1 in
	onnx) echo tests/fuzz/onnx.dict ;;
	http) echo tests/fuzz/http.dict ;;
	spec | charts) echo tests/fuzz/json.dict ;;
	esac
}

failed=0
summary=""
for t in "$@"; do
	bin=$root/fuzz_$t
	log=$root/$t.log
	d=$(dict "$t")
	mkdir -p "$root/corpus/$t"
	echo "fuzz: $t for $seconds s (log $log)"
	# http: the daemon's request log lines go to /dev/null (-close_fd_mask=2
	# keeps libFuzzer's and the sanitizers' reports); its data directory on
	# tmpfs when there is one, since every upload's blob and SQLite commit
	# syncs (three times the executions per second of a disk)
	tmp=${TMPDIR:-/tmp}
	[ "$t" = http ] && [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && tmp=/dev/shm
	TMPDIR=$tmp "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len="$(max_len "$t")" -timeout=30 \
		-print_final_stats=1 -artifact_prefix="$root/crashes/$t-" ${d:+-dict=$d} \
		$([ "$t" = http ] && echo -close_fd_mask=2) \
		"$root/corpus/$t" "$root/seeds/$t" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	line=$(printf '%-9s %12s executions %8s exec/s' "$t" "${runs:-?}" "${rate:-?}")
	if [ $rc -ne 0 ]; then
		failed=1
		line="$line  FAILED (rc $rc): $(ls -t "$root/crashes/$t-"* 2>/dev/null | head -1)"
		grep -m3 -E 'ERROR|SUMMARY|runtime error|==[0-9]+==' "$log"
	fi
	echo "fuzz: $line"
	summary="$summary$line"$'\n'
done
echo "fuzz: summary ($seconds s each)"
printf '%s' "$summary"
exit $failed
