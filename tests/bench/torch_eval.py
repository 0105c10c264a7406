#!/usr/bin/python3
"""PyTorch's time for what `paracorr eval` does: the mean cross-entropy and
its full gradient over the 10,000 test images, batches of 256, evaluating
the ONNX file with the interpreter of tests/reference/make_fixtures.py.

    /usr/bin/python3 tests/bench/torch_eval.py tests/reference/fixtures/resnet_op17.onnx THREADS

Compare with: build/paracorr eval --model ... --batch-size 256 --threads THREADS
"""
import os
import sys
import time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import torch
import make_fixtures as mf
th = int(sys.argv[2]); torch.set_num_threads(th)
torch.use_deterministic_algorithms(False)
it = mf.Interpreter(sys.argv[1]); kind = it.output_kind()
x = torch.from_numpy(mf.to_float(mf.read_idx(mf.TEST_IMAGES))); y = torch.from_numpy(mf.read_idx(mf.TEST_LABELS).astype("int64"))
best = 1e9
for rep in range(2):
    t = time.time()
    for p in it.params.values(): p.grad = None
    tot = 0.0
    for i in range(0, 10000, 256):
        o = it.run(x[i:i+256]); l = mf.loss_of(o, y[i:i+256], kind) * (o.shape[0] / 10000.0); l.backward(); tot += l.item()
    best = min(best, time.time() - t)
print("torch threads %d: eval+gradient %.3f s, loss %.6f" % (th, best, tot))
