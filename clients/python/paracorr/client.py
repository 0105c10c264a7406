"""The paracorrd client (standard library only: urllib, json)."""

import io
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from .errors import JobFailed, TransportError, error_for

FINAL = ("succeeded", "failed", "cancelled")


class Resource(dict):
    """A model, dataset or job as the daemon describes it: a dict of its
    JSON with ``id`` as an attribute too. Methods of :class:`Client` take
    either this object or the bare id."""

    @property
    def id(self):
        return self["id"]


class Model(Resource):
    pass


class Dataset(Resource):
    pass


class Job(Resource):
    @property
    def status(self):
        return self.get("status")

    @property
    def done(self):
        return self.get("status") in FINAL


def _id(x):
    if isinstance(x, dict):
        return x["id"]
    if isinstance(x, str) and x:
        return x
    raise TypeError(f"expected an object with an 'id' or an id string, got {type(x).__name__}")


def _is_torch_module(obj):
    mod = type(obj).__module__ or ""
    if not mod.startswith("torch") and "torch" not in sys.modules:
        return False
    try:
        import torch  # noqa: F401  (imported only when the caller already uses torch)
    except ImportError:
        return False
    return isinstance(obj, torch.nn.Module)


def export_onnx(module, example_input, path):
    """Exports a torch.nn.Module the way paracorr reads it best: evaluation
    mode, opset 17, a dynamic batch dimension, BatchNorm kept as its own node
    (training=PRESERVE, no constant folding) so its weights stay corruptible
    tensors named as in the module."""
    import torch

    was_training = module.training
    module.eval()
    try:
        torch.onnx.export(module, example_input, path, opset_version=17, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    finally:
        module.train(was_training)


class Client:
    """A paracorrd at ``url`` (default ``$PARACORR_SERVER`` or
    http://127.0.0.1:8080), with a bearer ``token`` (default
    ``$PARACORR_TOKEN``). Errors raise the typed classes of
    :mod:`paracorr.errors`, each carrying the daemon's problem object."""

    def __init__(self, url=None, token=None, timeout=60.0):
        self.url = (url or os.environ.get("PARACORR_SERVER") or "http://127.0.0.1:8080").rstrip("/")
        self.token = token if token is not None else (os.environ.get("PARACORR_TOKEN") or None)
        self.timeout = timeout

    # --- transport -------------------------------------------------------

    def _request(self, method, path, body=None, headers=None, query=None, raw=False):
        url = self.url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None}, doseq=True)
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        h.update(headers or {})
        req = urllib.request.Request(url, data=body, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                data = resp.read()
                status = resp.status
        except urllib.error.HTTPError as e:
            data = e.read()
            try:
                problem = json.loads(data.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                problem = {"title": e.reason, "detail": data[:200].decode("utf-8", "replace")}
            raise error_for(problem, e.code) from None
        except (urllib.error.URLError, OSError) as e:
            raise TransportError({"title": "cannot reach the daemon", "detail": f"{url}: {e}"}) from None
        if raw:
            return data
        try:
            return json.loads(data.decode("utf-8")) if data else None
        except (ValueError, UnicodeDecodeError):
            raise TransportError({"title": "the daemon's answer is not JSON", "status": status,
                                  "detail": f"{method} {path}"}) from None

    def _json(self, method, path, obj, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self._request(method, path, json.dumps(obj).encode("utf-8"), h)

    # --- uploads ---------------------------------------------------------

    def upload_model(self, model, name=None, example_input=None):
        """Uploads an ONNX file (a path, bytes) or a torch.nn.Module (exported
        with :func:`export_onnx`; ``example_input`` is then required).
        Returns the :class:`Model` (its id is the sha256 of the bytes)."""
        if _is_torch_module(model):
            if example_input is None:
                raise ValueError("upload_model of a torch.nn.Module needs example_input (one input batch)")
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "model.onnx")
                export_onnx(model, example_input, path)
                with open(path, "rb") as f:
                    data = f.read()
            name = name or type(model).__name__
        elif isinstance(model, (bytes, bytearray)):
            data = bytes(model)
        else:
            with open(model, "rb") as f:
                data = f.read()
            name = name or os.path.basename(os.fspath(model))
        query = {"name": name} if name else None
        return Model(self._request("POST", "/v1/models", data,
                                   {"Content-Type": "application/octet-stream"}, query=query))

    def upload_dataset(self, inputs, labels=None, name=None):
        """Uploads a dataset: ``inputs`` and ``labels`` are paths (IDX, NPY,
        CSV, plain or gzip) or bytes; a safetensors file holding both goes as
        ``inputs`` alone. Without ``name`` the daemon names it after the
        inputs file (a file name never renames a named dataset); bytes have
        no file name, and the dataset none. Returns the :class:`Dataset`."""
        parts = [("inputs", inputs)] + ([("labels", labels)] if labels is not None else [])
        boundary = "paracorr-" + uuid.uuid4().hex
        body = io.BytesIO()
        for field, src in parts:
            if isinstance(src, (bytes, bytearray)):
                # no filename: a made-up one would name the dataset
                data, disposition = bytes(src), f'form-data; name="{field}"'
            else:
                with open(src, "rb") as f:
                    data = f.read()
                fname = os.path.basename(os.fspath(src)).replace('"', "%22").replace("\r", "").replace("\n", "")
                disposition = f'form-data; name="{field}"; filename="{fname}"'
            body.write(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
                       "Content-Type: application/octet-stream\r\n\r\n".encode())
            body.write(data)
            body.write(b"\r\n")
        body.write(f"--{boundary}--\r\n".encode())
        query = {"name": name} if name else None
        return Dataset(self._request("POST", "/v1/datasets", body.getvalue(),
                                     {"Content-Type": f"multipart/form-data; boundary={boundary}"}, query=query))

    def _pages(self, path, query, cls):
        out, cursor = [], None
        while True:
            page = self._request("GET", path, query=dict(query, cursor=cursor))
            out.extend(cls(x) for x in page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    def models(self, name=None, limit=None):
        """Every model (of this tenant), those named ``name`` when given."""
        return self._pages("/v1/models", {"name": name, "limit": limit}, Model)

    def datasets(self, name=None, limit=None):
        """Every dataset (of this tenant), those named ``name`` when given."""
        return self._pages("/v1/datasets", {"name": name, "limit": limit}, Dataset)

    def model(self, model):
        return Model(self._request("GET", f"/v1/models/{_id(model)}"))

    def dataset(self, dataset):
        return Dataset(self._request("GET", f"/v1/datasets/{_id(dataset)}"))

    def delete_model(self, model):
        self._request("DELETE", f"/v1/models/{_id(model)}")

    def delete_dataset(self, dataset):
        self._request("DELETE", f"/v1/datasets/{_id(dataset)}")

    # --- jobs ------------------------------------------------------------

    def submit(self, spec, model=None, dataset=None, name=None, labels=None, idempotency_key=None):
        """Queues a job. ``spec`` is the job spec (a dict, or a path to a
        JSON file); ``model`` and ``dataset`` (objects or ids) fill its
        ``model`` and ``dataset`` fields when given. Returns the :class:`Job`."""
        if not isinstance(spec, dict):
            with open(spec, "r", encoding="utf-8") as f:
                spec = json.load(f)
        spec = dict(spec)
        if model is not None:
            spec["model"] = _id(model)
        if dataset is not None:
            spec["dataset"] = _id(dataset)
        if name is not None:
            spec["name"] = name
        if labels:
            spec["labels"] = dict(spec.get("labels") or {}, **{str(k): str(v) for k, v in labels.items()})
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return Job(self._json("POST", "/v1/jobs", spec, headers))

    def job(self, job):
        return Job(self._request("GET", f"/v1/jobs/{_id(job)}"))

    def jobs(self, status=None, name=None, labels=None, limit=None):
        """Every job (of this tenant), following the listing's pages; only
        those of ``status``, named ``name`` and carrying every ``labels``
        key=value (a dict) when given. Each job has its ``headline`` once
        finished (clean accuracy, gradient and random accuracy at the
        largest radius, critical radius, flips to target)."""
        label = [f"{k}={v}" for k, v in (labels or {}).items()] or None
        return self._pages("/v1/jobs", {"status": status, "name": name, "label": label, "limit": limit}, Job)

    def cancel(self, job):
        return Job(self._request("POST", f"/v1/jobs/{_id(job)}/cancel"))

    def wait(self, job, progress=True, interval=0.5, timeout=None, stream=None):
        """Follows a job until it is succeeded, failed or cancelled and
        returns its final :class:`Job`; a failed or cancelled job raises
        :class:`JobFailed` (carrying its problem). ``progress`` prints its
        phase, fraction and ETA to ``stream`` (stderr) as it goes."""
        stream = stream or sys.stderr
        start = time.monotonic()
        last = ""
        while True:
            j = self.job(job)
            if progress:
                line = _progress_line(j, time.monotonic() - start)
                if line != last:
                    print(line, file=stream, flush=True)
                    last = line
            if j.done:
                if j.status != "succeeded":
                    raise JobFailed(j)
                return j
            if timeout is not None and time.monotonic() - start > timeout:
                raise TimeoutError(f"job {j.id} still {j.status} after {timeout} s")
            time.sleep(interval)

    def report(self, job):
        """The report of a finished job, as a dict."""
        return self._request("GET", f"/v1/jobs/{_id(job)}/report")

    def compare(self, *jobs):
        """Finished jobs' reports side by side (GET /v1/compare), as a dict:
        two to eight jobs, or one harden job for its before and after. Rows
        are aligned by setting, each value a list with one entry per study;
        ``differences`` names the spec fields that differ."""
        return self._request("GET", "/v1/compare", query={"jobs": ",".join(_id(j) for j in jobs)})

    def chart(self, job, name):
        """One of a finished job's charts (``accuracy``, ``loss``, ``ranking``,
        as ``charts(job)`` lists them), as SVG text."""
        if not name.endswith(".svg"):
            name += ".svg"
        return self._request("GET", f"/v1/jobs/{_id(job)}/charts/{urllib.parse.quote(name)}",
                             headers={"Accept": "image/svg+xml"}, raw=True).decode("utf-8")

    def charts(self, job):
        """The names of a finished job's charts."""
        return [c["name"] for c in self._request("GET", f"/v1/jobs/{_id(job)}/charts")["items"]]

    def artifact(self, job, name):
        """An artifact of a finished job (e.g. a harden job's model), as bytes."""
        return self._request("GET", f"/v1/jobs/{_id(job)}/artifacts/{urllib.parse.quote(name)}",
                             headers={"Accept": "application/octet-stream"}, raw=True)

    def healthy(self):
        try:
            self._request("GET", "/healthz", raw=True)
            return True
        except Exception:
            return False


def _progress_line(job, elapsed):
    p = job.get("progress") or {}
    frac = p.get("fraction")
    parts = [f"job {job.get('id', '')[:12]}", str(job.get("status"))]
    if p.get("phase"):
        parts.append(str(p["phase"]))
    if isinstance(frac, (int, float)):
        parts.append(f"{100 * frac:5.1f}%")
        left = p.get("remaining_seconds")
        if job.get("status") == "running" and 0 < frac < 1:
            # the daemon's estimate spans the job's stages; older daemons
            # send none, and then the fraction's rate here is the estimate
            if not isinstance(left, (int, float)):
                left = elapsed * (1 - frac) / frac
            parts.append(f"ETA {left:.0f} s")
    return " ".join(parts)
