"""paracorr: a client for the paracorrd robustness service.

    import paracorr
    c = paracorr.Client("http://127.0.0.1:8080")
    model = c.upload_model("model.onnx")
    data = c.upload_dataset("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    job = c.submit({"corruption": {"norms": ["l2"], "epsilons": [0.1, 0.5]}}, model=model, dataset=data)
    report = c.report(c.wait(job))
"""

from .client import FINAL, Client, Dataset, Job, Model, export_onnx
from .errors import *  # noqa: F401,F403  (the typed errors)
from .errors import __all__ as _errors

__version__ = "0.1.0"
__all__ = ["Client", "Model", "Dataset", "Job", "FINAL", "export_onnx"] + _errors
