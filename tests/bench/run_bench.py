#!/usr/bin/python3
"""`make bench`: paracorr against PyTorch on the same study, Conv against sgemm.

    /usr/bin/python3 tests/bench/run_bench.py [--build build] [--models mlp,cnn,resnet]
                                              [--threads 1,2] [--skip-gemm]

For each model of tests/bench/specs/ and each thread count T:
  - paracorr: `BUILD/paracorr run --quiet --threads T SPEC`, timed as a whole
    process (wall clock: start-up, ONNX and dataset load, study, report);
  - PyTorch: tests/bench/torch_study.py on the same model, data, batch size,
    epsilons and trials (read from the spec), timed inside the process from
    after its imports (model and dataset load + study), with
    OMP/MKL/OPENBLAS_NUM_THREADS=T and torch.set_num_threads(T). PyTorch calls
    the same OpenBLAS for its matrix products; it is given the same kernel
    class paracorr selects on this CPU (OPENBLAS_CORETYPE, see
    server/blas_select.h), so neither side runs the slow fallback kernels.
The two run back to back, model by model, so background load hits both alike.
Each run's peak RSS is the child's ru_maxrss (os.wait4): for PyTorch it
includes the interpreter and `import torch`, which the time does not.

The language models (specs lm_lstm, lm_gpt): the preserve exports of
tests/reference/make_lm.py, gunzipped to BUILD/bench/ at bench time; their
dataset is made here too, larger than the 64 committed validation sequences
so the timing means something: every licence text of /usr/share/common-licenses
(symbolic links left out), in name order, encoded with the model's character
vocabulary (the fixture JSON's "vocabulary": make_lm.py's, unknown
characters 0), cut into sequences of the model's 32 tokens, labels the next
character; the last sequence is short, its padding labelled -100. A spec
names these files with the prefix "BENCH/" (BUILD/bench/), and run_bench.py
gives paracorr a copy of the spec with the paths resolved.

Cross-check: clean loss and accuracy, gradient norms (model and per tensor),
first-order estimates and the realised loss and accuracy of every gradient
corruption must agree within 1e-3 relative between paracorr and PyTorch (and
between paracorr at different thread counts). Random trials use different
generators, so only their means are shown, never compared.

Then the curvature costs (BUILD/tests/bench/curv_bench: a Hessian-vector
product in gradient passes; the critical-radius search's evaluations per
setting), and BUILD/tests/bench/gemm_bench: sgemm and paracorr Conv GFLOPS.

Never fails on speed. Exits non-zero when a run fails or the cross-check
disagrees. The table goes to stdout and BUILD/bench.txt; raw reports to
BUILD/bench/.
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PYTHON = "/usr/bin/python3"
TOLERANCE = 1e-3
MODELS = ("mlp", "cnn", "resnet", "lm_lstm", "lm_gpt")
TV_MODELS = ("resnet18", "mobilenet_v2")
TV_SAMPLES = 1000
LICENSES = "/usr/share/common-licenses"
LM_VOCABULARY = os.path.join("tests", "reference", "fixtures", "zoo", "lm_lstm_op17_preserve.json")
LM_T = 32
IGNORE = -100


class BenchError(Exception):
    pass


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--skip-gemm", action="store_true")
    ap.add_argument("--skip-faults", action="store_true",
                    help="leave out the bit-fault tables (random bit errors against PyTorch, the bit search)")
    ap.add_argument("--skip-curvature", action="store_true",
                    help="leave out the curvature tables (HVP cost, critical-radius evaluations)")
    ap.add_argument("--tv-models", default=",".join(TV_MODELS),
                    help="torchvision models for the eval bench (empty: none)")
    return ap.parse_args()


def check_torch():
    try:
        r = subprocess.run([PYTHON, "-c", "import torch, onnx, numpy; print(torch.__version__)"],
                           capture_output=True, text=True)
    except OSError as e:
        raise BenchError("cannot run %s: %s" % (PYTHON, e))
    if r.returncode != 0:
        raise BenchError("%s cannot import torch, onnx and numpy (%s); install Debian's "
                         "python3-torch python3-onnx python3-numpy (make deps-reference)"
                         % (PYTHON, r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "?"))
    return r.stdout.strip()


def run_measured(cmd, env=None, what=""):
    """(stdout, wall seconds, peak RSS in MiB) of one child process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if p.returncode != 0:
        raise BenchError("%s failed (exit %d): %s\n%s" % (what or cmd[0], p.returncode, " ".join(cmd),
                                                           stderr.strip()[-3000:]))
    return stdout, wall, usage.ru_maxrss / 1024.0  # Linux: kilobytes


def run_timed(cmd, env=None, what=""):
    stdout, wall, _ = run_measured(cmd, env, what)
    return stdout, wall


def make_lm_dataset(outdir):
    """BUILD/bench/lm_tokens_i64.npy and lm_labels_i64.npy (see the docstring)."""
    import numpy as np
    with open(os.path.join(ROOT, LM_VOCABULARY), encoding="utf-8") as f:
        vocab = json.load(f)["vocabulary"]
    stoi = {c: i for i, c in enumerate(vocab) if c is not None}
    text = ""
    for name in sorted(os.listdir(LICENSES)):
        path = os.path.join(LICENSES, name)
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text += f.read()
    ids = np.array([stoi.get(c, 0) for c in text], dtype=np.int64)
    if len(ids) < 2 * LM_T + 2:
        raise BenchError("%s: %d characters, too few for a language-model dataset" % (LICENSES, len(ids)))
    # full sequences, then one short one so the ignored labels are exercised
    full = (len(ids) - 1) // LM_T - 1
    last = (len(ids) - 1 - full * LM_T) // 2
    n = full + 1
    x = np.zeros((n, LM_T), dtype=np.int64)
    y = np.full((n, LM_T), IGNORE, dtype=np.int64)
    x[:full] = ids[:full * LM_T].reshape(full, LM_T)
    y[:full] = ids[1:full * LM_T + 1].reshape(full, LM_T)
    x[full, :last] = ids[full * LM_T:full * LM_T + last]
    y[full, :last] = ids[full * LM_T + 1:full * LM_T + last + 1]
    np.save(os.path.join(ROOT, outdir, "lm_tokens_i64.npy"), x)
    np.save(os.path.join(ROOT, outdir, "lm_labels_i64.npy"), y)
    return n


def resolve_spec(m, path, spec, outdir):
    """The spec paracorr runs: gunzipped model and BENCH/ data under outdir."""
    def resolve(p):
        return os.path.join(outdir, p[len("BENCH/"):]) if p.startswith("BENCH/") else p
    spec = dict(spec)
    spec["dataset"] = {k: resolve(v) for k, v in spec["dataset"].items()}
    if spec["model"].endswith(".gz"):
        plain = os.path.join(outdir, os.path.basename(spec["model"])[:-len(".gz")])
        with gzip.open(os.path.join(ROOT, spec["model"])) as f, open(os.path.join(ROOT, plain), "wb") as g:
            g.write(f.read())
        spec["model"] = plain
    if spec == dict(json.load(open(os.path.join(ROOT, path)))):
        return path, spec
    resolved = os.path.join(outdir, m + ".json")
    with open(os.path.join(ROOT, resolved), "w") as f:
        json.dump(spec, f, indent=1)
    return resolved, spec


def spec_settings(spec):
    """Arguments of torch_study.py that mirror the spec; refuses any spec
    the torch side does not implement."""
    blocks = spec["corruption"]
    blocks = blocks if isinstance(blocks, list) else [blocks]
    model = [b for b in blocks if b.get("groups") == ["model"]]
    tensor = [b for b in blocks if b.get("groups") == ["tensor"]]
    if len(model) != 1 or len(tensor) != 1 or len(blocks) != 2:
        raise BenchError("bench spec: want one model block and one tensor block")
    for b in blocks:
        if b.get("norms") != ["l2"] or b.get("sparsity", [0]) != [0] or b.get("steps", 1) != 1:
            raise BenchError("bench spec: the torch side does dense one-step L2 only")
    if len(tensor[0]["epsilons"]) != 1 or tensor[0].get("random_trials", 0) != 0:
        raise BenchError("bench spec: the tensor block has one epsilon and no random trials")
    return ["--batch", str(spec["batch_size"]), "--limit", str(spec["limit"]),
            "--epsilons", ",".join(repr(float(e)) for e in model[0]["epsilons"]),
            "--trials", str(model[0]["random_trials"]),
            "--tensor-epsilon", repr(float(tensor[0]["epsilons"][0])),
            "--seed", str(spec.get("seed", 1)),
            "--inputs", spec["dataset"]["inputs"], "--labels", spec["dataset"]["labels"]]


def rel(a, b):
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


class Comparison:
    """The largest relative disagreement seen, and where."""

    def __init__(self):
        self.worst = 0.0
        self.where = "nothing compared"
        self.count = 0
        self.failures = []

    def add(self, where, a, b):
        if a is None or b is None:
            self.failures.append("%s: missing (%r vs %r)" % (where, a, b))
            return
        d = rel(float(a), float(b))
        self.count += 1
        if d > self.worst or self.count == 1:
            self.worst, self.where = d, "%s (%.9g vs %.9g)" % (where, a, b)
        if d > TOLERANCE:
            self.failures.append("%s: %.9g vs %.9g (rel %.2e)" % (where, a, b, d))


def get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def rows_by(report):
    model, tensor = {}, {}
    for r in report.get("results", []):
        if r.get("norm") != "l2" or r.get("sparsity") != 0:
            continue
        if r["group"] == "model":
            model[float(r["epsilon"])] = r
        elif r["group"].startswith("tensor:"):
            tensor[r["group"][len("tensor:"):]] = r
    return model, tensor


def compare_torch(cmp, tag, rep, tr):
    cmp.add(tag + " clean.loss", get(rep, "clean", "loss"), tr["clean"]["loss"])
    cmp.add(tag + " clean.accuracy", get(rep, "clean", "accuracy"), tr["clean"]["accuracy"])
    cmp.add(tag + " gradient.l2", get(rep, "gradient", "model", "l2"), tr["gradient"]["l2"])
    for name, v in tr["gradient"]["tensors"].items():
        cmp.add("%s gradient[%s].l2" % (tag, name), get(rep, "gradient", "tensors", name, "l2"), v)
    model, tensor = rows_by(rep)
    for row in tr["model_rows"]:
        r = model.get(row["epsilon"])
        w = "%s model eps %g" % (tag, row["epsilon"])
        if r is None:
            cmp.failures.append(w + ": no such row in the paracorr report")
            continue
        cmp.add(w + " first_order", r.get("first_order"), row["first_order"])
        cmp.add(w + " gradient.loss", get(r, "gradient", "loss"), row.get("loss"))
        cmp.add(w + " gradient.accuracy", get(r, "gradient", "accuracy"), row.get("accuracy"))
    for row in tr["tensor_rows"]:
        r = tensor.get(row["tensor"])
        w = "%s tensor %s" % (tag, row["tensor"])
        if r is None:
            cmp.failures.append(w + ": no such row in the paracorr report")
            continue
        cmp.add(w + " first_order", r.get("first_order"), row["first_order"])
        if "loss" in row:
            cmp.add(w + " gradient.loss", get(r, "gradient", "loss"), row["loss"])
            cmp.add(w + " gradient.accuracy", get(r, "gradient", "accuracy"), row["accuracy"])
    if len(tensor) != len(tr["tensor_rows"]):
        cmp.failures.append("%s: paracorr has %d tensor rows, torch %d"
                            % (tag, len(tensor), len(tr["tensor_rows"])))


def compare_reports(cmp, tag, a, b):
    """paracorr against itself at another thread count: every number but timing."""
    cmp.add(tag + " clean.loss", get(a, "clean", "loss"), get(b, "clean", "loss"))
    cmp.add(tag + " clean.accuracy", get(a, "clean", "accuracy"), get(b, "clean", "accuracy"))
    ra, rb = a.get("results", []), b.get("results", [])
    if len(ra) != len(rb):
        cmp.failures.append("%s: %d result rows vs %d" % (tag, len(ra), len(rb)))
        return
    for x, y in zip(ra, rb):
        w = "%s %s eps %g" % (tag, x["group"], x["epsilon"])
        cmp.add(w + " gradient.loss", get(x, "gradient", "loss"), get(y, "gradient", "loss"))
        if isinstance(x.get("random"), dict):
            cmp.add(w + " random.loss_mean", get(x, "random", "loss_mean"), get(y, "random", "loss_mean"))


def bench_torchvision(emit, paracorr, outdir, models, threads, corename, cmp, failures):
    """`paracorr eval` against PyTorch's forward and backward on torchvision models."""
    tv = os.path.join("tests", "bench", "torchvision_eval.py")
    emit("")
    emit("eval on torchvision models (random weights, %d inputs of 3x32x32, batch 256): paracorr_s: the whole "
         "`paracorr eval` process; torch_s: forward + backward + loss + accuracy in PyTorch, without its "
         "loading; ratio = torch_s / paracorr_s (above 1: paracorr is faster)" % TV_SAMPLES)
    emit("%-13s %7s %11s %9s %6s %7s %7s" % ("model", "threads", "paracorr_s", "torch_s", "ratio", "p_MiB",
                                             "t_MiB"))
    for m in models:
        try:
            run_timed([PYTHON, tv, "--make", outdir, "--model", m, "--samples", str(TV_SAMPLES)],
                      what="torchvision_eval --make " + m)
        except BenchError as e:
            failures.append(str(e))
            emit("%-13s  FAILED: %s" % (m, str(e).splitlines()[0]))
            continue
        for t in threads:
            tag = "%s/%dt" % (m, t)
            try:
                out, p_wall, p_rss = run_measured(
                    [paracorr, "eval", "--model", os.path.join(outdir, m + ".onnx"),
                     "--inputs", os.path.join(outdir, "tv_x.npy"), "--labels", os.path.join(outdir, "tv_y.npy"),
                     "--threads", str(t), "--batch-size", "256"], what="paracorr eval " + tag)
                rep = json.loads(out)
                env = dict(os.environ)
                for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                    env[var] = str(t)
                env["OPENBLAS_CORETYPE"] = corename
                tout, _, t_rss = run_measured([PYTHON, tv, "--time", "--dir", outdir, "--model", m,
                                               "--threads", str(t), "--batch", "256"],
                                              env=env, what="torchvision_eval " + tag)
                tr = json.loads(tout)
            except (BenchError, ValueError) as e:
                failures.append(str(e))
                emit("%-13s %7d  FAILED: %s" % (m, t, str(e).splitlines()[0]))
                continue
            # The export folds each BatchNorm into its Conv, so the two sides'
            # parameters differ and only loss and accuracy are compared.
            cmp.add("%s clean loss" % tag, rep["loss"], tr["loss"])
            cmp.add("%s clean accuracy" % tag, rep["accuracy"], tr["accuracy"])
            emit("%-13s %7d %11.2f %9.2f %6.2f %7.0f %7.0f" % (m, t, p_wall, tr["seconds"],
                                                              tr["seconds"] / p_wall, p_rss, t_rss))


# the worst-case bit search: fixture, Fashion-MNIST test images it searches on
SEARCH_MODELS = [("cnn_op17", 512), ("mlp_op13", 512), ("resnet_op17", 256)]
SEARCH_FORMATS = ["int8", "float16", "float32"]
SEARCH_TARGET = 0.1
SEARCH_MAX_FLIPS = 40


def bench_bitsearch(emit, paracorr, outdir, failures):
    """Flips to the target accuracy, plain BFA against paracorr's search."""
    emit("")
    emit("worst-case bit search (faults.search, int8 per tensor, target accuracy %g, at most %d flips; "
         "flips: committed, '>' when the target was not reached; s: the whole `paracorr run`, 2 threads)"
         % (SEARCH_TARGET, SEARCH_MAX_FLIPS))
    emit("%-12s %7s %8s %6s %6s %8s %8s" % ("model", "images", "format", "bfa", "best", "bfa_s", "best_s"))
    for model, n in SEARCH_MODELS:
        flips, secs = {}, {}
        for method in ("bfa", "best"):
            spec = {"model": os.path.join("tests", "reference", "fixtures", model + ".onnx"),
                    "dataset": {"inputs": "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
                                "labels": "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"},
                    "limit": n, "seed": 1, "corruption": [],
                    "faults": {"formats": SEARCH_FORMATS, "groups": ["model"],
                               "search": {"target_accuracy": SEARCH_TARGET, "max_flips": SEARCH_MAX_FLIPS,
                                          "method": method}}}
            path = os.path.join(outdir, "search_%s_%s.json" % (model, method))
            with open(os.path.join(ROOT, path), "w") as f:
                json.dump(spec, f)
            try:
                out, wall, _ = run_measured([paracorr, "run", "--quiet", "--reproducible", "--threads", "2", path],
                                            what="paracorr search %s/%s" % (model, method))
                rep = json.loads(out)
            except (BenchError, ValueError) as e:
                failures.append(str(e))
                emit("%-12s  FAILED: %s" % (model, str(e).splitlines()[0]))
                break
            secs[method] = wall
            for row in rep["faults"]["search"]:
                k = len(row["flips"])
                flips[(method, row["format"])] = ("%d" % k) if row["reached"] else (">%d" % k)
        if len(secs) < 2:
            continue
        for i, fmt in enumerate(SEARCH_FORMATS):
            emit("%-12s %7d %8s %6s %6s %8s %8s" % (
                model if i == 0 else "", n, fmt, flips.get(("bfa", fmt), "?"), flips.get(("best", fmt), "?"),
                "%.2f" % secs["bfa"] if i == 0 else "", "%.2f" % secs["best"] if i == 0 else ""))


# random bit errors: the same trials by paracorr and by a PyTorch Monte Carlo
FAULTS_MODEL = "cnn_op17"
FAULTS_SAMPLES = 2000
FAULTS_FORMATS = ["float32", "int8"]
FAULTS_BERS = [1e-6, 1e-5, 1e-4, 1e-3]
FAULTS_TRIALS = 20


def bench_faults(emit, paracorr, outdir, threads, corename, failures):
    """The faults block's random trials against tests/bench/torch_faults.py."""
    emit("")
    emit("random bit errors (%s, %d images, %s, ber %s, %d trials each, whole model): paracorr_s: the whole "
         "`paracorr run`; study_s: its timing.seconds; torch_s: torch_faults.py's trials alone (no load); "
         "ratio = torch_s / study_s (above 1: paracorr is faster); passes: paracorr's faults.passes of %d trials "
         "(a trial that flips nothing costs none), resumed: of them from a cached prefix"
         % (FAULTS_MODEL, FAULTS_SAMPLES, "/".join(FAULTS_FORMATS), ",".join("%g" % b for b in FAULTS_BERS),
            FAULTS_TRIALS, len(FAULTS_FORMATS) * len(FAULTS_BERS) * FAULTS_TRIALS))
    emit("%-8s %11s %9s %9s %6s %7s %8s" % ("threads", "paracorr_s", "study_s", "torch_s", "ratio", "passes",
                                             "resumed"))
    model = os.path.join("tests", "reference", "fixtures", FAULTS_MODEL + ".onnx")
    spec = {"model": model,
            "dataset": {"inputs": "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
                        "labels": "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"},
            "limit": FAULTS_SAMPLES, "seed": 1, "corruption": [],
            "faults": {"formats": FAULTS_FORMATS, "ber": FAULTS_BERS, "trials": FAULTS_TRIALS, "groups": ["model"]}}
    path = os.path.join(outdir, "faults_random.json")
    with open(os.path.join(ROOT, path), "w") as f:
        json.dump(spec, f)
    means = []
    for t in threads:
        try:
            out, p_wall, _ = run_measured([paracorr, "run", "--quiet", "--threads", str(t), path],
                                          what="paracorr faults/%dt" % t)
            rep = json.loads(out)
            env = dict(os.environ)
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env[var] = str(t)
            env["OPENBLAS_CORETYPE"] = corename
            tout, _, _ = run_measured([PYTHON, os.path.join("tests", "bench", "torch_faults.py"), "--model", model,
                                       "--samples", str(FAULTS_SAMPLES), "--formats", ",".join(FAULTS_FORMATS),
                                       "--bers", ",".join("%g" % b for b in FAULTS_BERS),
                                       "--trials", str(FAULTS_TRIALS), "--threads", str(t)],
                                      env=env, what="torch_faults %dt" % t)
            tr = json.loads(tout)
        except (BenchError, ValueError) as e:
            failures.append(str(e))
            emit("%-8d  FAILED: %s" % (t, str(e).splitlines()[0]))
            continue
        study_s = get(rep, "timing", "seconds") or float("nan")
        emit("%-8d %11.2f %9.2f %9.2f %6.2f %7d %8d" % (t, p_wall, study_s, tr["trials_s"], tr["trials_s"] / study_s,
                                                      rep["faults"]["passes"], rep["faults"]["resumed"]))
        if not means:
            for row in tr["rows"]:
                mine = [r for r in rep["faults"]["random"]
                        if r["format"] == row["format"] and r["ber"] == row["ber"] and r["group"] == "model"]
                if mine:
                    means.append("%s %g: %.4f/%.4f" % (row["format"], row["ber"], mine[0]["accuracy_mean"],
                                                        row["accuracy_mean"]))
    if means:
        emit("  accuracy means paracorr/torch (independent draws): " + ", ".join(means))


CURV_MODELS = ("cnn_op17", "resnet_op17")
CURV_SAMPLES = 1000
CRITICAL_SAMPLES = 2000


def bench_curvature(emit, paracorr, curv, outdir, threads, failures):
    """Issue 16's two costs: a Hessian-vector product in gradient passes
    (curv_bench, both measured side by side in one process), and the
    evaluations the critical-radius search takes per setting."""
    emit("")
    emit("Hessian-vector product (curv_bench, %d images, batch 100, whole model): grad_s = one clean gradient pass "
         "(forward + backward), hvp_s = one product (a gate-recording forward + two forward and backward passes); "
         "ratio = hvp_s / grad_s (the target: at most 2.5)" % CURV_SAMPLES)
    emit("%-12s %-8s %8s %10s %10s %8s" % ("model", "threads", "samples", "grad_s", "hvp_s", "ratio"))
    data = ["/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
            "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"]
    for m in CURV_MODELS:
        model = os.path.join("tests", "reference", "fixtures", m + ".onnx")
        try:
            out, _ = run_timed([curv, model] + data + ["--samples", str(CURV_SAMPLES), "--threads",
                                                       ",".join(str(t) for t in threads)], what="curv_bench " + m)
        except BenchError as e:
            failures.append(str(e))
            emit("%-12s FAILED: %s" % (m, str(e).splitlines()[0]))
            continue
        for line in out.rstrip("\n").split("\n")[1:]:
            emit("%-12s %s" % (m, line))

    emit("")
    emit("critical radius (cnn_op17, %d images, accuracy_drop 0.05, tolerance 1%%, groups model + layer, l2 and "
         "linf, 3 random trials): evaluations per setting, gradient and random (the target: at most 12 at 1%%)"
         % CRITICAL_SAMPLES)
    spec = {"model": os.path.join("tests", "reference", "fixtures", "cnn_op17.onnx"),
            "dataset": {"inputs": data[0], "labels": data[1]}, "limit": CRITICAL_SAMPLES, "seed": 1,
            "corruption": {"groups": ["model", "layer"], "norms": ["l2", "linf"], "epsilons": [0.1],
                           "random_trials": 3, "critical": {"accuracy_drop": 0.05}}}
    path = os.path.join(outdir, "critical.json")
    with open(os.path.join(ROOT, path), "w") as f:
        json.dump(spec, f)
    try:
        out, wall, _ = run_measured([paracorr, "run", "--quiet", "--threads", str(threads[-1]), path],
                                    what="paracorr critical")
        rep = json.loads(out)
    except (BenchError, ValueError) as e:
        failures.append(str(e))
        emit("FAILED: %s" % str(e).splitlines()[0])
        return
    emit("%-14s %-5s %12s %6s %12s %6s %7s" % ("group", "norm", "gradient_eps", "evals", "random_eps", "evals",
                                               "ratio"))
    worst = 0
    for c in rep.get("critical", []):
        g, r = c.get("gradient") or {}, c.get("random") or {}
        worst = max(worst, g.get("evaluations") or 0, r.get("evaluations") or 0)
        emit("%-14s %-5s %12s %6s %12s %6s %7s" % (
            c["group"], c["norm"], "%.4g" % g["epsilon"] if g.get("epsilon") is not None else "-",
            g.get("evaluations", "-"), "%.4g" % r["epsilon"] if r.get("epsilon") is not None else "-",
            r.get("evaluations", "-"), "%.3g" % c["ratio"] if c.get("ratio") is not None else "-"))
    emit("  most evaluations in one search: %d; the whole run %.1f s at %d threads" % (worst, wall, threads[-1]))


def main():
    args = parse_args()
    build = args.build
    paracorr = os.path.join(build, "paracorr")
    gemm = os.path.join(build, "tests", "bench", "gemm_bench")
    curv = os.path.join(build, "tests", "bench", "curv_bench")
    outdir = os.path.join(build, "bench")
    threads = [int(t) for t in args.threads.split(",")]
    models = args.models.split(",")
    lines = []

    def emit(s=""):
        print(s, flush=True)
        lines.append(s)

    torch_version = check_torch()
    for exe in (paracorr, gemm, curv):
        if not os.access(os.path.join(ROOT, exe), os.X_OK):
            raise BenchError("%s is not built (make bench builds it)" % exe)
    os.makedirs(os.path.join(ROOT, outdir), exist_ok=True)
    for name in os.listdir(os.path.join(ROOT, outdir)):
        if name.endswith("_paracorr.json") or name.endswith("_torch.json"):
            os.remove(os.path.join(ROOT, outdir, name))
    corename, _ = run_timed([gemm, "--corename"], what="gemm_bench --corename")
    corename = corename.strip()

    specs = {}
    lm_sequences = None
    for m in models:
        path = os.path.join("tests", "bench", "specs", m + ".json")
        with open(os.path.join(ROOT, path)) as f:
            spec = json.load(f)
        if any(v.startswith("BENCH/lm_") for v in spec["dataset"].values()) and lm_sequences is None:
            lm_sequences = make_lm_dataset(outdir)
        path, spec = resolve_spec(m, path, spec, outdir)
        if not os.path.exists(os.path.join(ROOT, spec["model"])):
            raise BenchError("%s: model %s is missing (tests/reference/make_fixtures.py makes it)"
                             % (path, spec["model"]))
        specs[m] = (path, spec, spec_settings(spec))

    emit("paracorr bench: %s; torch %s; OpenBLAS kernels %s for both" % (
        time.strftime("%Y-%m-%d %H:%M:%S"), torch_version, corename))
    emit("paracorr_s: the whole `paracorr run` process, wall clock; study_s: its report's timing.seconds")
    emit("torch_s: torch_study.py from after its imports (ONNX + dataset load + study), wall clock; "
         "study_s: the study alone")
    emit("ratio = paracorr_s / torch_s (below 1: paracorr is faster); p_MiB, t_MiB: peak RSS "
         "(ru_maxrss) of the paracorr and the PyTorch process")
    if lm_sequences is not None:
        emit("lm_*: %d sequences of %d tokens from %s, of which the spec's limit is used"
             % (lm_sequences, LM_T, LICENSES))
    emit("")
    header = "%-7s %7s %11s %9s %9s %9s %6s %7s %7s %8s" % (
        "model", "threads", "paracorr_s", "study_s", "torch_s", "study_s", "ratio", "p_MiB", "t_MiB",
        "passes")
    emit(header)

    cmp = Comparison()
    failures = []
    reports = {}
    for m in models:
        path, spec, settings = specs[m]
        for t in threads:
            tag = "%s/%dt" % (m, t)
            try:
                out, p_wall, p_rss = run_measured([paracorr, "run", "--quiet", "--profile", "--threads", str(t),
                                                   path],
                                        what="paracorr " + tag)
                rep = json.loads(out)
                with open(os.path.join(ROOT, outdir, "%s_%dt_paracorr.json" % (m, t)), "w") as f:
                    f.write(out)
                env = dict(os.environ)
                for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                    env[var] = str(t)
                env["OPENBLAS_CORETYPE"] = corename
                tout_path = os.path.join(outdir, "%s_%dt_torch.json" % (m, t))
                _, t_wall, t_rss = run_measured([PYTHON, os.path.join("tests", "bench", "torch_study.py"),
                                       "--model", spec["model"], "--threads", str(t),
                                       "--out", tout_path] + settings,
                                      env=env, what="torch_study " + tag)
                with open(os.path.join(ROOT, tout_path)) as f:
                    tr = json.load(f)
            except (BenchError, ValueError) as e:
                failures.append(str(e))
                emit("%-7s %7d  FAILED: %s" % (m, t, str(e).splitlines()[0]))
                continue
            reports[(m, t)] = rep
            compare_torch(cmp, tag, rep, tr)
            if (m, threads[0]) in reports and t != threads[0]:
                compare_reports(cmp, "%s/%dt-vs-%dt" % (m, threads[0], t), reports[(m, threads[0])], rep)
            ts = tr["timing"]
            emit("%-7s %7d %11.2f %9.2f %9.2f %9.2f %6.2f %7.0f %7.0f %8s" % (
                m, t, p_wall, get(rep, "timing", "seconds") or float("nan"), ts["total_s"], ts["study_s"],
                p_wall / ts["total_s"], p_rss, t_rss,
                "%d/%d" % (get(rep, "timing", "evaluations") or 0, ts["evaluation_passes"])))

    emit("")
    emit("where paracorr's time goes (the first thread count's run): timing.phases in seconds, and the op "
         "kinds with the most time (--profile: seconds summed over the threads, forward + backward)")
    for m in models:
        rep = reports.get((m, threads[0]))
        if not rep:
            continue
        phases = get(rep, "timing", "phases") or {}
        emit("  %-7s phases: %s" % (m, ", ".join("%s %.2f" % (k, v) for k, v in phases.items())))
        ops = get(rep, "timing", "ops") or {}
        total = sum(v["forward"] + v["backward"] for v in ops.values()) or 1.0
        top = sorted(ops.items(), key=lambda kv: -(kv[1]["forward"] + kv[1]["backward"]))[:5]
        emit("  %-7s ops:    %s" % (m, ", ".join("%s %.2f+%.2f (%.0f%%)" % (k, v["forward"], v["backward"],
                                                                          100 * (v["forward"] + v["backward"]) / total)
                                                 for k, v in top)))

    emit("")
    emit("passes: paracorr's timing.evaluations / torch's dataset evaluation passes "
         "(paracorr skips work: prefix cache, reused linear layers)")
    emit("random corruption (means over trials; different generators, not compared):")
    for m in models:
        rep = reports.get((m, threads[0]))
        if not rep:
            continue
        model_rows, _ = rows_by(rep)
        with open(os.path.join(ROOT, outdir, "%s_%dt_torch.json" % (m, threads[0]))) as f:
            tr = json.load(f)
        parts = []
        for row in tr["model_rows"]:
            r = model_rows.get(row["epsilon"], {})
            parts.append("eps %g: %.4f/%.4f" % (row["epsilon"], get(r, "random", "loss_mean") or float("nan"),
                                                 row.get("random_loss_mean", float("nan"))))
        emit("  %-7s loss paracorr/torch  %s" % (m, ", ".join(parts)))

    tv_models = [m for m in args.tv_models.split(",") if m]
    if tv_models:
        bench_torchvision(emit, paracorr, outdir, tv_models, threads, corename, cmp, failures)

    if not args.skip_faults:
        bench_faults(emit, paracorr, outdir, threads, corename, failures)
        bench_bitsearch(emit, paracorr, outdir, failures)

    if not args.skip_curvature:
        bench_curvature(emit, paracorr, curv, outdir, threads, failures)

    emit("")
    emit("cross-check: %d numbers compared, largest relative disagreement %.3g at %s (tolerance %g)"
         % (cmp.count, cmp.worst, cmp.where, TOLERANCE))
    for f in cmp.failures:
        emit("  DISAGREES: " + f)

    if not args.skip_gemm:
        emit("")
        emit("GFLOPS (gemm_bench): conv_gflops = paracorr Conv forward at batch 256; "
             "sgemm_gflops = pc_sgemm at the same im2col shape; ratio = conv / sgemm")
        try:
            out, _ = run_timed([gemm], what="gemm_bench")
            for line in out.rstrip("\n").split("\n"):
                emit(line)
        except BenchError as e:
            failures.append(str(e))
            emit("gemm_bench FAILED: " + str(e).splitlines()[0])

    with open(os.path.join(ROOT, build, "bench.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("table: %s" % os.path.join(build, "bench.txt"))
    for f in failures:
        print("bench: " + f, file=sys.stderr)
    if failures or cmp.failures:
        print("bench: FAILED (%d run failures, %d disagreements)" % (len(failures), len(cmp.failures)),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        sys.exit("bench: " + str(e))
