#!/usr/bin/python3
"""`make bench`, sharded studies: three paracorrd nodes on one PostgreSQL store against one node.

    /usr/bin/python3 tests/bench/shards_bench.py [--build build] [--samples 2000]

As root (PostgreSQL refuses to run as root, so its commands run as the
postgres user through runuser), with Debian's PostgreSQL 15 installed
(/usr/lib/postgresql/15/bin: apt-get install postgresql, or make deps-test);
otherwise it says so and exits 1. It starts a throwaway server of its own the
way tests/pg_util.c does (initdb in a temp directory owned by postgres, trust
authentication, listening on 127.0.0.1 and a free port, its socket in that
directory, fsync off: durability is not what is measured), makes a fresh
database for each run on it, and always stops it and removes the directory at
the end. The system's PostgreSQL is never touched.

Three runs of one analyze study (the demo CNN, model, tensor and layer groups
at two norms), each on fresh data directories:
  a. 1 node, SQLite store, 1 worker, unsharded: the reference report;
  b. 1 node, PostgreSQL store, 1 worker, "shards": 3 (the cost of sharding
     itself: the shards' refill passes and the hand-over, nothing side by
     side);
  c. 3 nodes (127.0.0.2, 127.0.0.3, 127.0.0.4, loopback only) on one
     PostgreSQL database, 1 worker each, "shards": 3: the model is uploaded
     to node-1, the dataset to node-2, and the job submitted to node-3.
Every worker computes with 1 thread (--threads-per-job 1, so OpenBLAS runs 1
thread too): three nodes are three compute threads against one, and on a
machine with C cores the ratio b/c is bounded by min(3, C) (2 cores: at most
2x). Time is wall clock from the submission to the job's "succeeded", read by
polling GET /v1/jobs/{id} every 50 ms. The reports of b and c (c's from each of
the three nodes) must be equal byte for byte to a's with their timing removed,
or the bench fails; it never fails on speed. Prints the core count, the table,
the ratio b/c and which node ran each of c's shards (GET /v1/jobs/{id},
"shards"[i]."node"); the same lines go to BUILD/bench-shards.txt. Every wait
is bounded, and the nodes and the server are stopped on failure too.
"""

import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
MODEL = os.path.join(ROOT, "tests", "reference", "fixtures", "cnn_op17.onnx")
X = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
Y = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
PG_BIN = "/usr/lib/postgresql/15/bin"
PG_WAIT_S = 60  # pg_ctl's bound on a start or a stop
HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
JOB_WAIT_S = 1800  # the longest wait for one job


class BenchError(Exception):
    pass


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, ctype=None):
    req = urllib.request.Request(base + path, data=body, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raise BenchError(f"{method} {base}{path}: {e.code} {e.read()[:300].decode(errors='replace')}")


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


def sh(cmd, timeout):
    """Runs cmd (a list); its output when it exits 0, else BenchError."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out after {timeout} s: {' '.join(cmd)}")
    if p.returncode != 0:
        raise BenchError(f"exit {p.returncode}: {' '.join(cmd)}: {p.stdout.decode(errors='replace').strip()[-400:]}")
    return p.stdout.decode(errors="replace")


class Postgres:
    """A throwaway PostgreSQL server (tests/pg_util.c's way): stop() always."""

    def __init__(self):
        self.dir = None
        self.port = None
        self.running = False
        self.n_db = 0

    def as_owner(self, *cmd):
        return ["runuser", "-u", "postgres", "--"] + list(cmd)

    def start(self):
        pw = pwd.getpwnam("postgres")
        self.dir = tempfile.mkdtemp(prefix="paracorr-bench-pg-")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        sh(self.as_owner(PG_BIN + "/initdb", "-D", self.dir + "/data", "-U", "postgres", "-A", "trust", "-E", "UTF8",
                         "--locale=C.UTF-8", "--no-sync"), PG_WAIT_S + 10)
        # a port free a moment ago; another process may take it first
        for tries in range(5):
            self.port = free_port()
            opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k '{self.dir}' -c fsync=off"
                    " -c synchronous_commit=off -c full_page_writes=off -c max_connections=100 -c shared_buffers=32MB")
            try:
                sh(self.as_owner(PG_BIN + "/pg_ctl", "-D", self.dir + "/data", "-l", self.dir + "/server.log", "-w",
                                 "-t", str(PG_WAIT_S), "-o", opts, "start"), PG_WAIT_S + 10)
                self.running = True
                return
            except BenchError:
                if tries == 4:
                    raise

    def new_db(self):
        self.n_db += 1
        name = f"bench{self.n_db}"
        sh(self.as_owner(PG_BIN + "/createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name), 60)
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self):
        try:
            if self.running:
                try:
                    sh(self.as_owner(PG_BIN + "/pg_ctl", "-D", self.dir + "/data", "-m", "fast", "-w", "-t",
                                     str(PG_WAIT_S), "stop"), PG_WAIT_S + 10)
                except BenchError:
                    # the postmaster we started, by the pid it wrote
                    with open(self.dir + "/data/postmaster.pid") as f:
                        os.kill(int(f.readline()), signal.SIGKILL)
                    raise
                finally:
                    self.running = False
        finally:
            if self.dir and not self.running:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None


class Node:
    """One paracorrd on host with its own data directory under tmp; stop() always."""

    def __init__(self, build, tmp, host, workers, store=None, name=None):
        self.dir = tempfile.mkdtemp(dir=tmp)
        self.host = host
        self.proc = None
        self.log = open(os.path.join(self.dir, "daemon.log"), "w")
        self.name = name
        args = ["--listen", host, "--data-dir", os.path.join(self.dir, "data"), "--workers", str(workers),
                "--threads-per-job", "1", "--poll-ms", "50"]
        if store:
            args += ["--store", store]
        if name:
            args += ["--node-name", name]
        # a port free a moment ago; another process may take it first
        for _ in range(5):
            self.port = free_port(host)
            self.base = f"http://{host}:{self.port}"
            self.proc = subprocess.Popen([os.path.join(build, "paracorrd"), "--port", str(self.port)] + args,
                                         stderr=self.log, cwd=ROOT)
            for _ in range(200):  # 10 s
                if self.proc.poll() is not None:
                    break
                try:
                    call(self.base, "GET", "/healthz")
                    return
                except (OSError, BenchError):
                    time.sleep(0.05)
            self.stop()
        raise BenchError(f"paracorrd on {host} did not start; its log: {self.tail()}")

    def tail(self):
        self.log.flush()
        with open(os.path.join(self.dir, "daemon.log"), errors="replace") as f:
            return f.read()[-1500:]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.proc = None


def spec_for(model, dataset, samples, shards):
    spec = {"model": model, "dataset": dataset, "limit": samples, "batch_size": 100, "seed": 1,
            "corruption": {"groups": ["model", "tensor", "layer"], "norms": ["l2", "linf"],
                           "epsilons": [0.05, 0.2, 1.0], "random_trials": 8}}
    if shards != 1:
        spec["shards"] = shards
    return spec


def report_text(base, job):
    report = call(base, "GET", f"/v1/jobs/{job}/report")
    report.pop("timing", None)
    return json.dumps(report, sort_keys=False)


def run(nodes, samples, shards):
    """The study on nodes: the model uploaded to the first, the dataset to
    the second, the job submitted to the last; (seconds, the report without
    its timing from each node, the job object)."""
    with open(MODEL, "rb") as f:
        model = call(nodes[0].base, "POST", "/v1/models", f.read(), "application/octet-stream")["id"]
    body, ctype = multipart([("inputs", X), ("labels", Y)])
    dataset = call(nodes[min(1, len(nodes) - 1)].base, "POST", "/v1/datasets", body, ctype)["id"]
    ask = nodes[-1].base
    spec = json.dumps(spec_for(model, dataset, samples, shards)).encode()
    t0 = time.monotonic()
    job = call(ask, "POST", "/v1/jobs", spec, "application/json")["id"]
    while True:
        j = call(ask, "GET", "/v1/jobs/" + job)
        if j["status"] in ("succeeded", "failed", "cancelled"):
            break
        if time.monotonic() - t0 > JOB_WAIT_S:
            raise BenchError(f"the job is still {j['status']} after {JOB_WAIT_S} s")
        time.sleep(0.05)
    seconds = time.monotonic() - t0
    if j["status"] != "succeeded":
        raise BenchError(f"the job ended {j['status']}: {j.get('error')}")
    return seconds, [report_text(n.base, job) for n in nodes], j


def with_nodes(build, tmp, specs, samples, shards):
    nodes = []
    try:
        for host, workers, store, name in specs:
            nodes.append(Node(build, tmp, host, workers, store, name))
        return run(nodes, samples, shards)
    except BenchError as e:
        for n in nodes:
            sys.stderr.write(f"--- {n.name or n.host}'s log (tail):\n{n.tail()}\n")
        raise e
    finally:
        for n in nodes:
            n.stop()
            n.log.close()


def preflight(build):
    if os.geteuid() != 0:
        return "must run as root (PostgreSQL's initdb and pg_ctl run as the postgres user through runuser)"
    for b in ("initdb", "pg_ctl", "postgres", "createdb"):
        if not os.access(os.path.join(PG_BIN, b), os.X_OK):
            return (f"PostgreSQL 15 is not installed (no {PG_BIN}/{b}): apt-get install postgresql "
                    "(make deps-test)")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "there is no postgres user to own the throwaway server's directory"
    if not shutil.which("runuser"):
        return "there is no runuser (util-linux)"
    if not os.access(os.path.join(build, "paracorrd"), os.X_OK):
        return f"no {build}/paracorrd (make all)"
    for p in (MODEL, X, Y):
        if not os.path.exists(p):
            return f"no {p} (make deps)"
    return None


def on_signal(sig, frame):
    raise SystemExit(128 + sig)  # through the finally blocks: nodes and server stopped


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--samples", type=int, default=2000)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    why = preflight(build)
    if why:
        print("shards bench: " + why, file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    pg = Postgres()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pg.start()
            one, (ref,), _ = with_nodes(build, tmp, [("127.0.0.1", 1, None, None)], a.samples, 1)
            url = pg.new_db()
            one_sh, reps_b, jb = with_nodes(build, tmp, [("127.0.0.1", 1, url, "node-1")], a.samples, 3)
            url = pg.new_db()
            three, reps_c, jc = with_nodes(build, tmp, [(h, 1, url, f"node-{i + 1}") for i, h in enumerate(HOSTS)],
                                           a.samples, 3)
    except BenchError as e:
        print(f"shards bench: {e}", file=sys.stderr)
        return 1
    finally:
        try:
            pg.stop()
        except BenchError as e:
            print(f"shards bench: stopping PostgreSQL: {e}", file=sys.stderr)
    cores = os.cpu_count()
    nb, nc = len(jb.get("shards", [])), len(jc.get("shards", []))
    lines = [f"sharded study, CNN, {a.samples} samples, 1 thread per worker",
             f"  os.cpu_count() = {cores}: three nodes are bounded by min(3, {cores}) = {min(3, cores)}x one node",
             f"  a. 1 node,  SQLite,     1 worker,       unsharded  {one:8.2f} s",
             f"  b. 1 node,  PostgreSQL, 1 worker,       {nb} shards   {one_sh:8.2f} s",
             f"  c. 3 nodes, PostgreSQL, 1 worker each,  {nc} shards   {three:8.2f} s",
             f"  ratio b/c: {one_sh / three:.2f}x (a/c: {one / three:.2f}x)"]
    shards = sorted(jc.get("shards", []), key=lambda s: s.get("index", 0))
    lines.append("  run c's shards: " + ", ".join(f"{s.get('index')} on {s.get('node')}" for s in shards) +
                 f"; merged on {jc.get('node')}")
    differ = [label for label, r in zip(["b"] + [f"c from node-{i + 1}" for i in range(len(reps_c))],
                                        reps_b + reps_c) if r != ref]
    same = not differ
    lines.append("  reports of b and c (c's from each node) equal to a's (timing aside): " +
                 ("yes" if same else "NO (" + ", ".join(differ) + " differ)"))
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(build, "bench-shards.txt"), "w") as f:
        f.write(text + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
