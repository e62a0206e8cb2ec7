"""A new user's first hour as one script (issue 27): their own model -> the data as ``(x, y)`` tensors -> a plain
PyTorch training loop -> ``benchmark(..., training=...)`` with the packaged digits config's evaluators ->
``to_model_info`` -> ``rbla compare`` (a subprocess) against a packaged evaluation (``rbla evaluate`` of the zoo
model digits_adv_plus), every evaluator matched -> ``rbla leaderboard --html`` -> the page shows the model with
its training and M (parsed; and in Chromium where it is installed, as tests/test_browser.py drives it).

Kept small: 512 training images, two epochs of a two-layer CNN, the config's ``--fast`` sizes; the corruption
and masking evaluators are left out of both sides (minutes on 2 cores, and rbla compare pairs per-example
predictions of the test images, which they do not store as one part)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
import yaml

from .test_browser import browser  # noqa: F401  (fixture: Chromium through Selenium, skipped where absent)
from .test_provenance import export_as_zoo_entry

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
NOT_PAIRED = ("corruptions", "masking")  # evaluators left out (see the module docstring)


def rbla(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}  # AutoAttack's tiny ops: one thread
    return subprocess.run([sys.executable, "-m", "robustbench_labelaug", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600, env=env)


class Page(HTMLParser):
    """The leaderboard page's rows (``tr`` with ``data-key``) and each model's detail facts (``dt``/``dd``)."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())


@pytest.fixture(scope="module")
def first_hour(tmp_path_factory, trained_digits_model):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # AutoAttack runs thousands of tiny ops: a second thread only spins on 2 cores
    try:
        yield walk(tmp_path_factory.mktemp("first_hour"), trained_digits_model)
    finally:
        torch.set_num_threads(threads)


def walk(tmp: Path, trained_digits_model) -> dict:
    import torch.nn.functional as F
    from torch import nn

    from robustbench_labelaug import benchmark
    from robustbench_labelaug.data import create_dataset
    from robustbench_labelaug.models import ImageClassifier
    from robustbench_labelaug.runner import load_config
    from robustbench_labelaug.runner.config import resolve_config_path

    out = tmp / "eval"

    # -- a packaged evaluation: the zoo's digits_adv_plus (a quickly trained stand-in) under the digits config --
    export_as_zoo_entry(trained_digits_model, "digits_adv_plus", tmp)
    packaged = yaml.safe_load(resolve_config_path("digits").read_text())
    packaged["evaluators"] = [e for e in packaged["evaluators"] if e["name"] not in NOT_PAIRED]
    packaged["models"] = [{"zoo": "digits_adv_plus"}]
    packaged["runtime"].update(output=str(out), model_dir=str(tmp / "models"), progress=False, plots=False)
    (tmp / "digits_small.yaml").write_text(yaml.safe_dump(packaged))
    evaluated = rbla("evaluate", "-c", "digits_small.yaml", "--fast", "--output", str(out), cwd=tmp)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]

    # -- the user's hour --------------------------------------------------------------------------------------
    class SmallCNN(nn.Module):  # their own network: 10 logits out
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 16, 3, stride=2, padding=1)
            self.fc = nn.Linear(16 * 16 * 16, 10)

        def forward(self, x):
            return self.fc(F.relu(self.conv(x)).flatten(1))

    x, y = create_dataset("digits", split="train").tensors  # the data as (x, y) tensors
    x, y = x[:512], y[:512]
    torch.manual_seed(0)
    # [0,1] images in, normalisation inside (as RobustBench's models): the paper protocol's eps is in normalised
    # units, so its runs compare only between models of the same normalisation (the digits models': 0.5 / 0.5)
    model = ImageClassifier(SmallCNN(), num_classes=10, mean=(0.5,) * 3, std=(0.5,) * 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(2):  # a plain training loop
        for i in range(0, len(y), 64):
            loss = F.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()

    evaluators = [(name, s) for name, s in load_config("digits").evaluator_pairs(fast=True) if name not in NOT_PAIRED]
    report = benchmark(model, evaluators=evaluators, training="std", description="SmallCNN, two plain epochs",
                       model_name="small_cnn", device="cpu")
    info = report.to_model_info(out / "model_info" / "small_cnn.json")
    compared = rbla("compare", str(info), str(out / "model_info" / "digits_adv_plus.json"), cwd=tmp)
    page = rbla("leaderboard", str(out), "--html", str(tmp / "page.html"), cwd=tmp)
    return {"tmp": tmp, "out": out, "report": report, "evaluators": evaluators, "compared": compared, "page": page,
            "info": info}


def test_first_hour_from_own_model_to_the_page(first_hour):
    from robustbench_labelaug.compare import compare

    report, compared = first_hour["report"], first_hour["compared"]
    assert report.meta["training"] == "std" and report.meta["architecture"] == "SmallCNN"
    # rbla compare: every evaluator of both sides matched, none dropped
    assert compared.returncode == 0, compared.stderr[-3000:]
    ids = [e[1]["id"] for e in first_hour["evaluators"]]
    assert ids == ["clean", "pgd10_sound", "pgd10_paper", "autoattack"]
    shown = re.findall(r"^## (\S+):", compared.stdout, flags=re.M)
    assert sorted(shown) == sorted(ids), compared.stdout[:2000]
    assert "not compared" not in compared.stdout
    # the Python door gives the same tables
    in_python = compare(first_hour["info"], first_hour["out"] / "model_info" / "digits_adv_plus.json")
    assert in_python.markdown().strip() == compared.stdout.strip()
    assert compare(report, first_hour["out"] / "digits_adv_plus").markdown().strip() == compared.stdout.strip()
    # rbla leaderboard --html: both models, each with its training and M
    assert first_hour["page"].returncode == 0, first_hour["page"].stderr[-3000:]
    html = (first_hour["tmp"] / "page.html").read_text()
    page = Page()
    page.feed(html)
    text = " | ".join(page.text)
    for name, arch, training, m in (("small_cnn", "SmallCNN", "std", 0),
                                    ("digits_adv_plus", "resnet8_tiny", "adv_plus", 1)):
        assert name in text
        facts = text[text.index(f"training | {training} | architecture | {arch} |"):][:300]  # the model's details
        assert "| K | 10 | M | " + str(m) + " |" in facts, facts
        assert f"{training} training, K=10, M={m};" in text  # its footnote
    assert "None training" not in text


def test_first_hour_page_in_a_browser(first_hour, browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    browser.get((first_hour["tmp"] / "page.html").as_uri())
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "tbody tr") if r.text.strip()]
    for name, training in (("small_cnn", "std"), ("digits_adv_plus", "adv_plus")):
        # rank with its interval ("1 (1–2)"), model (its name, then the details toggle), ...
        shown = [r for r in rows if re.sub(r"^\d+ \(\d+–\d+\) ", "", r).split()[0] in (name, name + "details")]
        assert len(shown) == 1 and training in shown[0].split(), rows
