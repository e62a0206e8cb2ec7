"""Evaluation worker launched by tests/test_eval_framework.py (directly, or under torchrun): runs evaluators on
the digits test set with a saved resnet8_tiny state dict and writes rank 0's results as JSON.

Every part a rank computes is appended to ``--part-log`` as ``<evaluator> <part> <rank>`` (so a test can tell
which parts were recomputed); ``--delay`` sleeps after each part so a test can kill the run mid-way."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--state-dict", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--cache", required=True)
    p.add_argument("--result", required=True)
    p.add_argument("--part-log", required=True)
    p.add_argument("--evaluators", default="clean,corruptions")
    p.add_argument("--n-examples", type=int, default=48)
    p.add_argument("--corruptions", default="gaussian_noise,pixelate")
    p.add_argument("--severities", default="1,2")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--delay", type=float, default=0.0)
    args = p.parse_args()

    torch.set_num_threads(1)
    from robustbench_labelaug import create_classifier, distributed
    from robustbench_labelaug.data import create_dataset
    from robustbench_labelaug.evaluation import EvalContext, create_evaluator

    info, device = distributed.init_distributed("cpu")
    Path(args.part_log).parent.mkdir(parents=True, exist_ok=True)
    model = create_classifier("resnet8_tiny", 10, 1)
    model.load_state_dict(torch.load(args.state_dict, weights_only=True))
    dataset = create_dataset("digits", split="test")
    results = {}
    for name in args.evaluators.split(","):
        settings = {"n_examples": args.n_examples}
        if name == "corruptions":
            settings.update(corruptions=args.corruptions, severities=args.severities, cache_dir=args.cache)
        evaluator = create_evaluator(name, **settings)
        predict = evaluator.predict

        def logged(model_k, batches, part, ctx, _predict=predict, _name=name):
            arrays = _predict(model_k, batches, part, ctx)
            with open(args.part_log, "a") as f:
                f.write(f"{_name} {part} {info.rank}\n")
            time.sleep(args.delay)
            return arrays

        evaluator.predict = logged
        ctx = EvalContext(num_classes=10, out_dir=Path(args.out), device=device, batch_size=args.batch_size,
                          progress=False)
        results[name] = evaluator.run(model, dataset, ctx).to_dict()
    if info.is_main:
        Path(args.result).write_text(json.dumps(results, sort_keys=True))
    if info.distributed:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
