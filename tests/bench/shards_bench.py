#!/usr/bin/python3
"""`make bench`, sharded studies: one node's worker against three, on the same spec.

    /usr/bin/python3 tests/bench/shards_bench.py [--build build] [--samples 2000]

Three runs of one analyze study (the demo CNN, every tensor and layer group
at two norms) through paracorrd, each on a fresh data directory:
  - 1 worker, unsharded;
  - 1 worker, "shards": 3 (the cost of sharding itself: the shards' refill
    passes and the hand-over, nothing run side by side);
  - 3 workers, "shards": 3 (three nodes' workers on one machine).
Every worker computes with 1 thread (threads_per_job = 1, so OpenBLAS runs 1
thread too): three workers are three compute threads against one, and on a
machine with fewer than 3 cores the ratio is bounded by the cores (2 cores:
at most 2x). Time is wall clock from the submission to the job's "succeeded",
read by polling GET /v1/jobs/{id} every 50 ms. The three reports must be
equal byte for byte with their timing removed, or the bench fails; it never
fails on speed. Prints the table and the ratio (1 worker sharded / 3 workers
sharded); the same lines go to BUILD/bench-shards.txt.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
MODEL = os.path.join(ROOT, "tests", "reference", "fixtures", "cnn_op17.onnx")
X = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
Y = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, ctype=None):
    req = urllib.request.Request(base + path, data=body, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read() or b"null")


def multipart(parts):
    boundary = "paracorr-bench-boundary"
    out = b""
    for name, path in parts:
        with open(path, "rb") as f:
            data = f.read()
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                f"filename=\"{os.path.basename(path)}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, "multipart/form-data; boundary=" + boundary


def run(build, workers, shards, samples, tmp):
    data = tempfile.mkdtemp(dir=tmp)
    port = free_port()
    log = open(os.path.join(data, "daemon.log"), "w")
    d = subprocess.Popen([os.path.join(build, "paracorrd"), "--port", str(port), "--data-dir",
                          os.path.join(data, "data"), "--workers", str(workers), "--threads-per-job", "1",
                          "--poll-ms", "50"], stderr=log, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                call(base, "GET", "/healthz")
                break
            except OSError:
                time.sleep(0.05)
        with open(MODEL, "rb") as f:
            model = call(base, "POST", "/v1/models", f.read(), "application/octet-stream")["id"]
        body, ctype = multipart([("inputs", X), ("labels", Y)])
        dataset = call(base, "POST", "/v1/datasets", body, ctype)["id"]
        spec = {"model": model, "dataset": dataset, "limit": samples, "batch_size": 100, "seed": 1,
                "corruption": {"groups": ["model", "tensor", "layer"], "norms": ["l2", "linf"],
                               "epsilons": [0.05, 0.2, 1.0], "random_trials": 8}}
        if shards != 1:
            spec["shards"] = shards
        t0 = time.monotonic()
        job = call(base, "POST", "/v1/jobs", json.dumps(spec).encode(), "application/json")["id"]
        for _ in range(36000):  # at most 30 minutes
            j = call(base, "GET", "/v1/jobs/" + job)
            if j["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.05)
        seconds = time.monotonic() - t0
        if j["status"] != "succeeded":
            raise SystemExit(f"shards bench: the job ended {j['status']}: {j.get('error')}")
        report = call(base, "GET", f"/v1/jobs/{job}/report")
        report.pop("timing", None)
        return seconds, json.dumps(report, sort_keys=False), len(j.get("shards", []))
    finally:
        d.terminate()
        d.wait(timeout=30)
        log.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--samples", type=int, default=2000)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        one, ref, _ = run(build, 1, 1, a.samples, tmp)
        one_sh, rep1, n1 = run(build, 1, 3, a.samples, tmp)
        three, rep3, n3 = run(build, 3, 3, a.samples, tmp)
    lines.append(f"sharded study, CNN, {a.samples} samples, 1 thread per worker, {os.cpu_count()} cores")
    lines.append(f"  1 worker,  unsharded        {one:8.2f} s")
    lines.append(f"  1 worker,  {n1} shards         {one_sh:8.2f} s")
    lines.append(f"  3 workers, {n3} shards         {three:8.2f} s")
    lines.append(f"  ratio 1 worker / 3 workers (both sharded): {one_sh / three:.2f}x;"
                 f" unsharded 1 worker / 3 workers sharded: {one / three:.2f}x")
    same = ref == rep1 == rep3
    lines.append("  reports equal to the unsharded one (timing aside): " + ("yes" if same else "NO"))
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(build, "bench-shards.txt"), "w") as f:
        f.write(text + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
