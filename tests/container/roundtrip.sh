#!/bin/sh
# The container image as a user runs it (tests/test_container.c runs this):
# a container on the host's network listening on a free loopback port, its
# HEALTHCHECK reporting healthy, a study submitted through it with the
# host's CLI, a SIGTERM stop that exits 0 after draining, and a second
# container on the same volume serving the same job and the same report.
# Every wait is bounded; the containers and the volume are removed on exit
# (the image stays, so the next build is cached).
#   tests/container/roundtrip.sh IMAGE CLI PORT
# Prints "container: ok ..." last on success; exits 1 naming the failed step.
set -eu

image=$1
cli=$2
port=$3
tag=paracorr-ct-$$
vol=$tag-data
work=$(mktemp -d /tmp/paracorr-ct.XXXXXX)
server=http://127.0.0.1:$port
current=

cleanup() {
	docker rm -f "$tag-a" "$tag-b" >/dev/null 2>&1 || true
	docker volume rm -f "$vol" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "container: FAIL: $*"
	if [ -n "$current" ]; then
		echo "container: the last lines of $current's log:"
		docker logs --tail 20 "$current" 2>&1 | sed 's/^/    /'
	fi
	exit 1
}

# starts a container on the volume and waits (at most 90 s) for Docker's
# health check to say healthy
start() {
	current=$1
	docker run -d --name "$1" --network host -e PARACORR_LISTEN=127.0.0.1 -e PARACORR_PORT="$port" \
		-v "$vol:/var/lib/paracorr" "$image" >/dev/null || fail "docker run $1"
	t0=$(date +%s)
	while :; do
		state=$(docker inspect -f '{{.State.Status}} {{.State.Health.Status}}' "$1") || fail "docker inspect $1"
		case $state in
		"running healthy") break ;;
		"running unhealthy") fail "$1's health check reports unhealthy" ;;
		running*) ;;
		*) fail "$1 is $state before it was healthy" ;;
		esac
		[ $(($(date +%s) - t0)) -lt 90 ] || fail "$1 not healthy within 90 s ($state)"
		sleep 1
	done
	echo "container: $1 healthy after $(($(date +%s) - t0)) s"
}

# stops a container with SIGTERM (docker stop's signal, the image's
# STOPSIGNAL) and checks it drained and exited 0 within the grace period
stop() {
	docker stop -t 30 "$1" >/dev/null || fail "docker stop $1"
	code=$(docker inspect -f '{{.State.ExitCode}}' "$1")
	[ "$code" = 0 ] || fail "$1 exited with status $code after SIGTERM"
	docker logs "$1" 2>&1 | grep -q 'msg=stopped' || fail "$1 did not log its drained stop"
}

cat >"$work/spec.json" <<EOF
{"kind": "analyze", "model": "tests/reference/fixtures/cnn_op17.onnx",
 "dataset": {"inputs": "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
             "labels": "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"},
 "limit": 500, "seed": 1,
 "corruption": {"groups": ["model"], "norms": ["l2"], "epsilons": [0.5, 2.0], "random_trials": 2}}
EOF

start "$tag-a"
"$cli" submit "$work/spec.json" --quiet --server "$server" -o "$work/job.json" || fail "paracorr submit"
job=$(sed -n 's/^  "id": *"\([^"]*\)".*/\1/p' "$work/job.json" | head -n 1)
[ -n "$job" ] || fail "no job id in the submit answer: $(head -c 300 "$work/job.json")"
timeout 300 "$cli" fetch "$job" --wait --quiet --server "$server" -o "$work/first.json" || fail "paracorr fetch $job"
grep -q '"accuracy"' "$work/first.json" || fail "the report has no accuracy"
stop "$tag-a"

start "$tag-b"
"$cli" status "$job" --server "$server" >"$work/status.json" || fail "paracorr status $job on the second container"
grep -q '"status": *"succeeded"' "$work/status.json" || fail "job $job is not succeeded on the second container"
"$cli" fetch "$job" --quiet --server "$server" -o "$work/second.json" || fail "paracorr fetch $job on the second container"
cmp -s "$work/first.json" "$work/second.json" || fail "the second container serves a different report"
stop "$tag-b"

size=$(docker image inspect -f '{{.Size}}' "$image")
echo "container: ok (image $image $((size / 1000000)) MB; job $job ran, survived the SIGTERM stop, and was served again by a new container on the volume)"
