#!/usr/bin/python3
"""Regenerate paracorr's model-zoo fixtures (tests/reference/fixtures/zoo/).

Builds small instances of twelve torchvision classification families with the
torchvision classes themselves (10 classes, 3x32x32 inputs, seeded weights,
BatchNorm with moved running statistics), exports each with
torch.onnx.export at opsets 14 and 17 in two modes, and writes PyTorch's
numbers for every export on a fixed dataset of 32 samples:

  eval      the default export: eval mode, constant folding (BatchNorm is
            folded into the convolutions, so the initializers are not the
            module's parameters);
  preserve  training=TrainingMode.PRESERVE on a model in eval mode,
            do_constant_folding=False: the initializers are the module's
            parameters and buffers under their state_dict names.

The loss, accuracy and output rows come from the nn.Module (model.eval()).
The gradient of the mean loss is taken w.r.t. the file's weights: for
preserve exports these are the module's parameters (the script checks that
the file's weight initializers are exactly model.named_parameters()); for
eval exports they are the folded initializers, and the gradient comes from
evaluating the ONNX file with the small torch interpreter of onnx_torch.py.  The
interpreter also runs every preserve export, and its loss, output and
per-tensor gradients must agree with the module's, so each file is checked
to compute what the module computes.

Run with Debian's Python (torch 1.13, torchvision 0.14, onnx 1.12):

    /usr/bin/python3 tests/reference/make_zoo.py [--out DIR] [FAMILY...]

Nothing is downloaded.  It takes about 40 s of CPU (one thread) and is
deterministic: a second run rewrites every file byte for byte.
"""

import argparse
import gzip
import io
import importlib
import os
import time
import warnings

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
# torchvision.models.googlenet is shadowed by the function of that name
convnext, densenet, efficientnet, googlenet, mobilenetv2, mobilenetv3, regnet, resnet, shufflenetv2, squeezenet, \
    swin_transformer, vision_transformer = (
        importlib.import_module("torchvision.models." + m)
        for m in ("convnext", "densenet", "efficientnet", "googlenet", "mobilenetv2", "mobilenetv3", "regnet",
                  "resnet", "shufflenetv2", "squeezenet", "swin_transformer", "vision_transformer"))
from torchvision.ops.misc import Conv2dNormActivation

import onnx_torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "zoo")
# paths as the test sees them (relative to the project root)
REL = "tests/reference/fixtures/zoo"

SEED = 20240917
SAMPLES = 32
CLASSES = 10
LOGIT_ROWS = [0, 1, 2, 3]
OPSETS = (14, 17)
MODES = ("eval", "preserve")
# Preprocessing the test applies to the uint8 inputs: x = (u8 / 255 - MEAN) / STD
MEAN, STD = 0.5, 0.25
# Warm-up: Adam steps in train mode on the fixed dataset itself, then
# STAT_PASSES forward passes in train mode on noisy copies of it whose batch
# statistics, averaged, become the BatchNorm running statistics (so that the
# eval-mode model computes about what the trained train-mode model did).  The
# steps move every weight off its initialisation (ViT's zero head, ConvNeXt's
# 1e-6 layer scales) and, fitting the 32 samples, take the outputs far from
# uniform: at initialisation most of these models output nearly equal
# logits, a loss within 1e-5 of ln(10) whatever the model computes, which
# a loss comparison could not tell from a broken model.
# The steps stop once the training loss is below WARM_TARGET: well fitted
# models would output near-certain probabilities, with tiny gradients.
WARM_STEPS, WARM_LR, WARM_TARGET, STAT_PASSES = 100, 3e-3, 1.0, 8

# Inputs that paracorr reads as buffers, not weights (core/ops/table.c
# .buffer_inputs): a float initializer consumed at one of these positions is
# not a parameter.  Keep in step with the op table.
BUFFER_INPUTS = {"BatchNormalization": {3, 4}, "Clip": {1, 2}, "Pad": {2}}

THREADS = int(os.environ.get("PARACORR_REF_THREADS", "1"))
torch.set_num_threads(THREADS)
torch.use_deterministic_algorithms(True)


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------------------
# The fixed dataset: 32 uint8 images (smooth random fields plus noise) and
# labels covering all ten classes.  The float inputs are computed exactly as
# paracorr's loader does it (double arithmetic, one rounding to float32).
# ---------------------------------------------------------------------------

def make_dataset():
    rng = np.random.RandomState(SEED)
    coarse = torch.from_numpy(rng.randn(SAMPLES, 3, 4, 4).astype(np.float32))
    smooth = F.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False).numpy()
    noise = rng.randn(SAMPLES, 3, 32, 32).astype(np.float32)
    img = np.clip(np.rint(128.0 + 45.0 * smooth + 20.0 * noise), 0, 255).astype(np.uint8)
    labels = rng.permutation(np.arange(SAMPLES) % CLASSES).astype(np.int64)
    return img, labels


def to_float(img):
    return ((img.astype(np.float64) * (1.0 / 255.0) - MEAN) / STD).astype(np.float32)


# ---------------------------------------------------------------------------
# Families.  Where a torchvision class hard-codes its widths (ResNet,
# SqueezeNet, GoogLeNet, MobileNetV2's 1280-wide last layer), the model is
# the torchvision class with its layers rebuilt narrower from the same
# torchvision building blocks, re-initialised as the class initialises them.
# ---------------------------------------------------------------------------

def build_resnet18():
    # ResNet-18's layout (BasicBlock, 7x7 stem, max pool, four stages) with
    # one block per stage ([1,1,1,1]: every kind of block ResNet-18 has) at
    # 1/16 of its width: 4, 8, 16, 32 channels.
    w = 4
    m = resnet.ResNet(resnet.BasicBlock, [1, 1, 1, 1], num_classes=CLASSES)
    m.inplanes, m.dilation = w, 1
    m.conv1 = nn.Conv2d(3, w, kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = nn.BatchNorm2d(w)
    m.layer1 = m._make_layer(resnet.BasicBlock, w, 1)
    m.layer2 = m._make_layer(resnet.BasicBlock, 2 * w, 1, stride=2)
    m.layer3 = m._make_layer(resnet.BasicBlock, 4 * w, 1, stride=2)
    m.layer4 = m._make_layer(resnet.BasicBlock, 8 * w, 1, stride=2)
    m.fc = nn.Linear(8 * w, CLASSES)
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(mod, nn.BatchNorm2d):
            nn.init.constant_(mod.weight, 1)
            nn.init.constant_(mod.bias, 0)
    return m


def build_squeezenet():
    # SqueezeNet 1.1's layer list at 1/8 of its width.
    Fire = squeezenet.Fire
    m = squeezenet.SqueezeNet(version="1_1", num_classes=CLASSES)
    m.features = nn.Sequential(
        nn.Conv2d(3, 8, kernel_size=3, stride=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(8, 2, 8, 8),
        Fire(16, 2, 8, 8),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(16, 4, 16, 16),
        Fire(32, 4, 16, 16),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(32, 6, 24, 24),
        Fire(48, 6, 24, 24),
        Fire(48, 8, 32, 32),
        Fire(64, 8, 32, 32),
    )
    final_conv = nn.Conv2d(64, CLASSES, kernel_size=1)
    m.classifier[1] = final_conv
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            if mod is final_conv:
                nn.init.normal_(mod.weight, mean=0.0, std=0.01)
            else:
                nn.init.kaiming_uniform_(mod.weight)
            if mod.bias is not None:
                nn.init.constant_(mod.bias, 0)
    # The classifier ends in ReLU: from a zero bias the warm-up drove every
    # class output to 0 (dead ReLUs, all-zero logits); start them positive.
    nn.init.constant_(final_conv.bias, 0.5)
    return m


def build_mobilenet_v2():
    # width_mult 0.25, fewer repeats and no 320-channel stage; the last 1x1
    # layer 128 wide instead of MobileNetV2's fixed 1280.
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2], [6, 64, 1, 2], [6, 96, 1, 1], [6, 160, 1, 2]]
    m = mobilenetv2.MobileNetV2(num_classes=CLASSES, width_mult=0.25, inverted_residual_setting=setting)
    cin = m.features[-1][0].in_channels
    m.features[-1] = Conv2dNormActivation(cin, 128, kernel_size=1, norm_layer=nn.BatchNorm2d,
                                          activation_layer=nn.ReLU6)
    m.last_channel = 128
    m.classifier[1] = nn.Linear(128, CLASSES)
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out")
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)
        elif isinstance(mod, nn.BatchNorm2d):
            nn.init.ones_(mod.weight)
            nn.init.zeros_(mod.bias)
        elif isinstance(mod, nn.Linear):
            nn.init.normal_(mod.weight, 0, 0.01)
            nn.init.zeros_(mod.bias)
    return m


def build_mobilenet_v3_small():
    setting, last = mobilenetv3._mobilenet_v3_conf("mobilenet_v3_small", width_mult=0.25, reduced_tail=True)
    return mobilenetv3.MobileNetV3(setting, last, num_classes=CLASSES)


def build_efficientnet_b0():
    setting, last = efficientnet._efficientnet_conf("efficientnet_b0", width_mult=0.1, depth_mult=0.2)
    return efficientnet.EfficientNet(setting, 0.2, num_classes=CLASSES, last_channel=last)


def build_regnet():
    # RegNetY-style: squeeze-excitation, group convolutions.
    params = regnet.BlockParams.from_init_params(depth=4, w_0=8, w_a=8, w_m=2, group_width=8, se_ratio=0.25)
    return regnet.RegNet(params, num_classes=CLASSES, stem_width=8)


def build_googlenet():
    # GoogLeNet at 1/16 of its width: its conv and Inception blocks are
    # injected (the class's `blocks` argument) with every channel count
    # divided by 16 except the 3 input channels.
    k = 16

    def conv_block(cin, cout, **kw):
        return googlenet.BasicConv2d(cin if cin == 3 else cin // k, cout // k, **kw)

    def inception_block(cin, c1, c3r, c3, c5r, c5, pp, conv_block=None):
        return googlenet.Inception(cin // k, c1 // k, c3r // k, c3 // k, max(1, c5r // k), c5 // k, pp // k)

    m = googlenet.GoogLeNet(num_classes=CLASSES, aux_logits=False, init_weights=True,
                            blocks=[conv_block, inception_block, googlenet.InceptionAux])
    m.fc = nn.Linear(1024 // k, CLASSES)
    torch.nn.init.trunc_normal_(m.fc.weight, mean=0.0, std=0.01, a=-2, b=2)
    return m


def build_convnext():
    cfg = convnext.CNBlockConfig
    setting = [cfg(8, 16, 1), cfg(16, 32, 1), cfg(32, None, 1)]
    return convnext.ConvNeXt(setting, stochastic_depth_prob=0.1, num_classes=CLASSES)


def build_vit():
    return vision_transformer.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                hidden_dim=32, mlp_dim=64, num_classes=CLASSES)


def build_swin():
    return swin_transformer.SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 2],
                                            window_size=[4, 4], num_classes=CLASSES)


def build_shufflenet_v2():
    return shufflenetv2.ShuffleNetV2([2, 2, 2], [8, 16, 32, 64, 128], num_classes=CLASSES)


def build_densenet():
    return densenet.DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=16, bn_size=4,
                             num_classes=CLASSES)


FAMILIES = [
    ("resnet18", build_resnet18),
    ("squeezenet", build_squeezenet),
    ("mobilenet_v2", build_mobilenet_v2),
    ("mobilenet_v3_small", build_mobilenet_v3_small),
    ("efficientnet_b0", build_efficientnet_b0),
    ("regnet", build_regnet),
    ("googlenet", build_googlenet),
    ("convnext", build_convnext),
    ("vit", build_vit),
    ("swin", build_swin),
    ("shufflenet_v2", build_shufflenet_v2),
    ("densenet", build_densenet),
]


# ---------------------------------------------------------------------------
# Weights: seeded initialisation, then a short warm-up.
# ---------------------------------------------------------------------------

def perturb_affine(model, gen):
    """BatchNorm and LayerNorm scales and shifts off their 1 / 0 start.

    The exporter merges initializers of equal value into one, and two
    parameters that start equal and always receive equal gradients (the
    biases of the two BatchNorms summed at a ResNet downsampling block) stay
    equal through training; the merged file would no longer hold each
    parameter under its own name."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (nn.BatchNorm2d, nn.LayerNorm)) and mod.weight is not None:
                mod.weight.uniform_(0.75, 1.25, generator=gen)
                mod.bias.normal_(0.0, 0.1, generator=gen)


def warm_up(model, seed, x, y):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout and stochastic depth masks
    perturb_affine(model, gen)
    opt = torch.optim.Adam(model.parameters(), lr=WARM_LR)
    model.train()
    for step in range(WARM_STEPS):
        loss = F.cross_entropy(model(x), y)
        if loss.item() < WARM_TARGET:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the passes
    with torch.no_grad():
        for _ in range(STAT_PASSES):
            model(x + 0.1 * torch.randn(x.shape, generator=gen))
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    model.eval()
    return step


# ---------------------------------------------------------------------------
# Export and reference numbers
# ---------------------------------------------------------------------------

def export(model, example, opset, mode):
    f = io.BytesIO()
    kw = {}
    if mode == "preserve":
        kw = dict(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
        torch.onnx.export(model, example, f, opset_version=opset, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, **kw)
    return f.getvalue()


def norms(t):
    v = t.detach().double().reshape(-1)
    return {"l1": float(v.abs().sum()), "l2": float(v.norm()), "linf": float(v.abs().max()) if v.numel() else 0.0}


def loss_and_accuracy(out, y):
    """Mean cross-entropy in float64 from the float32 outputs (as paracorr
    reduces it), correct count, and the smallest gap between the top two
    outputs of a sample: below ~1e-4 an exact accuracy match would depend on
    rounding."""
    loss = float(F.cross_entropy(out.detach().double(), y))
    correct = int((out.argmax(1) == y).sum())
    top2 = out.detach().double().topk(2, dim=1).values
    return loss, correct, float((top2[:, 0] - top2[:, 1]).min())


def module_reference(model, x, y):
    model.zero_grad(set_to_none=True)
    out = model(x)
    F.cross_entropy(out, y).backward()
    grads = {n: (p.grad if p.grad is not None else torch.zeros_like(p)).detach().clone()
             for n, p in model.named_parameters()}
    return out.detach(), grads


def onnx_reference(mp, x, y):
    names = onnx_torch.weight_initializers(mp, BUFFER_INPUTS)
    (out,), leaves = onnx_torch.run(mp, {"input": x}, names)
    F.cross_entropy(out, y).backward()
    grads = {n: (leaves[n].grad if leaves[n].grad is not None else torch.zeros_like(leaves[n])).detach()
             for n in names}
    return out.detach(), grads


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


def gradient_json(grads, shapes, node_of):
    total = torch.cat([g.detach().double().reshape(-1) for g in grads.values()])
    tensors = {}
    for n, g in grads.items():
        d = {"shape": list(shapes[n]), "numel": int(g.numel()), "node": node_of.get(n, "")}
        d.update(norms(g))
        tensors[n] = d
    out = norms(total)
    out["tensors"] = tensors
    return out


def first_consumers(mp):
    node_of = {}
    for n in mp.graph.node:
        for name in n.input:
            node_of.setdefault(name, n.name)
    return node_of


def make_family(name, build, index, x, y, out_dir):
    torch.manual_seed(SEED + index)
    model = build()
    steps = warm_up(model, SEED + 1000 + index, x, y)
    out_m, grads_m = module_reference(model, x, y)
    loss_m, correct_m, margin = loss_and_accuracy(out_m, y)
    n_params = sum(p.numel() for p in model.parameters())
    log("%-20s %6d parameters, %3d warm-up steps, loss %.6f, accuracy %d/%d, smallest top-2 gap %.2e" %
        (name, n_params, steps, loss_m, correct_m, SAMPLES, margin))
    if margin < 1e-4:
        raise SystemExit("%s: two outputs of a sample are within %g: pick another seed" % (name, margin))
    for opset in OPSETS:
        for mode in MODES:
            stem = "%s_op%d_%s" % (name, opset, mode)
            data = export(model, x[:2], opset, mode)
            mp = onnx.load_from_string(data)
            onnx.checker.check_model(mp)
            assert [i.name for i in mp.graph.input] == ["input"], [i.name for i in mp.graph.input]
            hist = {}
            for node in mp.graph.node:
                hist[node.op_type] = hist.get(node.op_type, 0) + 1

            # the file, evaluated on its own, must compute what the module does
            out_o, grads_o = onnx_reference(mp, x, y)
            loss_o, correct_o, _ = loss_and_accuracy(out_o, y)
            logit_err = float((out_o - out_m).abs().max())
            if rel(loss_o, loss_m) > 1e-5 or correct_o != correct_m or logit_err > 1e-4:
                raise SystemExit("%s: the ONNX file disagrees with the module: loss %.9g vs %.9g, correct %d vs %d, "
                                 "largest output difference %.3g" % (stem, loss_o, loss_m, correct_o, correct_m,
                                                                     logit_err))
            shapes = {i.name: list(i.dims) for i in mp.graph.initializer}
            grad_err = 0.0
            if mode == "preserve":
                # PyTorch's parameters are exactly the file's weights, by name
                pnames = {n for n, _ in model.named_parameters()}
                if set(grads_o) != pnames:
                    raise SystemExit("%s: weights of the file are not the module's parameters: only in the file %s, "
                                     "only in the module %s" % (stem, sorted(set(grads_o) - pnames),
                                                                sorted(pnames - set(grads_o))))
                for n, g in grads_m.items():
                    a, b = norms(grads_o[n])["l2"], norms(g)["l2"]
                    grad_err = max(grad_err, abs(a - b) / max(b, 1e-8))
                grads, source = grads_m, "module"
            else:
                grads, source = grads_o, "onnx"
            if grad_err > 1e-4:
                raise SystemExit("%s: gradient of the file and of the module differ by %.3g" % (stem, grad_err))
            gjson = gradient_json(grads, shapes, first_consumers(mp))
            ref = {
                "family": name,
                "opset": opset,
                "mode": mode,
                "model": stem + ".onnx.gz",
                "dataset": {"inputs": REL + "/inputs_u8.npy", "labels": REL + "/labels_i64.npy", "mean": MEAN,
                            "std": STD},
                "samples": SAMPLES,
                "loss": loss_m,
                "correct": correct_m,
                "accuracy": correct_m / SAMPLES,
                "logits": {"indices": LOGIT_ROWS, "values": out_m[LOGIT_ROWS].double().tolist()},
                "smallest_top2_gap": margin,
                "parameters": int(sum(int(np.prod(shapes[n])) for n in grads)),
                "parameter_tensors": len(grads),
                "module_parameters": int(n_params),
                "warm_up_steps": steps,
                "gradient_source": source,
                "gradient": gjson,
                "ops": dict(sorted(hist.items())),
                "check": {"onnx_loss_rel": rel(loss_o, loss_m), "onnx_logits_max_abs": logit_err,
                          "onnx_grad_l2_max_rel": grad_err},
                "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                             "onnx": onnx.__version__},
            }
            with open(os.path.join(out_dir, stem + ".onnx.gz"), "wb") as f:
                f.write(gzip.compress(data, compresslevel=9, mtime=0))
            with open(os.path.join(out_dir, stem + ".json"), "w") as f:
                f.write(onnx_torch.dump_reference(ref))
            log("  %-36s %7d bytes, %2d op types, %3d weight tensors, gradient l2 %.6g (%s)%s" %
                (stem, len(data), len(hist), len(grads), gjson["l2"], source,
                 "" if mode == "eval" else ", module vs file %.1e" % grad_err))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=OUT, help="output directory (default: %(default)s)")
    ap.add_argument("families", nargs="*", help="only these families")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    known = [n for n, _ in FAMILIES]
    for f in args.families:
        if f not in known:
            raise SystemExit("unknown family %s (known: %s)" % (f, ", ".join(known)))

    img, labels = make_dataset()
    np.save(os.path.join(args.out, "inputs_u8.npy"), img)
    np.save(os.path.join(args.out, "labels_i64.npy"), labels)
    x, y = torch.from_numpy(to_float(img)), torch.from_numpy(labels)
    t0 = time.time()
    for index, (name, build) in enumerate(FAMILIES):
        if args.families and name not in args.families:
            continue
        make_family(name, build, index, x, y, args.out)
    log("done in %.0f s" % (time.time() - t0))


if __name__ == "__main__":
    main()
