"""One rank of the multi-process test in tests/test_gpu_recipe.py, launched as a plain process with srun's (or
torchrun's) environment variables; gloo on CPU. Prints one JSON line with what the rank saw:

    python tests/_gpu_recipe_worker.py DIR      # DIR: this rank's evaluation cache folder

``world``/``sum``: the process group it joined and the all-reduce of rank + 1; ``stopped``: where training stopped
when rank 1's loss is NaN at step 1; ``predicted``/``error``: how many splits the clean evaluator computed here
and its error, with a split cache that only rank 0's DIR holds.
"""

from __future__ import annotations

import json
import sys

import torch


def create_classifier_tiny():
    from robustbench_labelaug import create_classifier

    torch.manual_seed(0)
    return create_classifier("resnet8_tiny", 10, 0).eval()


def nan_on_rank_1(info, device) -> str | None:
    from robustbench_labelaug import create_classifier
    from robustbench_labelaug.train.engine import NonFiniteLoss, train_one_epoch

    torch.manual_seed(0)
    model = create_classifier("resnet8_tiny", 10, 0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.rand(4, 3, 32, 32)
    batches = [(x, torch.arange(4))] * 4
    if info.rank == 1:
        batches[1] = (torch.full_like(x, float("nan")), torch.arange(4))
    try:
        train_one_epoch(0, model, batches, opt, torch.nn.CrossEntropyLoss(), None, device, progress=False)
    except NonFiniteLoss as exc:
        return str(exc)
    return None


def cached_on_rank_0(out_dir: str) -> dict:
    from robustbench_labelaug.data import create_dataset
    from robustbench_labelaug.evaluation import EvalContext, create_evaluator

    ctx = EvalContext(num_classes=10, out_dir=out_dir, batch_size=8, progress=False)
    evaluator = create_evaluator("clean", n_examples=16)
    calls = []
    real = evaluator.predict

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    evaluator.predict = spy
    result = evaluator.run(create_classifier_tiny(), create_dataset("digits", split="test"), ctx)
    return {"error": result.metrics["error"], "predicted": len(calls)}


def main() -> None:
    torch.set_num_threads(1)
    from robustbench_labelaug import distributed

    info, device = distributed.init_distributed("cpu")
    out = {"rank": info.rank, "world": info.world_size, "local_rank": info.local_rank,
           "sum": float(distributed.all_reduce_sum(torch.tensor([float(info.rank + 1)])))}
    out["stopped"] = nan_on_rank_1(info, device)
    out.update(cached_on_rank_0(sys.argv[1]))
    distributed.barrier()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
