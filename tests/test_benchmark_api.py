"""benchmark(model, dataset=...): one call, per-class DataFrame; equal to the low-level evaluators and to
RobustBench's clean_accuracy on the same model and images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robustbench_labelaug import UserError

from .robust_fixtures import UsersOwnModel

N = 40


@pytest.fixture(scope="module")
def report(trained_digits_model):
    from robustbench_labelaug import benchmark

    torch.set_num_threads(1)
    return benchmark(UsersOwnModel(trained_digits_model), dataset="digits", n_examples=N, device="cpu",
                     num_classes=10, evaluators=("clean", ("pgd", {"steps": 5}), ("autoattack", {"n_examples": 20})),
                     model_name="mine")


def test_report_frame_has_class_names_n_errors_and_cis(report):
    frame = report.to_frame()
    assert list(frame["name"]) == [str(d) for d in range(10)]
    assert frame["n"].sum() == N and frame["autoattack_n"].sum() == 20
    for rid in ("clean", "pgd", "autoattack"):
        assert ((frame[f"{rid}_ci_low"] <= frame[f"{rid}_error"]) & (frame[f"{rid}_error"] <= frame[f"{rid}_ci_high"])
                ).all()
    assert report.headline["pgd_steps"] == 5 and report.headline["autoattack_n"] == 20
    per = report.per_example
    assert len(per) == N and {"clean_pred", "pgd_broken", "autoattack_broken"} <= set(per.columns)
    assert per["autoattack_pred"].notna().sum() == 20


def test_benchmark_equals_low_level_evaluators_and_robustbench(report, trained_digits_model, digits_test):
    from robustbench.utils import clean_accuracy

    from robustbench_labelaug import k_way
    from robustbench_labelaug.evaluation import EvalContext, create_evaluator
    from robustbench_labelaug.evaluation.base import select_examples

    model = k_way(trained_digits_model, 10)
    ctx = EvalContext(dataset="digits", batch_size=64, progress=False)   # K from the dataset registry
    clean = create_evaluator("clean", n_examples=N).run(model, digits_test, ctx)
    pgd = create_evaluator("pgd", eps=0.2, steps=5, n_examples=N).run(model, digits_test, ctx)
    assert ctx.num_classes == 10
    frame = report.to_frame()
    np.testing.assert_allclose(frame["clean_error"], clean.classwise["clean"]["error"])
    np.testing.assert_allclose(frame["pgd_error"], pgd.classwise["pgd"]["error"])
    assert report.headline["clean_error"] == pytest.approx(clean.metrics["error"])
    assert report.headline["pgd_error"] == pytest.approx(pgd.metrics["robust_error"])
    # RobustBench's clean_accuracy on the same images (the K-way view of the same weights)
    idx = select_examples(digits_test, N)
    x = torch.stack([digits_test[i][0] for i in idx])
    y = torch.tensor([int(digits_test[i][1]) for i in idx])
    acc = clean_accuracy(model.eval(), x, y, batch_size=16, device=torch.device("cpu"))
    assert report.headline["clean_error"] == pytest.approx(100 * (1 - acc))


def test_benchmark_to_disk_and_model_info(tmp_path, trained_digits_model):
    from robustbench_labelaug import benchmark
    from robustbench_labelaug.results.model_info import load_model_info

    r = benchmark(trained_digits_model, dataset="digits", n_examples=20, evaluators=("clean",), to_disk=True,
                  output=tmp_path, model_name="mine", device=torch.device("cpu"))
    assert (tmp_path / "mine" / "cache" / "clean" / "clean" / "all.npz").is_file()
    info = load_model_info(tmp_path / "model_info" / "mine.json")
    assert info["labelaug"]["class_names"] == [str(d) for d in range(10)]
    assert float(info["clean_acc"]) == pytest.approx(100 - r.headline["clean_error"], abs=0.01)
    other = UsersOwnModel(torch.nn.Linear(2, 2))   # other weights under the same name: refused
    with pytest.raises(UserError, match="as it was before its weights changed"):
        benchmark(other, dataset="digits", n_examples=20, evaluators=("clean",), to_disk=True, output=tmp_path,
                  model_name="mine")


def test_benchmark_bad_arguments(trained_digits_model):
    from robustbench_labelaug import benchmark
    from robustbench_labelaug.evaluation import EvalContext, create_evaluator

    with pytest.raises(UserError, match="device 'cuda:3'|not a device"):
        benchmark(trained_digits_model, dataset="digits", device="cuda:3" if not torch.cuda.is_available()
                  else "nodevice", evaluators=("clean",))
    with pytest.raises(UserError, match="num_classes=7"):
        benchmark(trained_digits_model, dataset="digits", num_classes=7, evaluators=("clean",))
    with pytest.raises(UserError, match="L-inf only"):
        benchmark(trained_digits_model, dataset="digits", threat_model="L2", evaluators=("clean",))
    data = torch.utils.data.TensorDataset(torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(UserError, match="EvalContext\\(num_classes=K\\)"):
        create_evaluator("clean").run(torch.nn.Flatten(), data, EvalContext(progress=False))
