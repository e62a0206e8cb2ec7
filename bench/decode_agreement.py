"""How close ``runtime.decode: gpu`` comes to the PIL path (issue 21): the same generated JPEG folder through the
``clean`` evaluator with ``decode: cpu`` and ``decode: gpu`` (on ``--device``; on a machine without a GPU the
device path runs torchvision's decoder on the CPU), top-1 agreement of the two, pixel differences, and how many
distinct classes the model predicts (an agreement over near-constant predictions would mean little).

    python bench/decode_agreement.py --n 512 --model resnet18              # CPU, ~3 min on 2 cores
    python bench/decode_agreement.py --n 4096 --model resnet50 --device cuda

Target (docs/gpu-decode.md): >= 99.5 % of top-1 predictions agree.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if sys.path[:1] != [str(REPO)]:
    sys.path.insert(0, str(REPO))

TARGET = 0.995


def calibrate_bn(model, dataset, device, batch_size: int, n: int = 128) -> None:
    """BatchNorm running statistics of the randomly initialised network set from ``n`` images (PIL path): its
    features then spread over many classes, as a trained network's do, instead of one or two."""
    import torch

    modules = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in modules:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for start in range(0, min(n, len(dataset)), batch_size):
            idx = range(start, min(start + batch_size, n, len(dataset)))
            model(torch.stack([dataset[i][0] for i in idx]).to(device))
    model.eval()


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import torch

    from robustbench_labelaug import create_classifier
    from robustbench_labelaug.data import create_dataset, imagenet_wnids
    from robustbench_labelaug.data.device_decode import device_batches
    from robustbench_labelaug.evaluation import EvalContext, create_evaluator
    from tests.fixtures_jpeg import make_jpeg_folder

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--model", default="resnet18", help="timm architecture, random init (seed 0)")
    parser.add_argument("--input-size", type=int, default=224)
    parser.add_argument("--crop-pct", type=float, default=0.875)
    parser.add_argument("--interpolation", default="bilinear")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-bn-calibration", action="store_true",
                        help="keep the random init's BatchNorm statistics (near-constant predictions)")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="rbla_decode_agreement_"))
    root = work / f"jpegs_{args.n}_{args.seed}"
    if not (root / "val").is_dir():
        make_jpeg_folder(root, imagenet_wnids()[:10], args.n, seed=args.seed)
    dataset = create_dataset("imagenet", root, "val", input_size=args.input_size, crop_pct=args.crop_pct,
                             interpolation=args.interpolation)
    dev = torch.device(args.device)
    torch.manual_seed(0)
    model = create_classifier(args.model, 1000, 0).to(dev).eval()
    if not args.no_bn_calibration:
        calibrate_bn(model, dataset, dev, args.batch_size)
    preds, seconds = {}, {}
    for decode in ("cpu", "gpu"):
        shared: dict = {}
        ctx = EvalContext(num_classes=1000, device=dev, batch_size=args.batch_size, progress=False, decode=decode,
                          predictions=shared)
        start = time.perf_counter()
        create_evaluator("clean").run(model, dataset, ctx)
        seconds[decode] = time.perf_counter() - start
        (held,) = shared.values()
        preds[decode] = held[1]["y_pred"]
    # pixels and logit margins over every image
    loader, decoder = device_batches(dataset, list(range(len(dataset))), batch_size=args.batch_size, num_workers=0,
                                     device=dev)
    max_diff, differing, total, margins, deltas = 0.0, 0, 0, [], []
    with torch.no_grad():
        for batch in loader:
            x, _, idx = decoder(batch)
            ref = torch.stack([dataset[int(i)][0] for i in idx.cpu()]).to(dev)
            diff = (x - ref).abs() * 255
            max_diff = max(max_diff, float(diff.max()))
            differing += int((diff > 0.5).sum())
            total += diff.numel()
            a, b = model(ref), model(x)
            top2 = a.topk(2, dim=1).values
            margins.append((top2[:, 0] - top2[:, 1]).cpu())
            deltas.append((a - b).abs().amax(1).cpu())
    margins, deltas = torch.cat(margins), torch.cat(deltas)
    agreement = float((preds["cpu"] == preds["gpu"]).mean())
    init = "random init, seed 0" + ("" if args.no_bn_calibration else ", BatchNorm statistics from 128 images")
    out = {"n": args.n, "model": f"{args.model} ({init})", "device": str(dev),
           "input_size": args.input_size, "crop_pct": args.crop_pct, "interpolation": args.interpolation,
           "top1_agreement": agreement, "disagreements": int((preds["cpu"] != preds["gpu"]).sum()),
           "target": TARGET, "met": agreement >= TARGET,
           "distinct_predicted_classes": int(len(np.unique(preds["cpu"]))),
           "pixels": {"max_abs_diff_levels": round(max_diff, 3), "share_differing": round(differing / total, 6)},
           "logits": {"median_top1_margin": float(margins.median()), "median_max_abs_logit_change":
                      float(deltas.median()), "max_abs_logit_change": float(deltas.max())},
           "seconds": {k: round(v, 1) for k, v in seconds.items()}, "decoder_stats": decoder.stats}
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
