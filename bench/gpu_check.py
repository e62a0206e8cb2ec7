"""A prepared GPU check (issue 11, item 12): one script, <= 8 minutes on one H100, every section independent.

Sections (a failing one is printed and the next one runs; the exit status is 1 if any failed):

    env         versions of torch / CUDA / timm / the optional packages, the device and the AMP dtype
    throughput  images/s of a plain ResNet-50 training step vs an Adv+ step (PGD-10 through ``AdvLabelAug``),
                both through ``train_one_epoch``: bf16 autocast + channels_last, then fp32; each Adv+/plain cost
                ratio against the frozen-weight limit (10*2+3)/3 = 7.67x and the naive 11x; the P4 target
                (bf16 Adv+ images/s >= 0.9 * plain images/s / 7.67)
    pgd_eval    PGD-40 evaluation images/s: the ``pgd`` evaluator (EarlyStopPGD, sound protocol) on points the
                model classifies correctly, and a full 40-step ``attacks.PGD`` (no early stop) for reference
    eval_amp    clean-evaluation images/s of the same model through the ``clean`` evaluator (TensorDataset on the
                host, batches copied to the device) in fp32 and with the opt-in ``precision: bf16`` autocast, and
                how many of the predictions agree
    decode      clean evaluation of a generated JPEG folder (``--decode-n`` images, ImageNet-like sizes, 224²):
                ``runtime.decode: cpu`` (PIL in ``--decode-workers`` loader workers) vs ``gpu`` (bytes in the
                workers, nvJPEG decode + resize + crop on the device) vs the model's bf16 forward-only throughput
                on images already on the device, side by side; the P7 ratio (device decoding / forward-only,
                target >= 0.8), the CPU path's ratio, top-1 agreement and pixel differences of the two paths, and
                the ImageNet-C (75 x 50 000 images) and validation (50 000) time per model computed from them
    autoattack  images/s of the ``autoattack`` evaluator vs ``pyautoattack.AutoAttack`` called directly on the
                same images and model (target: ratio <= 1.05), and the time per 1 000 images on a model whose
                points survive every attack (``SurvivorModel``: the same network, but on ``--aa-survive``
                of the points the logits are a fixed margin for the clean label with a zero input gradient, so
                APGD-CE, APGD-T, FAB-T and Square all run their full budgets on them, as on a robust model)
    ddp         one training step through the hook under DistributedDataParallel, world size 1 (NCCL on CUDA,
                gloo on CPU; env:// init on localhost)
    e2e         ``rbla train`` -> ``rbla zoo export`` -> ``rbla evaluate`` (every evaluator) on a generated
                ImageNet-layout folder, as subprocesses ``python -m robustbench_labelaug ...``

    python bench/gpu_check.py --out gpu_check.json                 # on the GPU machine
    python bench/gpu_check.py --small --out /tmp/gpu_check.json    # CPU dry run (also RBLA_GPU_CHECK_SMALL=1)
    python bench/gpu_check.py --sections throughput,ddp            # a subset

The final summary is printed as JSON (last block of stdout) and written to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if sys.path[:1] != [str(REPO)]:  # first: a `tests` package from site-packages must not shadow ours
    sys.path.insert(0, str(REPO))

FROZEN_LIMIT = (10 * 2 + 3) / 3  # PGD-10 with frozen weights: 10 x (forward + input backward) + 1 training step
NAIVE_LIMIT = 11.0  # 10 attack passes + 1 training pass, each costing a full training step
P4_FACTOR = 0.9
SECTIONS = ("env", "throughput", "pgd_eval", "eval_amp", "decode", "autoattack", "ddp", "e2e")
P7_FACTOR = 0.8  # device-decoded clean evaluation >= 0.8 x the bf16 forward-only throughput
AA_RATIO_MAX = 1.05  # the autoattack evaluator's time / pyautoattack's own, on the same images and model
IMAGENET_C_IMAGES = 75 * 50_000
OPTIONAL_PACKAGES = {  # import name -> distribution name
    "torch": "torch", "torchvision": "torchvision", "timm": "timm", "numpy": "numpy", "scipy": "scipy",
    "matplotlib": "matplotlib", "tqdm": "tqdm", "yaml": "pyyaml", "safetensors": "safetensors", "PIL": "pillow",
    "sklearn": "scikit-learn", "robustbench": "robustbench", "pyautoattack": "pyautoattack",
    "torchattacks": "torchattacks", "imagenet_x": "imagenet-x", "imagecorruptions": "imagecorruptions",
}
E2E_WNIDS = ["n01440764", "n01443537", "n01484850", "n01491361"]


def log(msg: str = "") -> None:
    print(msg, flush=True)


def settings(args: argparse.Namespace) -> dict:
    """Sizes for the full GPU run or the small CPU dry run (command-line values override)."""
    import torch

    small = args.small or os.environ.get("RBLA_GPU_CHECK_SMALL", "").strip() not in ("", "0")
    if args.device:
        device = args.device
    else:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = {
        "small": small, "device": device, "model": "resnet50",
        "input_size": 32 if small else 224, "batch_size": 2 if small else 128,
        "warmup": 1 if small else 3, "steps": 1 if small else 10,
        "pgd_n": 4 if small else 256, "pgd_batch": 4 if small else 128, "pgd_steps": 5 if small else 40,
        "fp32": True, "e2e_model": "resnet8_tiny" if small else "resnet50", "e2e_size": 32 if small else 64,
        "e2e_adv_steps": 2, "e2e_workers": 0 if small else 4,
        "decode_n": 16 if small else 4096, "decode_batch": 4 if small else 256,
        "decode_workers": 0 if small else min(16, os.cpu_count() or 1),
        "aa_n": 4 if small else 256, "aa_survive_n": 4 if small else 128, "aa_batch": 4 if small else 128,
        "aa_survive": 0.9, "aa_model": "resnet8_tiny" if small else "resnet50",
    }
    if args.model is not None:
        cfg["aa_model"] = args.model
    for key in ("model", "input_size", "batch_size", "steps", "warmup", "decode_n", "decode_workers", "aa_n",
                "aa_survive_n", "aa_survive"):
        value = getattr(args, key)
        if value is not None:
            cfg[key] = value
    if args.no_fp32:
        cfg["fp32"] = False
    return cfg


def sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def amp_dtype_for(device) -> str:
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "float16"
    return "bfloat16"


# ---------------------------------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------------------------------
def section_env(cfg: dict, work: Path) -> dict:
    import torch

    versions = {}
    for module, dist in OPTIONAL_PACKAGES.items():
        try:
            from importlib.metadata import version

            try:
                versions[dist] = version(dist)
            except Exception:  # noqa: BLE001 - distribution metadata missing: ask the module itself
                versions[dist] = getattr(importlib.import_module(module), "__version__", "installed")
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - a missing optional package is reported, not fatal
            versions[dist] = f"MISSING ({type(exc).__name__}: {str(exc)[:80]})"
    dev = torch.device(cfg["device"])
    out = {"python": platform.python_version(), "platform": platform.platform(), "versions": versions,
           "device": str(dev), "amp_dtype": amp_dtype_for(dev), "torch_cuda": torch.version.cuda,
           "cuda_available": torch.cuda.is_available(), "small": cfg["small"], "cpu_count": os.cpu_count(),
           "torch_threads": torch.get_num_threads()}
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        out.update(gpu=torch.cuda.get_device_name(dev), gpu_memory_gib=round(props.total_memory / 2**30, 1),
                   capability=".".join(map(str, torch.cuda.get_device_capability(dev))),
                   cudnn=torch.backends.cudnn.version(), bf16_supported=torch.cuda.is_bf16_supported(),
                   cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
                   matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32)
        try:
            out["nvidia_smi"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=30).stdout.strip()
        except Exception as exc:  # noqa: BLE001
            out["nvidia_smi"] = f"unavailable ({type(exc).__name__})"
    for k, v in out.items():
        if k != "versions":
            log(f"  {k}: {v}")
    for k, v in versions.items():
        log(f"  {k:18s} {v}")
    return out


def _train_throughput(cfg: dict, mode: str, amp: bool, channels_last: bool) -> dict:
    """images/s of ``train_one_epoch`` over the same batch repeated (data already on the device)."""
    import torch
    from timm.loss import SoftTargetCrossEntropy

    from robustbench_labelaug import AdvLabelAug, create_classifier
    from robustbench_labelaug.train.engine import train_one_epoch

    dev = torch.device(cfg["device"])
    k, m = 1000, 1 if mode == "adv_plus" else 0
    torch.manual_seed(0)
    model = create_classifier(cfg["model"], k, m).to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    b, s = cfg["batch_size"], cfg["input_size"]
    x = torch.rand(b, 3, s, s, device=dev)
    y = torch.randint(0, k, (b,), device=dev)
    dtype = getattr(torch, amp_dtype_for(dev)) if amp else None
    scaler = torch.amp.GradScaler(dev.type) if dtype == torch.float16 else None
    # every row attacked: the cost of an adversarial step
    hook = AdvLabelAug(model, k, mode=mode, eps=0.03, steps=10, num_ops=1, autocast_dtype=dtype,
                       protocol=None if mode == "std" else "adversarial")

    def epoch(n: int) -> float:
        sync(dev)
        start = time.perf_counter()
        train_one_epoch(0, model, [(x, y)] * n, optimizer, SoftTargetCrossEntropy(), hook, dev,
                        autocast_dtype=dtype, scaler=scaler, channels_last=channels_last, progress=False)
        sync(dev)
        return time.perf_counter() - start

    epoch(cfg["warmup"])
    elapsed = epoch(cfg["steps"])
    result = {"images_per_s": b * cfg["steps"] / elapsed, "step_ms": 1e3 * elapsed / cfg["steps"]}
    if dev.type == "cuda":
        result["max_memory_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 2)
        torch.cuda.reset_peak_memory_stats(dev)
    return result


def _release(device) -> None:
    import gc

    import torch

    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def section_throughput(cfg: dict, work: Path) -> dict:
    import torch

    dev = torch.device(cfg["device"])
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    precisions = [("amp_" + amp_dtype_for(dev) + "_channels_last", True, True)]
    if cfg["fp32"]:
        precisions.append(("fp32", False, False))
    out: dict = {"model": cfg["model"], "batch_size": cfg["batch_size"], "input_size": cfg["input_size"],
                 "timed_steps": cfg["steps"], "frozen_weight_limit": round(FROZEN_LIMIT, 3),
                 "naive_limit": NAIVE_LIMIT}
    for label, amp, cl in precisions:
        plain = _train_throughput(cfg, "std", amp, cl)
        _release(dev)
        adv = _train_throughput(cfg, "adv_plus", amp, cl)
        _release(dev)
        ratio = plain["images_per_s"] / adv["images_per_s"]
        row = {"plain": plain, "adv_plus_pgd10": adv, "cost_ratio": round(ratio, 3),
               "ratio_vs_frozen_limit": round(ratio / FROZEN_LIMIT, 3),
               "ratio_vs_naive": round(ratio / NAIVE_LIMIT, 3)}
        out[label] = row
        log(f"  {label:28s} plain {plain['images_per_s']:9.1f} img/s   Adv+ PGD-10 {adv['images_per_s']:8.1f} img/s"
            f"   cost {ratio:5.2f}x  (= {ratio / FROZEN_LIMIT:.2f} x frozen limit {FROZEN_LIMIT:.2f}, "
            f"{ratio / NAIVE_LIMIT:.2f} x naive {NAIVE_LIMIT:g})")
    amp_row = out[precisions[0][0]]
    target = P4_FACTOR * amp_row["plain"]["images_per_s"] / FROZEN_LIMIT
    out["p4"] = {"adv_plus_images_per_s": amp_row["adv_plus_pgd10"]["images_per_s"], "target_images_per_s": target,
                 "met": amp_row["adv_plus_pgd10"]["images_per_s"] >= target}
    log(f"  P4 target: Adv+ {out['p4']['adv_plus_images_per_s']:.1f} img/s >= 0.9 x plain / {FROZEN_LIMIT:.2f} = "
        f"{target:.1f} img/s -> {'MET' if out['p4']['met'] else 'NOT MET'}")
    return out


def _eval_model(cfg: dict, k: int = 1000):
    """The device (cuDNN autotuning on CUDA) and a seeded ``cfg["model"]`` classifier (K=``k``, M=1) on it."""
    import torch

    from robustbench_labelaug import create_classifier

    dev = torch.device(cfg["device"])
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(0)
    return dev, create_classifier(cfg["model"], k, 1).to(dev).eval()


def section_pgd_eval(cfg: dict, work: Path) -> dict:
    import torch
    from torch.utils.data import TensorDataset

    from robustbench_labelaug import k_way
    from robustbench_labelaug.attacks.pgd import PGD
    from robustbench_labelaug.evaluation import EvalContext, create_evaluator
    from robustbench_labelaug.results.rules import default_alpha

    k = 1000
    dev, model = _eval_model(cfg, k)
    n, s, b = cfg["pgd_n"], cfg["input_size"], cfg["pgd_batch"]
    x = torch.rand(n, 3, s, s)
    with torch.no_grad():  # label every point with the model's own prediction: every point gets attacked
        y = torch.cat([model(x[i:i + b].to(dev))[:, :k].argmax(1).cpu() for i in range(0, n, b)])
    ctx = EvalContext(num_classes=k, device=dev, batch_size=b, progress=False, num_workers=0)
    evaluator = create_evaluator("pgd", eps=0.03, steps=cfg["pgd_steps"])
    evaluator.run(model, TensorDataset(x[:b], y[:b]), ctx)  # warm-up (cudnn autotuning)
    sync(dev)
    start = time.perf_counter()
    result = create_evaluator("pgd", eps=0.03, steps=cfg["pgd_steps"]).run(model, TensorDataset(x, y), ctx)
    sync(dev)
    elapsed = time.perf_counter() - start
    details = {key: result.details.get(key) for key in ("attacked", "broken", "mean_iterations", "iterations")
               if key in result.details}
    out = {"evaluator": f"pgd (EarlyStopPGD, sound, PGD-{cfg['pgd_steps']}, fp32)", "n": n, "batch_size": b,
           "input_size": s, "images_per_s": n / elapsed, "robust_error": result.metrics.get("robust_error"),
           "details": details}
    attack = PGD(k_way(model, k), eps=0.03, alpha=default_alpha(0.03, cfg["pgd_steps"]), steps=cfg["pgd_steps"])
    xb, yb = x[:b].to(dev), y[:b].to(dev)
    attack(xb, yb)
    sync(dev)
    start = time.perf_counter()
    attack(xb, yb)
    sync(dev)
    out["full_40_steps_images_per_s"] = len(xb) / (time.perf_counter() - start)
    log(f"  PGD-{cfg['pgd_steps']} evaluator: {out['images_per_s']:.1f} img/s on {n} images ({details}); "
        f"full {cfg['pgd_steps']} steps without early stop: {out['full_40_steps_images_per_s']:.1f} img/s")
    return out


def section_eval_amp(cfg: dict, work: Path) -> dict:
    import numpy as np
    import torch
    from torch.utils.data import TensorDataset

    from robustbench_labelaug.evaluation import EvalContext, create_evaluator

    k, s = 1000, cfg["input_size"]
    n, b = (8, 4) if cfg["small"] else (4096, 256)
    dev, model = _eval_model(cfg, k)
    data = TensorDataset(torch.rand(n, 3, s, s), torch.randint(0, k, (n,)))
    ctx = EvalContext(num_classes=k, device=dev, batch_size=b, progress=False)
    precision = "bf16" if amp_dtype_for(dev) == "bfloat16" else "fp16"
    out: dict = {"model": cfg["model"], "n": n, "batch_size": b, "input_size": s}
    preds = {}
    for label in ("fp32", precision):
        evaluator = create_evaluator("clean", precision=label, n_examples=b)
        evaluator.run(model, data, ctx)  # warm-up (cudnn autotuning)
        sync(dev)
        start = time.perf_counter()
        result = create_evaluator("clean", precision=label).run(model, data, ctx)
        sync(dev)
        out[label] = {"images_per_s": n / (time.perf_counter() - start), "error": result.metrics["error"]}
        dtype = torch.float16 if label == "fp16" else torch.bfloat16
        with torch.no_grad(), torch.autocast(dev.type, dtype=dtype, enabled=label != "fp32"):
            preds[label] = np.concatenate([model(data.tensors[0][i:i + b].to(dev))[:, :k].argmax(1).cpu().numpy()
                                           for i in range(0, n, b)])
    out["speedup"] = round(out[precision]["images_per_s"] / out["fp32"]["images_per_s"], 3)
    out["agreement"] = float((preds["fp32"] == preds[precision]).mean())
    log(f"  clean evaluator: fp32 {out['fp32']['images_per_s']:.1f} img/s, {precision} "
        f"{out[precision]['images_per_s']:.1f} img/s ({out['speedup']:.2f}x); top-1 agreement "
        f"{100 * out['agreement']:.1f} %")
    return out


def _timed(dev, fn) -> tuple[float, object]:
    sync(dev)
    start = time.perf_counter()
    out = fn()
    sync(dev)
    return time.perf_counter() - start, out


def section_decode(cfg: dict, work: Path) -> dict:
    """Clean evaluation of a generated JPEG folder: CPU decoding vs device decoding vs forward-only (P7)."""
    import torch

    from robustbench_labelaug.data import create_dataset, imagenet_wnids
    from robustbench_labelaug.data.device_decode import device_batches
    from robustbench_labelaug.evaluation import EvalContext, create_evaluator
    from tests.fixtures_jpeg import IMAGENET_SIZES, make_jpeg_folder

    k, s, n, b = 1000, cfg["input_size"], cfg["decode_n"], cfg["decode_batch"]
    workers = cfg["decode_workers"]
    sizes = ((60, 45), (45, 60), (50, 50), (64, 48)) if cfg["small"] else IMAGENET_SIZES
    root = work / f"decode_jpegs_{n}"
    started = time.perf_counter()
    if not (root / "val").is_dir():
        make_jpeg_folder(root, imagenet_wnids()[:10], n, sizes=sizes)
    generated_s = time.perf_counter() - started
    dataset = create_dataset("imagenet", root, "val", input_size=s)
    dev, model = _eval_model(cfg, k)
    model = model.to(memory_format=torch.channels_last)
    precision = "bf16" if amp_dtype_for(dev) == "bfloat16" else "fp16"
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    out: dict = {"model": cfg["model"], "n": n, "batch_size": b, "input_size": s, "precision": precision,
                 "channels_last": True, "cpu_decode_workers": workers, "jpeg_sizes": [list(x) for x in sizes],
                 "generate_s": round(generated_s, 1)}

    x_dev = torch.rand(b, 3, s, s, device=dev).contiguous(memory_format=torch.channels_last)

    def forward_only(batches: int) -> None:
        with torch.no_grad(), torch.autocast(dev.type, dtype=dtype):
            for _ in range(batches):
                model(x_dev)

    def clean(decode: str, n_examples: int | None = None):
        shared: dict = {}
        ctx = EvalContext(num_classes=k, device=dev, batch_size=b, num_workers=workers, progress=False,
                          decode=decode, predictions=shared)
        result = create_evaluator("clean", precision=precision, n_examples=n_examples).run(model, dataset, ctx)
        (held,) = shared.values()
        return result, held[1]["y_pred"]

    forward_only(2)  # warm-up: cuDNN autotuning
    for decode in ("cpu", "gpu"):
        clean(decode, n_examples=b)
    batches = max(1, n // b)
    elapsed, _ = _timed(dev, lambda: forward_only(batches))
    out["forward_only_images_per_s"] = batches * b / elapsed
    preds = {}
    for decode in ("cpu", "gpu"):
        elapsed, (result, preds[decode]) = _timed(dev, lambda decode=decode: clean(decode))
        out[f"{decode}_decode"] = {"images_per_s": n / elapsed, "seconds": round(elapsed, 2),
                                   "error": result.metrics["error"]}
    forward = out["forward_only_images_per_s"]
    for decode in ("cpu", "gpu"):
        out[f"{decode}_decode"]["ratio_to_forward_only"] = round(out[f"{decode}_decode"]["images_per_s"] / forward, 3)
    out["top1_agreement"] = float((preds["cpu"] == preds["gpu"]).mean())
    # pixels: the device path's first batch against the PIL path's images
    loader, decoder = device_batches(dataset, list(range(min(n, b))), batch_size=b, num_workers=0, device=dev)
    x_gpu, _, idx = decoder(next(iter(loader)))
    ref = torch.stack([dataset[int(i)][0] for i in idx.cpu()]).to(dev)
    diff = (x_gpu.float() - ref).abs() * 255
    out["pixels"] = {"max_abs_diff_levels": round(float(diff.max()), 3),
                     "mean_abs_diff_levels": round(float(diff.mean()), 4),
                     "share_differing": round(float((diff > 0.5).float().mean()), 5), "images": int(len(idx))}
    gpu_ips, cpu_ips = out["gpu_decode"]["images_per_s"], out["cpu_decode"]["images_per_s"]
    out["p7"] = {"ratio": round(gpu_ips / forward, 3), "target": P7_FACTOR, "met": gpu_ips >= P7_FACTOR * forward}
    out["per_model"] = {f"{decode}_decode": {"imagenet_c_hours": round(IMAGENET_C_IMAGES / ips / 3600, 3),
                                             "val_50000_seconds": round(50_000 / ips, 1)}
                        for decode, ips in (("gpu", gpu_ips), ("cpu", cpu_ips))}
    log(f"  {n} JPEGs at {s}², batch {b}, {precision} + channels_last: forward only {forward:.0f} img/s; clean "
        f"evaluator with CPU decoding ({workers} workers) {cpu_ips:.0f} img/s ({cpu_ips / forward:.2f}x), with "
        f"device decoding {gpu_ips:.0f} img/s ({gpu_ips / forward:.2f}x)")
    log(f"  P7: {gpu_ips / forward:.2f} >= {P7_FACTOR} -> {'MET' if out['p7']['met'] else 'NOT MET'}; top-1 "
        f"agreement CPU vs device decoding {100 * out['top1_agreement']:.2f} %; pixels: max "
        f"{out['pixels']['max_abs_diff_levels']} grey levels, {100 * out['pixels']['share_differing']:.3f} % differ")
    log(f"  ImageNet-C (75 x 50 000) per model: {out['per_model']['gpu_decode']['imagenet_c_hours']:.2f} h with "
        f"device decoding, {out['per_model']['cpu_decode']['imagenet_c_hours']:.2f} h with CPU decoding")
    return out


def _survivor_model(model, x, y, share: float, margin: float = 10.0):
    """``model`` wrapped so that the first ``share`` of the points of ``x`` (labels ``y``) survive every attack:
    an input within the L-inf ball (checked on 8x8 average-pooled images, which move by at most eps) of one of
    those clean points gets a fixed margin for its label plus ``0 * model(x)``: the network still runs (each query
    costs what it costs on the real model) and its graph reaches the input, but the gradient is zero, so APGD-CE,
    APGD-T and FAB-T find nothing and Square spends all its queries, as on the robust points of a robust model.
    The other points get the network's own logits."""
    import torch
    from torch import nn

    held = max(1, int(round(share * len(x)))) if share > 0 else 0

    class Survivor(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.register_buffer("keys", nn.functional.adaptive_avg_pool2d(x[:held], 8).flatten(1))
            self.register_buffer("labels", y[:held].clone())

        def forward(self, inp: torch.Tensor) -> torch.Tensor:
            logits = self.model(inp)
            if held == 0:
                return logits
            keys = nn.functional.adaptive_avg_pool2d(inp.detach().float(), 8).flatten(1)
            dist = torch.cdist(keys, self.keys.to(keys.dtype), p=float("inf"))
            near, which = dist.min(dim=1)
            hit = near <= 0.0315  # eps 0.03 plus rounding
            fixed = nn.functional.one_hot(self.labels[which], logits.shape[1]).to(logits.dtype) * margin
            return torch.where(hit[:, None], fixed + 0 * logits, logits)

    return Survivor().to(x.device).eval(), held


SMALL_AA_BUDGETS = {"apgd": {"n_iter": 5}, "apgd_targeted": {"n_iter": 5, "n_target_classes": 2},
                    "fab": {"n_iter": 5, "n_target_classes": 2}, "square": {"n_queries": 40}}


@contextlib.contextmanager
def _aa_budgets(small: bool):
    """--small only: pyautoattack's attacks with tiny budgets (Square's 5000 queries take minutes on a CPU even
    for a tiny net); the GPU run keeps the standard version's budgets."""
    import pyautoattack

    if not small:
        yield
        return
    original = pyautoattack.AutoAttack.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        for attack, values in SMALL_AA_BUDGETS.items():
            for key, value in values.items():
                setattr(getattr(self, attack), key, value)

    pyautoattack.AutoAttack.__init__ = init
    try:
        yield
    finally:
        pyautoattack.AutoAttack.__init__ = original


def section_autoattack(cfg: dict, work: Path) -> dict:
    with _aa_budgets(cfg["small"]):
        return _section_autoattack(cfg, work)


def _section_autoattack(cfg: dict, work: Path) -> dict:
    """The autoattack evaluator's images/s against pyautoattack called directly; time per 1 000 images on points
    that survive every attack."""
    import pyautoattack
    import torch
    from torch.utils.data import TensorDataset

    from robustbench_labelaug import k_way
    from robustbench_labelaug.evaluation import EvalContext, create_evaluator

    k, s, b, eps = 1000, cfg["input_size"], cfg["aa_batch"], 0.03
    dev, model = _eval_model({**cfg, "model": cfg["aa_model"]}, k)  # --small: a tiny net (Square: 5000 queries)
    kway = k_way(model, k).eval()
    n = max(cfg["aa_n"], cfg["aa_survive_n"])
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, s, s, generator=gen)
    with torch.no_grad():  # label every point with the model's prediction: every point is attacked
        y = torch.cat([kway(x[i:i + b].to(dev)).argmax(1).cpu() for i in range(0, n, b)])
    out: dict = {"model": cfg["aa_model"], "input_size": s, "batch_size": b, "eps": eps, "version": "standard",
                 "budgets": SMALL_AA_BUDGETS if cfg["small"] else "standard"}

    def evaluator_run(net, count: int):
        ctx = EvalContext(num_classes=k, device=dev, batch_size=b, progress=False)
        ev = create_evaluator("autoattack", eps=eps, version="standard", seed=0)
        return ev.run(net, TensorDataset(x[:count], y[:count]), ctx)

    def direct_run(net, count: int):
        adversary = pyautoattack.AutoAttack(net, norm="Linf", eps=eps, version="standard", device=dev, seed=0)
        x_adv, y_adv = adversary.run_standard_evaluation(x[:count].to(dev), y[:count].to(dev), batch_size=b)
        return float((y_adv.cpu() != y[:count]).float().mean())

    na = cfg["aa_n"]
    evaluator_run(kway, min(na, b))  # warm-up (cuDNN autotuning)
    t_direct, direct_err = _timed(dev, lambda: direct_run(kway, na))
    t_eval, result = _timed(dev, lambda: evaluator_run(kway, na))
    out["wrapper"] = {"n": na, "evaluator_images_per_s": na / t_eval, "direct_images_per_s": na / t_direct,
                      "evaluator_s": round(t_eval, 4), "direct_s": round(t_direct, 4),
                      "time_ratio": round(t_eval / t_direct, 3), "target": AA_RATIO_MAX,
                      "met": t_eval / t_direct <= AA_RATIO_MAX,
                      "evaluator_robust_error": result.metrics.get("robust_error"),
                      "direct_robust_error": round(100 * direct_err, 2)}
    log(f"  autoattack evaluator {na / t_eval:.1f} img/s vs pyautoattack directly {na / t_direct:.1f} img/s on "
        f"{na} images: time ratio {t_eval / t_direct:.3f} (target <= {AA_RATIO_MAX}) -> "
        f"{'MET' if out['wrapper']['met'] else 'NOT MET'}; robust error {result.metrics.get('robust_error')} vs "
        f"{100 * direct_err:.2f} %")
    ns = cfg["aa_survive_n"]
    survivor, held = _survivor_model(kway, x[:ns].to(dev), y[:ns].to(dev), cfg["aa_survive"])
    t_surv, result = _timed(dev, lambda: evaluator_run(survivor, ns))
    broken_by = result.details.get("broken_by_attack")
    out["survivors"] = {"n": ns, "held_points": held, "share": cfg["aa_survive"], "seconds": round(t_surv, 1),
                        "images_per_s": ns / t_surv, "seconds_per_1000_images": round(1000 * t_surv / ns, 1),
                        "robust_error": result.metrics.get("robust_error"), "broken_by": broken_by,
                        "hours_for_5000": round(5000 * t_surv / ns / 3600, 2)}
    log(f"  survivor model ({held} of {ns} points survive by construction): {t_surv:.1f} s, "
        f"{1000 * t_surv / ns:.0f} s per 1 000 images (RobustBench's 5 000: {out['survivors']['hours_for_5000']:.2f}"
        f" h), robust error {result.metrics.get('robust_error')} %")
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _env(**values: str):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def section_ddp(cfg: dict, work: Path) -> dict:
    import torch
    import torch.distributed as dist
    from timm.loss import SoftTargetCrossEntropy
    from torch.nn.parallel import DistributedDataParallel

    from robustbench_labelaug import AdvLabelAug, create_classifier
    from robustbench_labelaug.train.engine import train_one_epoch

    dev = torch.device(cfg["device"])
    backend = "nccl" if dev.type == "cuda" else "gloo"
    with _env(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port())):
        dist.init_process_group(backend=backend, init_method="env://", rank=0, world_size=1)
        try:
            k = 1000
            torch.manual_seed(0)
            model = create_classifier(cfg["model"], k, 1).to(dev).to(memory_format=torch.channels_last)
            ddp = DistributedDataParallel(model, device_ids=[dev.index or 0] if dev.type == "cuda" else None)
            dtype = getattr(torch, amp_dtype_for(dev))
            hook = AdvLabelAug(ddp, k, mode="adv_plus", eps=0.03, steps=10, num_ops=1, autocast_dtype=dtype,
                               protocol="adversarial")
            b, s = min(cfg["batch_size"], 32), cfg["input_size"]
            x, y = torch.rand(b, 3, s, s, device=dev), torch.randint(0, k, (b,), device=dev)
            before = [p.detach().clone() for p in model.parameters()][-2]
            optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
            sync(dev)
            start = time.perf_counter()
            metrics = train_one_epoch(0, ddp, [(x, y)] * 2, optimizer, SoftTargetCrossEntropy(), hook, dev,
                                      autocast_dtype=dtype, channels_last=True, progress=False)
            sync(dev)
            elapsed = time.perf_counter() - start
            flag = torch.ones(1, device=dev)
            dist.all_reduce(flag)
            moved = not torch.equal(before, list(model.parameters())[-2].detach())
            if not moved:
                raise RuntimeError("the DDP step did not change the head's weights")
            out = {"backend": backend, "world_size": dist.get_world_size(), "loss": metrics["loss"],
                   "two_steps_s": elapsed, "all_reduce": float(flag), "weights_updated": moved}
        finally:
            dist.destroy_process_group()
    log(f"  {backend} world 1: 2 Adv+ steps through DDP in {out['two_steps_s']:.2f} s, loss {out['loss']:.4f}")
    return out


def _run(cmd: list[str], cwd: Path, timeout: float) -> float:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    log("  $ " + " ".join(cmd))
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - start
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-12:]
    for line in tail:
        log(f"    | {line}")
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode} after {elapsed:.1f} s: {' '.join(cmd[3:5])}")
    log(f"    ({elapsed:.1f} s)")
    return elapsed


def section_e2e(cfg: dict, work: Path) -> dict:
    import yaml

    from tests.fixtures_imagenet import make_imagenet_folder

    root = work / "e2e"
    data, models, out = root / "imagenet", root / "models", root / "eval"
    size = cfg["e2e_size"]
    make_imagenet_folder(data, wnids=E2E_WNIDS, per_class=2, size=size + 8, train_per_class=4)
    py = [sys.executable, "-m", "robustbench_labelaug"]
    cuda = cfg["device"].startswith("cuda")
    train = py + ["train", "--dataset", "imagenet", "--data-dir", str(data), "--model", cfg["e2e_model"],
                  "--input-size", str(size), "--epochs", "1", "-b", "8", "--adv-mode", "adv_plus",
                  "--adv-steps", str(cfg["e2e_adv_steps"]), "--output", str(root / "train"), "--experiment", "run",
                  "--device", cfg["device"], "--workers", str(cfg["e2e_workers"]), "--no-progress", "--seed", "0"]
    if cuda:
        train += ["--amp", "--amp-dtype", amp_dtype_for(cfg["device"]), "--channels-last"]
    times = {"train_s": _run(train, root, 600)}
    ckpt = root / "train" / "run" / "last.pth.tar"
    times["export_s"] = _run(py + ["zoo", "export", "--checkpoint", str(ckpt), "--name", "gpu_check_e2e",
                                   "--model-dir", str(models), "--dataset", "imagenet"], root, 300)
    exported = models / "imagenet" / "Linf" / "gpu_check_e2e.pt"
    config = {
        "title": "gpu_check e2e",
        "runtime": {"batch_size": 8, "device": cfg["device"], "num_workers": cfg["e2e_workers"],
                    "model_dir": str(models), "output": str(out), "seed": 0, "progress": False, "plots": True},
        "datasets": {"in": {"name": "imagenet", "data_dir": str(data), "split": "val", "input_size": size}},
        "models": [{"name": "e2e", "checkpoint": str(exported)}],
        "evaluators": [
            {"name": "clean"},
            {"id": "clean_amp", "name": "clean", "settings": {"precision": "bf16" if amp_dtype_for(cfg["device"])
                                                               == "bfloat16" else "fp16"}},
            {"id": "pgd_sound", "name": "pgd", "settings": {"eps": 0.03, "steps": 5, "protocol": "sound"}},
            {"id": "pgd_paper", "name": "pgd", "settings": {"eps": 0.03, "steps": 5, "protocol": "paper"}},
            {"name": "autoattack", "settings": {"eps": 0.03, "version": "standard", "n_examples": 4}},
            {"name": "corruptions", "settings": {"corruptions": ["gaussian_noise", "fog"], "severities": [1, 3],
                                                 "cache_dir": str(root / "corruption_cache")}},
            {"name": "real"},
            {"name": "imagenet_x"},
            {"name": "masking", "settings": {"eps": 0.03, "steps": 5, "n_examples": 8, "autoattack_n": 4}},
        ],
    }
    config_path = root / "eval.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    times["evaluate_s"] = _run(py + ["evaluate", "-c", str(config_path), "--no-progress"], root, 900)
    info_path = out / "model_info" / "e2e.json"
    info = json.loads(info_path.read_text())
    results = sorted((info.get("labelaug") or {}).get("results", {}))
    wanted = [e.get("id", e["name"]) for e in config["evaluators"]]
    missing = sorted(set(wanted) - set(results))
    if missing:
        raise RuntimeError(f"model_info lacks results for {missing} (has {results})")
    measured = (info.get("labelaug") or {}).get("measured", {})
    log(f"  every evaluator ran: {results}")
    return {**times, "evaluators": results, "measured": {k: v for k, v in measured.items() if k != "classwise"}}


RUNNERS = {"env": section_env, "throughput": section_throughput, "pgd_eval": section_pgd_eval,
           "eval_amp": section_eval_amp, "decode": section_decode, "autoattack": section_autoattack,
           "ddp": section_ddp, "e2e": section_e2e}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="CPU dry-run sizes (also RBLA_GPU_CHECK_SMALL=1)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--model", default=None, help="timm model for throughput/pgd_eval/ddp (default resnet50)")
    parser.add_argument("--input-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="timed training steps per measurement")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps before each measurement")
    parser.add_argument("--no-fp32", action="store_true", help="skip the fp32 throughput rows")
    parser.add_argument("--decode-n", type=int, default=None, help="decode: JPEGs generated (default 4096)")
    parser.add_argument("--decode-workers", type=int, default=None,
                        help="decode: loader workers of both paths (default min(16, CPU count))")
    parser.add_argument("--aa-n", type=int, default=None, help="autoattack: images of the wrapper ratio (256)")
    parser.add_argument("--aa-survive-n", type=int, default=None,
                        help="autoattack: images on the survivor model (128)")
    parser.add_argument("--aa-survive", type=float, default=None,
                        help="autoattack: share of points the survivor model holds (0.9)")
    parser.add_argument("--workdir", default=None, help="where e2e writes (default: a temporary folder)")
    parser.add_argument("--out", default=None, help="also write the JSON summary to this file")
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}: choose from {', '.join(SECTIONS)}")

    cfg = settings(args)
    summary: dict = {"script": "bench/gpu_check.py", "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                     "settings": cfg, "sections": {}}
    start_all = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.workdir:
            work = Path(args.workdir)
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rbla_gpu_check_")))
        for name in wanted:
            log(f"== {name} ==")
            start = time.perf_counter()
            try:
                result = RUNNERS[name](cfg, work)
                entry = {"status": "ok", "result": result}
            except BaseException as exc:  # noqa: BLE001 - one section's failure must not stop the others
                if isinstance(exc, KeyboardInterrupt):
                    raise
                traceback.print_exc()
                entry = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:2000]}
                log(f"  FAILED: {entry['error']}")
            entry["seconds"] = round(time.perf_counter() - start, 1)
            summary["sections"][name] = entry
            log(f"  [{name}: {entry['status']}, {entry['seconds']} s]")
    summary["total_s"] = round(time.perf_counter() - start_all, 1)
    summary["failed"] = [n for n, e in summary["sections"].items() if e["status"] != "ok"]
    p4 = summary["sections"].get("throughput", {}).get("result", {}).get("p4")
    summary["p4_met"] = None if p4 is None else p4["met"]
    p7 = summary["sections"].get("decode", {}).get("result", {}).get("p7")
    summary["p7_met"] = None if p7 is None else p7["met"]
    text = json.dumps(summary, indent=2, default=str)
    log("== summary ==")
    log(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    log(f"sections failed: {summary['failed'] or 'none'}; total {summary['total_s']} s")
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
