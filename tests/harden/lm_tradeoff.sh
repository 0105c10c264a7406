#!/usr/bin/env bash
# ACT on the LSTM language model (README.md, "Language models"): the
# fixture LSTM LM fine-tuned on 4,096 sequences of the licence texts it was
# trained on (tests/reference/make_lm_train.py) with ACT at several radii and
# without corruption (the control, epsilon 0), everything else as in
# api/examples/lm-lstm-harden.json (seed, data, Adam, epochs); each model is
# then studied on the 64 validation sequences under L2 gradient corruption
# and random corruption (5 trials). Prints a Markdown table of perplexities.
#
# usage: tests/harden/lm_tradeoff.sh [BUILD_DIR] [EPSILONS...]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
shift || true
epsilons=${*:-0 0.5 1}
out=$build/lm-harden
mkdir -p "$out"
zcat tests/reference/fixtures/zoo/lm_lstm_op17_preserve.onnx.gz > build/lm_lstm.onnx
: > "$out/seconds.txt"

for eps in $epsilons; do
	# the example spec with only act.epsilon changed
	python3 - "$eps" > "$out/spec-$eps.json" <<'PY'
import json, sys
s = json.load(open("api/examples/lm-lstm-harden.json"))
s["training"]["act"]["epsilon"] = float(sys.argv[1])
json.dump(s, sys.stdout, indent=1)
PY
	start=$(date +%s)
	"$build/paracorr" run --quiet --out "$out/model-$eps.onnx" "$out/spec-$eps.json" > "$out/report-$eps.json"
	echo "$eps $(($(date +%s) - start))" >> "$out/seconds.txt"
	"$build/paracorr" report "$out/report-$eps.json" > /dev/null # validates the report
done

python3 - "$out" $epsilons <<'PY'
import json, sys
out, epsilons = sys.argv[1], sys.argv[2:]
secs = dict(l.split() for l in open(out + "/seconds.txt"))
def row(name, study, sec):
    res = study["results"]
    cells = ["%.2f" % study["clean"]["perplexity"], "%.3f" % study["clean"]["accuracy"]]
    cells += ["%.2f" % r["gradient"]["perplexity"] for r in res]
    cells += ["%.3f" % r["random"]["perplexity_mean"] for r in res]
    print("| %s | %s | %s |" % (name, " | ".join(cells), sec))
first = json.load(open("%s/report-%s.json" % (out, epsilons[0])))
radii = [r["epsilon"] for r in first["before"]["results"]]
print("| model | clean perplexity | token accuracy | %s | %s | seconds |" % (
    " | ".join("gradient ε = %g" % e for e in radii), " | ".join("random ε = %g" % e for e in radii)))
print("|---" * (4 + 2 * len(radii)) + "|")
row("the fixture (before fine-tuning)", first["before"], "")
for eps in epsilons:
    rep = json.load(open("%s/report-%s.json" % (out, eps)))
    row("control (ε = 0)" if float(eps) == 0 else "ACT ε = %s" % eps, rep["after"], secs[eps])
PY
