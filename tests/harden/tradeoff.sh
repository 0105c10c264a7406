#!/usr/bin/env bash
# The ACT trade-off on Fashion-MNIST (README.md, "Hardening"): the fixture
# CNN fine-tuned on the 60,000 training images with ACT at several radii and
# without corruption (the control, epsilon 0), everything else equal (seed,
# data, optimiser, epochs); each model then studied on the 10,000 test
# images under L2 gradient-based corruption. Prints a Markdown table.
#
# usage: tests/harden/tradeoff.sh [BUILD_DIR] [EPSILONS...]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
shift || true
epsilons=${*:-0 0.1 0.2 0.3 0.5}
out=$build/harden-tradeoff
mkdir -p "$out"
fm=/usr/share/datasets/fashion-mnist
radii="0.25, 0.5, 1, 2"

for eps in $epsilons; do
	cat > "$out/spec-$eps.json" <<SPEC
{"kind": "harden", "model": "tests/reference/fixtures/cnn_op17.onnx",
 "dataset": {"inputs": "$fm/t10k-images-idx3-ubyte.gz", "labels": "$fm/t10k-labels-idx1-ubyte.gz"},
 "seed": 1,
 "corruption": {"norms": ["l2"], "epsilons": [$radii], "random_trials": 0, "groups": ["model"]},
 "training": {"dataset": {"inputs": "$fm/train-images-idx3-ubyte.gz", "labels": "$fm/train-labels-idx1-ubyte.gz"},
   "epochs": ${EPOCHS:-3}, "batch_size": 64, "optimizer": "sgd", "lr": ${LR:-0.01}, "momentum": 0.9,
   "schedule": "cosine", "act": {"norm": "l2", "epsilon": $eps, "lambda": ${LAMBDA:-1}}}}
SPEC
	start=$(date +%s)
	"$build/paracorr" run --quiet --out "$out/model-$eps.onnx" "$out/spec-$eps.json" > "$out/report-$eps.json"
	echo "$eps $(($(date +%s) - start))" >> "$out/seconds.txt"
done

# one row per model: clean accuracy, then accuracy under corruption per radius
printf '| training | clean accuracy |'
for r in ${radii//,/}; do printf ' ε = %s |' "$r"; done
printf ' seconds |\n|---|---|'
for r in ${radii//,/}; do printf -- '---|'; done
printf -- '---|\n'
for eps in $epsilons; do
	"$build/paracorr" report "$out/report-$eps.json" > /dev/null # validates the report
	row=$(sed -n '/=== after hardening ===/,$p' <("$build/paracorr" report "$out/report-$eps.json") |
		awk '/^clean:/ {gsub(",", "", $3); clean=$3} /^ +[0-9.]+ +[0-9.]+%/ {acc = acc " " $2 " |"} END {print clean " |" acc}')
	secs=$(awk -v e="$eps" '$1 == e {print $2}' "$out/seconds.txt" | tail -1)
	if [ "$eps" = 0 ]; then name="control (ε = 0)"; else name="ACT ε = $eps"; fi
	printf '| %s | %s %.0f |\n' "$name" "$row" "$secs"
done
before=$(sed -n '/=== before hardening ===/,/=== after/p' <("$build/paracorr" report "$out/report-$(echo $epsilons | cut -d' ' -f1).json") |
	awk '/^clean:/ {gsub(",", "", $3); clean=$3} /^ +[0-9.]+ +[0-9.]+%/ {acc = acc " " $2 " |"} END {print clean " |" acc}')
printf '| the fixture before fine-tuning | %s |\n' "$before"
