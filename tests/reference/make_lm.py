#!/usr/bin/python3
"""Regenerate paracorr's language-model reference fixtures (in
tests/reference/fixtures/zoo/, next to the vision zoo).

Trains two small character-level language models on the license texts Debian
ships in /usr/share/common-licenses (training and validation split by file),
exports each with torch.onnx.export at opsets 14 and 17 in the two modes of
make_zoo.py (eval: the default, constant folding; preserve:
TrainingMode.PRESERVE on the eval-mode model, no folding), with the input
"tokens" int64 [N, T] (dynamic N, T fixed) and the output "logits"
[N, T, V], and writes PyTorch's numbers on the validation set:

  lstm  embedding 64, 2-layer nn.LSTM(64, 64), linear head whose weight is
        the embedding's (tied);
  gpt   token and position embeddings (64), two pre-LayerNorm blocks of
        causal self-attention (2 heads) written with plain torch ops and an
        MLP (64 -> 128 -> 64, GELU), final LayerNorm, head tied to the token
        embedding.

Validation set: NPY int64 inputs [N, T] and labels [N, T], the next-token
targets; the last sequence is shorter, its padding positions have label
-100 (ignored) and input 0.  The loss is the mean cross-entropy over the
labelled positions, the perplexity its exp, the accuracy that of the argmax.

As in make_zoo.py the gradient of the mean loss is taken w.r.t. the file's
weights: the module's parameters for preserve exports (tied weights are one
parameter and one initializer), the folded initializers for eval exports,
evaluated with onnx_torch.py; every file is checked against its module.

Run with Debian's Python (torch 1.13, onnx 1.12):

    /usr/bin/python3 tests/reference/make_lm.py [--out DIR]

Training takes about two minutes on one core.  Nothing is downloaded.
"""

import argparse
import gzip
import io
import math
import os
import time
import warnings

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

import onnx_torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "zoo")
REL = "tests/reference/fixtures/zoo"
LICENSES = "/usr/share/common-licenses"
# GPL, LGPL and GFDL are links to GPL-3, LGPL-3 and GFDL-1.3: left out.
TRAIN_FILES = ["Apache-2.0", "Artistic", "BSD", "GFDL-1.2", "GFDL-1.3", "GPL-1", "GPL-2", "GPL-3", "LGPL-2",
               "LGPL-2.1", "LGPL-3", "MPL-1.1", "MPL-2.0"]
VALID_FILES = ["CC0-1.0"]

SEED = 20240918
T = 32                 # sequence length (fixed in the export)
VALID_SEQS = 64        # validation sequences; the last one is short
LAST_LEN = 20          # real positions of the last sequence
IGNORE = -100
D = 64
STEPS, BATCH, LR = 1000, 32, 3e-3
# The default export only at opset 17: its six files would pass the zoo's
# 8 MB (each LM export is ~290 KB gzipped, incompressible float weights).
EXPORTS = [(14, "preserve"), (17, "eval"), (17, "preserve")]
LOGIT_POSITIONS = [0, 1, 2, 3]   # of sequence 0
# The smallest gap between the top two outputs of a labelled position: below
# it, an exact accuracy match would depend on rounding.  Over 2000 positions
# gaps of 1e-4 are common; float32 outputs of these models agree to ~1e-6.
GAP_MIN = 2e-5
BUFFER_INPUTS = {"BatchNormalization": {3, 4}, "Clip": {1, 2}, "Pad": {2}}

THREADS = int(os.environ.get("PARACORR_REF_THREADS", "1"))
torch.set_num_threads(THREADS)
torch.use_deterministic_algorithms(True)


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------

def read(files):
    return "".join(open(os.path.join(LICENSES, f), encoding="utf-8").read() for f in files)


def make_text():
    train, valid = read(TRAIN_FILES), read(VALID_FILES)
    # id 0 is the padding / unknown character, then every training character
    chars = sorted(set(train))
    stoi = {c: i + 1 for i, c in enumerate(chars)}
    enc = lambda s: np.array([stoi.get(c, 0) for c in s], dtype=np.int64)
    return enc(train), enc(valid), chars


def validation_set(valid):
    need = (VALID_SEQS - 1) * T + LAST_LEN + 1
    if len(valid) < need:
        raise SystemExit("validation text too short: %d < %d" % (len(valid), need))
    x = np.zeros((VALID_SEQS, T), dtype=np.int64)
    y = np.full((VALID_SEQS, T), IGNORE, dtype=np.int64)
    for s in range(VALID_SEQS):
        n = T if s < VALID_SEQS - 1 else LAST_LEN
        x[s, :n] = valid[s * T:s * T + n]
        y[s, :n] = valid[s * T + 1:s * T + n + 1]
    return x, y


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------

class LSTMLM(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.emb = nn.Embedding(vocab, D)
        self.lstm = nn.LSTM(D, D, num_layers=2, batch_first=True)
        self.head = nn.Linear(D, vocab)
        self.head.weight = self.emb.weight  # tied

    def forward(self, tokens):
        h, _ = self.lstm(self.emb(tokens))
        return self.head(h)


class Block(nn.Module):
    def __init__(self, heads=2, hidden=2 * D):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(D)
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)
        self.ln2 = nn.LayerNorm(D)
        self.fc1 = nn.Linear(D, hidden)
        self.fc2 = nn.Linear(hidden, D)
        self.register_buffer("causal", torch.tril(torch.ones(T, T, dtype=torch.bool)).view(1, 1, T, T))

    def forward(self, x):
        B, L, C = x.shape
        hd = C // self.heads
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q = q.view(B, L, self.heads, hd).transpose(1, 2)
        k = k.view(B, L, self.heads, hd).transpose(1, 2)
        v = v.view(B, L, self.heads, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(~self.causal[:, :, :L, :L], float("-inf"))
        att = torch.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, L, C)
        x = x + self.proj(y)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.wte = nn.Embedding(vocab, D)
        self.wpe = nn.Embedding(T, D)
        self.blocks = nn.Sequential(Block(), Block())
        self.ln_f = nn.LayerNorm(D)
        with torch.no_grad():
            self.wte.weight.normal_(0.0, 0.02)
            self.wpe.weight.normal_(0.0, 0.02)

    def forward(self, tokens):
        pos = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.wte(tokens) + self.wpe(pos)
        x = self.ln_f(self.blocks(x))
        return x @ self.wte.weight.t()  # tied head


MODELS = [("lstm", LSTMLM), ("gpt", GPT)]


def train(model, data, seed):
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    data = torch.from_numpy(data)
    model.train()
    t0, avg = time.time(), None
    for step in range(STEPS):
        starts = torch.randint(0, len(data) - T - 1, (BATCH,), generator=gen)
        x = torch.stack([data[s:s + T] for s in starts])
        y = torch.stack([data[s + 1:s + T + 1] for s in starts])
        loss = F.cross_entropy(model(x).reshape(-1, model_vocab(model)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        avg = loss.item() if avg is None else 0.98 * avg + 0.02 * loss.item()
        if (step + 1) % 500 == 0:
            log("    step %4d  training loss %.4f  (%.0f s)" % (step + 1, avg, time.time() - t0))
    model.eval()
    return avg


def model_vocab(model):
    return (model.emb if hasattr(model, "emb") else model.wte).num_embeddings


# ---------------------------------------------------------------------------
# Reference numbers
# ---------------------------------------------------------------------------

def norms(t):
    v = t.detach().double().reshape(-1)
    return {"l1": float(v.abs().sum()), "l2": float(v.norm()), "linf": float(v.abs().max()) if v.numel() else 0.0}


def token_loss(out, y):
    """Mean cross-entropy over labelled positions in float64, correct count,
    labelled count, smallest top-2 gap over labelled positions."""
    V = out.shape[-1]
    o, t = out.detach().double().reshape(-1, V), y.reshape(-1)
    keep = t != IGNORE
    loss = float(F.cross_entropy(o[keep], t[keep]))
    correct = int((o[keep].argmax(1) == t[keep]).sum())
    top2 = o[keep].topk(2, dim=1).values
    return loss, correct, int(keep.sum()), float((top2[:, 0] - top2[:, 1]).min())


def mean_loss(out, y):
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), ignore_index=IGNORE)


def export(model, example, opset, mode):
    f = io.BytesIO()
    kw = {}
    if mode == "preserve":
        kw = dict(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, example, f, opset_version=opset, input_names=["tokens"], output_names=["logits"],
                          dynamic_axes={"tokens": {0: "N"}, "logits": {0: "N"}}, **kw)
    return f.getvalue()


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


def make_model(name, cls, index, vocab, train_ids, x, y, chars, out_dir):
    torch.manual_seed(SEED + index)
    model = cls(vocab)
    log("%s: %d parameters, training %d steps" % (name, sum(p.numel() for p in model.parameters()), STEPS))
    train_loss = train(model, train_ids, SEED + 100 + index)
    model.zero_grad(set_to_none=True)
    out_m = model(x)
    mean_loss(out_m, y).backward()
    loss_m, correct_m, tokens, gap = token_loss(out_m, y)
    log("  validation: loss %.5f, perplexity %.3f, accuracy %d/%d, smallest top-2 gap %.2e" %
        (loss_m, math.exp(loss_m), correct_m, tokens, gap))
    if gap < GAP_MIN:
        raise SystemExit("%s: two outputs are within %g: pick another seed" % (name, gap))
    # every state_dict key of a parameter (the tied weight is one parameter
    # under two keys; the file names it by one of them)
    param_of = {}
    for key, t in model.state_dict(keep_vars=True).items():
        if isinstance(t, nn.Parameter):
            param_of[key] = t
    pnames = {id(p): n for n, p in model.named_parameters()}
    for opset, mode in EXPORTS:
        stem = "lm_%s_op%d_%s" % (name, opset, mode)
        data = export(model, x[:2], opset, mode)
        mp = onnx.load_from_string(data)
        onnx.checker.check_model(mp)
        hist = {}
        for node in mp.graph.node:
            hist[node.op_type] = hist.get(node.op_type, 0) + 1
        names = onnx_torch.weight_initializers(mp, BUFFER_INPUTS)
        (out_o,), leaves = onnx_torch.run(mp, {"tokens": x}, names)
        mean_loss(out_o, y).backward()
        grads_o = {n: (leaves[n].grad if leaves[n].grad is not None else torch.zeros_like(leaves[n]))
                   for n in names}
        loss_o, correct_o, _, _ = token_loss(out_o, y)
        logit_err = float((out_o.detach() - out_m.detach()).abs().max())
        if rel(loss_o, loss_m) > 1e-5 or correct_o != correct_m or logit_err > 1e-4:
            raise SystemExit("%s: the ONNX file disagrees with the module: loss %.9g vs %.9g, correct %d vs %d, "
                             "largest output difference %.3g" % (stem, loss_o, loss_m, correct_o, correct_m,
                                                                 logit_err))
        grad_err = 0.0
        if mode == "preserve":
            # every weight of the file is a parameter of the module, each
            # parameter once
            mapped = {}
            for n in names:
                if n not in param_of:
                    raise SystemExit("%s: weight %s of the file is not a parameter of the module" % (stem, n))
                mapped[n] = param_of[n]
            if sorted(pnames[id(p)] for p in mapped.values()) != sorted(pnames.values()):
                raise SystemExit("%s: the file's weights %s are not the module's parameters %s" %
                                 (stem, sorted(names), sorted(pnames.values())))
            grads = {n: p.grad.detach().clone() for n, p in mapped.items()}
            for n in names:
                a, b = norms(grads_o[n])["l2"], norms(grads[n])["l2"]
                grad_err = max(grad_err, abs(a - b) / max(b, 1e-8))
            if grad_err > 1e-4:
                raise SystemExit("%s: gradient of the file and of the module differ by %.3g" % (stem, grad_err))
            source = "module"
        else:
            grads, source = grads_o, "onnx"
        shapes = {i.name: list(i.dims) for i in mp.graph.initializer}
        total = torch.cat([g.double().reshape(-1) for g in grads.values()])
        gjson = norms(total)
        gjson["tensors"] = {n: dict({"shape": shapes[n], "numel": int(g.numel())}, **norms(g))
                            for n, g in grads.items()}
        ref = {
            "family": "lm_" + name,
            "opset": opset,
            "mode": mode,
            "model": stem + ".onnx.gz",
            "dataset": {"inputs": REL + "/lm_tokens_i64.npy", "labels": REL + "/lm_labels_i64.npy",
                        "ignore_index": IGNORE},
            "sequences": VALID_SEQS,
            "seq_len": T,
            "vocab": vocab,
            "tokens": tokens,
            "loss": loss_m,
            "perplexity": math.exp(loss_m),
            "correct": correct_m,
            "accuracy": correct_m / tokens,
            "smallest_top2_gap": gap,
            "logits": {"sequence": 0, "positions": LOGIT_POSITIONS,
                       "values": out_m[0, LOGIT_POSITIONS].detach().double().tolist()},
            "parameters": int(total.numel()),
            "parameter_tensors": len(grads),
            "module_parameters": int(sum(p.numel() for p in model.parameters())),
            "gradient_source": source,
            "gradient": gjson,
            "ops": dict(sorted(hist.items())),
            "check": {"onnx_loss_rel": rel(loss_o, loss_m), "onnx_logits_max_abs": logit_err,
                      "onnx_grad_l2_max_rel": grad_err},
            "train": {"files": TRAIN_FILES, "valid_files": VALID_FILES, "steps": STEPS, "batch": BATCH,
                      "lr": LR, "final_train_loss": train_loss},
            "vocabulary": [None] + chars,  # id -> character; 0 (null) pads
            "versions": {"torch": torch.__version__, "onnx": onnx.__version__},
        }
        with open(os.path.join(out_dir, stem + ".onnx.gz"), "wb") as f:
            f.write(gzip.compress(data, compresslevel=9, mtime=0))
        with open(os.path.join(out_dir, stem + ".json"), "w") as f:
            f.write(onnx_torch.dump_reference(ref))
        log("  %-24s %7d bytes, %2d op types, %2d weight tensors (%d floats), gradient l2 %.6g (%s)%s" %
            (stem, len(data), len(hist), len(grads), total.numel(), gjson["l2"], source,
             "" if mode == "eval" else ", module vs file %.1e" % grad_err))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=OUT, help="output directory (default: %(default)s)")
    ap.add_argument("models", nargs="*", help="only these (lstm, gpt)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    train_ids, valid_ids, chars = make_text()
    vocab = len(chars) + 1
    xv, yv = validation_set(valid_ids)
    np.save(os.path.join(args.out, "lm_tokens_i64.npy"), xv)
    np.save(os.path.join(args.out, "lm_labels_i64.npy"), yv)
    log("vocabulary %d, training %d characters, validation %d sequences of %d" %
        (vocab, len(train_ids), VALID_SEQS, T))
    x, y = torch.from_numpy(xv), torch.from_numpy(yv)
    for index, (name, cls) in enumerate(MODELS):
        if args.models and name not in args.models:
            continue
        make_model(name, cls, index, vocab, train_ids, x, y, chars, args.out)


if __name__ == "__main__":
    main()
