#!/usr/bin/python3
"""The random bit-error trials of a faults block, as a PyTorch Monte Carlo.

The peer `make bench` times paracorr's bit-fault study against: the same
model (evaluated by the reference interpreter of tests/reference), the same
formats (make_faults_refs.Store: float32, float16, bfloat16, int8 per tensor
or per channel), the same number of trials at each bit error rate over the
whole model, each a full evaluation of the first --samples test images.
numpy's generator draws the flips (Binomial(exposed bits, ber), then which
bits), so the means agree with paracorr's within their sampling error, not
bit for bit. Prints one JSON object: per (format, ber) the row of
make_faults_refs.monte_carlo, and the seconds of the trials alone (after the
imports, the model and the data are loaded).

    /usr/bin/python3 tests/bench/torch_faults.py --model M.onnx --samples 2000 \\
        --formats float32,int8 --bers 1e-6,1e-4 --trials 20 --threads 2
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--formats", default="float32,int8")
    ap.add_argument("--quantization", default="per_tensor", choices=["per_tensor", "per_channel"])
    ap.add_argument("--bers", default="1e-6,1e-4")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    return ap.parse_args()


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, str(ARGS.threads))

try:
    import numpy as np
    import torch
    import make_fixtures as mf
    import make_faults_refs as mfr
except ImportError as e:
    sys.exit("torch_faults: %s (needs Debian's python3-torch, python3-onnx, python3-numpy: "
             "make deps-reference)" % e)

torch.use_deterministic_algorithms(False)
torch.set_num_threads(ARGS.threads)


def main():
    t0 = time.perf_counter()
    it = mf.Interpreter(ARGS.model)
    kind = it.output_kind()
    x = torch.from_numpy(mf.to_float(mf.read_idx(mf.TEST_IMAGES)))[:ARGS.samples]
    y = torch.from_numpy(mf.read_idx(mf.TEST_LABELS).astype(np.int64))[:ARGS.samples]
    clean = {n: p.detach().clone() for n, p in it.params.items()}
    axes = mfr.weight_axis(it.model)
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(ARGS.seed)
    rows, trials_s = [], 0.0
    for fmt in ARGS.formats.split(","):
        s = mfr.Store(clean, fmt, ARGS.quantization if fmt == "int8" else None, axes)
        for ber in [float(b) for b in ARGS.bers.split(",")]:
            t1 = time.perf_counter()
            row = mfr.monte_carlo(it, s, clean, x, y, kind, ber, ARGS.trials, rng)
            dt = time.perf_counter() - t1
            trials_s += dt
            rows.append(dict({"format": fmt, "seconds": dt}, **row))
    json.dump({"rows": rows, "trials_s": trials_s, "load_s": load_s, "threads": ARGS.threads,
               "torch": torch.__version__}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
