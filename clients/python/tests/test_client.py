"""The Python client against a live paracorrd (tests/test_pyclient.c starts
one and runs this with PARACORR_SERVER, PARACORR_TOKEN and PARACORR_ROOT
set). Standard library only; the torch export test runs where torch is."""

import hashlib
import importlib.util
import io
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import paracorr  # noqa: E402

ROOT = os.environ.get("PARACORR_ROOT", ".")
FIX = os.path.join(ROOT, "tests", "reference", "fixtures")
MODEL = os.path.join(FIX, "cnn_op17.onnx")
INPUTS = os.path.join(FIX, "sample64_u8.npy")
LABELS = os.path.join(FIX, "labels64_i64.npy")
SPEC = {"seed": 3, "batch_size": 32,
        "corruption": {"norms": ["l2"], "epsilons": [0.1, 1.0], "random_trials": 2, "groups": ["model"]}}


def client(token=None):
    return paracorr.Client(os.environ["PARACORR_SERVER"],
                           token=token if token is not None else os.environ.get("PARACORR_TOKEN"))


class Uploads(unittest.TestCase):
    def test_model_id_is_the_sha256_and_upload_is_idempotent(self):
        c = client()
        with open(MODEL, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        m = c.upload_model(MODEL)
        self.assertIsInstance(m, paracorr.Model)
        self.assertEqual(m.id, digest)
        self.assertEqual(c.upload_model(MODEL).id, digest)
        self.assertEqual(c.model(m)["id"], digest)
        self.assertEqual(c.model(digest)["id"], digest)

    def test_dataset_from_paths_and_bytes(self):
        c = client()
        d = c.upload_dataset(INPUTS, LABELS)
        self.assertIsInstance(d, paracorr.Dataset)
        self.assertEqual(c.dataset(d).id, d.id)
        with open(INPUTS, "rb") as a, open(LABELS, "rb") as b:
            self.assertEqual(c.upload_dataset(a.read(), b.read()).id, d.id)

    def test_dataset_from_bytes_is_named_only_when_asked(self):
        c = client()
        with open(os.path.join(FIX, "sample64_f32.npy"), "rb") as a, open(LABELS, "rb") as b:
            x, y = a.read(), b.read()
        d = c.upload_dataset(x, y)
        self.assertIsNone(d["name"])  # no file name was sent to name it after
        self.assertEqual(c.upload_dataset(x, y, name="f32 from bytes")["name"], "f32 from bytes")
        self.assertEqual(c.dataset(d)["name"], "f32 from bytes")

    @unittest.skipUnless(importlib.util.find_spec("torch"), "torch is not importable here")
    def test_module_is_exported_and_runs(self):
        import torch

        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 16), torch.nn.ReLU(),
                                  torch.nn.Linear(16, 10))
        c = client()
        with self.assertRaises(ValueError):
            c.upload_model(net)
        m = c.upload_model(net, example_input=torch.zeros(1, 1, 28, 28))
        self.assertEqual(m["parameters"], 28 * 28 * 16 + 16 + 16 * 10 + 10)
        self.assertTrue(net.training, "export leaves the module's mode as it was")
        job = c.wait(c.submit(SPEC, model=m, dataset=c.upload_dataset(INPUTS, LABELS)), progress=False)
        self.assertEqual(job.status, "succeeded")


class Progress(unittest.TestCase):
    def test_eta_is_the_daemons_when_it_has_one(self):
        from paracorr.client import _progress_line
        job = {"id": "j-0123456789abcdef", "status": "running",
               "progress": {"phase": "training epoch 1 of 2", "done": 5, "total": 10, "fraction": 0.25,
                            "elapsed_seconds": 3.0, "remaining_seconds": 42.4}}
        self.assertEqual(_progress_line(job, 10.0), "job j-0123456789 running training epoch 1 of 2  25.0% ETA 42 s")
        job["progress"]["remaining_seconds"] = None
        self.assertTrue(_progress_line(job, 10.0).endswith("ETA 30 s"))
        job["status"] = "succeeded"
        self.assertNotIn("ETA", _progress_line(job, 10.0))


class Jobs(unittest.TestCase):
    def test_submit_wait_report(self):
        c = client()
        m, d = c.upload_model(MODEL), c.upload_dataset(INPUTS, LABELS)
        job = c.submit(SPEC, model=m, dataset=d, idempotency_key="py-1")
        self.assertIsInstance(job, paracorr.Job)
        self.assertEqual(c.submit(SPEC, model=m, dataset=d, idempotency_key="py-1").id, job.id)
        out = io.StringIO()
        done = c.wait(job, progress=True, interval=0.1, stream=out)
        self.assertEqual(done.status, "succeeded")
        self.assertIn("succeeded", out.getvalue().splitlines()[-1])
        rep = c.report(done)
        self.assertEqual(rep["spec"]["model"], m.id)
        self.assertEqual(rep["dataset"]["samples"], 64)
        self.assertEqual(len([r for r in rep["results"] if r["group"] == "model"]), 2)
        self.assertEqual([r["epsilon"] for r in rep["results"]], [0.1, 1.0])
        self.assertGreater(rep["results"][1]["gradient"]["loss_change"], rep["results"][1]["random"]["loss_change_mean"])
        self.assertEqual(rep, c.report(done.id))
        self.assertIn("accuracy", c.charts(done))
        svg = c.chart(done, "accuracy")
        self.assertIn("<svg", svg)
        ids = [j.id for j in c.jobs(limit=1)]
        self.assertIn(job.id, ids)
        self.assertEqual(len(ids), len(set(ids)))

    def test_compare_two_jobs(self):
        c = client()
        m, d = c.upload_model(MODEL), c.upload_dataset(INPUTS, LABELS)
        a = c.wait(c.submit(SPEC, model=m, dataset=d), progress=False, interval=0.1)
        b = c.wait(c.submit(dict(SPEC, seed=SPEC.get("seed", 0) + 1), model=m, dataset=d), progress=False, interval=0.1)
        cmp = c.compare(a, b.id)
        self.assertEqual([s["label"] for s in cmp["studies"]], [a.id, b.id])
        self.assertEqual([x["pointer"] for x in cmp["differences"]], ["/seed"])
        ra, rb = c.report(a), c.report(b)
        self.assertEqual(len(cmp["results"]), len(ra["results"]))
        self.assertEqual(cmp["results"][0]["gradient_accuracy"],
                         [ra["results"][0]["gradient"]["accuracy"], rb["results"][0]["gradient"]["accuracy"]])
        with self.assertRaises(paracorr.Invalid):
            c.compare(a)

    def test_names_labels_filters_and_headline(self):
        c = client()
        tag = f"py-{os.getpid()}"
        m = c.upload_model(MODEL, name=f"cnn {tag}")
        self.assertEqual(m["name"], f"cnn {tag}")
        self.assertEqual([x.id for x in c.models(name=f"cnn {tag}")], [m.id])
        d = c.upload_dataset(INPUTS, LABELS)
        self.assertEqual(d["name"], "sample64_u8.npy")
        self.assertIn(d.id, [x.id for x in c.datasets(name="sample64_u8.npy")])
        a = c.submit(SPEC, model=m, dataset=d, name=f"a {tag}", labels={"run": tag, "prec": "fp32"})
        b = c.submit(SPEC, model=m, dataset=d, name=f"b {tag}", labels={"run": tag})
        self.assertEqual((a["name"], a["labels"]), (f"a {tag}", {"run": tag, "prec": "fp32"}))
        a = c.wait(a, progress=False, interval=0.1)
        c.wait(b, progress=False, interval=0.1)
        self.assertEqual(sorted(j.id for j in c.jobs(labels={"run": tag}, limit=1)), sorted([a.id, b.id]))
        self.assertEqual([j.id for j in c.jobs(labels={"run": tag, "prec": "fp32"})], [a.id])
        self.assertEqual([j.id for j in c.jobs(name=f"b {tag}")], [b.id])
        h, rep = a["headline"], c.report(a)
        self.assertEqual(h["clean_accuracy"], rep["clean"]["accuracy"])
        self.assertEqual(h["epsilon"], 1.0)
        self.assertEqual(h["gradient_accuracy"], rep["results"][1]["gradient"]["accuracy"])
        self.assertEqual(h["random_accuracy"], rep["results"][1]["random"]["accuracy_mean"])
        with self.assertRaises(paracorr.Invalid) as cm:
            c.submit(SPEC, model=m, dataset=d, labels={"bad key": "x"})
        self.assertEqual(cm.exception.problem["errors"][0]["pointer"], "/labels")

    def test_spec_from_a_file(self):
        c = client()
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"pyspec-{os.getpid()}.json")
        spec = dict(SPEC, model=c.upload_model(MODEL).id, dataset=c.upload_dataset(INPUTS, LABELS).id)
        with open(path, "w") as f:
            json.dump(spec, f)
        try:
            self.assertEqual(c.wait(c.submit(path), progress=False).status, "succeeded")
        finally:
            os.unlink(path)

    def test_cancelled_job_raises_job_failed(self):
        c = client()
        big = {"seed": 1, "batch_size": 8,
               "corruption": {"norms": ["l2"], "epsilons": [0.1, 0.2, 0.3, 0.4, 0.5], "random_trials": 200,
                              "groups": ["model", "layer", "tensor"]}}
        job = c.submit(big, model=c.upload_model(MODEL), dataset=c.upload_dataset(INPUTS, LABELS))
        c.cancel(job)
        with self.assertRaises(paracorr.JobFailed) as e:
            c.wait(job, progress=False, interval=0.1, timeout=60)
        self.assertEqual(e.exception.job.status, "cancelled")


class Errors(unittest.TestCase):
    def test_unknown_id_is_not_found_with_its_problem(self):
        with self.assertRaises(paracorr.NotFound) as e:
            client().job("0" * 64)
        self.assertEqual(e.exception.status, 404)
        self.assertEqual(e.exception.problem["type"], "/problems/not_found")
        self.assertIsInstance(e.exception, paracorr.ParacorrError)

    def test_bad_spec_is_invalid_naming_the_field(self):
        c = client()
        with self.assertRaises(paracorr.Invalid) as e:
            c.submit({"corruption": {"epsilons": [-1]}}, model=c.upload_model(MODEL),
                     dataset=c.upload_dataset(INPUTS, LABELS))
        self.assertEqual(e.exception.status, 422)
        self.assertEqual(e.exception.fields, ["/corruption/epsilons/0"])
        self.assertEqual(e.exception.problem["type"], "/problems/invalid")

    def test_wrong_token_is_unauthorized(self):
        with self.assertRaises(paracorr.Unauthorized) as e:
            client(token="not-the-token").jobs()
        self.assertEqual(e.exception.status, 401)

    def test_unreachable_daemon_is_a_transport_error(self):
        with self.assertRaises(paracorr.TransportError):
            paracorr.Client("http://127.0.0.1:1", timeout=5).jobs()

    def test_every_problem_of_the_error_table_has_a_class(self):
        with open(os.path.join(ROOT, "include", "paracorr", "error.h")) as f:
            names = re.findall(r'X\(PC_[A-Z_]+, "([a-z_]+)", [0-9]+', f.read())
        self.assertGreater(len(names), 10)
        for name in names:
            if name == "ok":
                continue
            err = paracorr.error_for({"type": f"/problems/{name}", "status": 400})
            self.assertIsNot(type(err), paracorr.ParacorrError, f"no class for /problems/{name}")


if __name__ == "__main__":
    unittest.main()
