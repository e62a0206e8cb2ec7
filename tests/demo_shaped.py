"""Small, generated model_info files shaped like ``rbla demo``'s (three digits models: std / adv / adv_plus, the
demo config's evaluators: clean, PGD-40 sound and paper protocol, AutoAttack on a 12-per-class subset with the
masking checks, corruptions), for the leaderboard page's tests. No training, no torch: numbers are drawn with a
seeded generator, per-class errors are whole mistakes out of the class's n."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from robustbench_labelaug.evaluation.declare import model_info_from_results

DIGITS_N = [36, 37, 35, 37, 36, 37, 37, 36, 35, 34]  # 360 test images, as in the demo's split
TITLE = "digits: Std / Adv / Adv+"
# model -> (training, clean, PGD sound, PGD paper, AutoAttack union, mCE): the demo's seed-0 ballpark
MODELS = {
    "digits_std": ("std", 1.0, 100.0, 99.0, 100.0, 35.0),
    "digits_adv": ("adv", 4.0, 48.0, 15.0, 61.0, 22.5),
    "digits_adv_plus": ("adv_plus", 4.0, 49.0, 15.0, 59.0, 22.4),
}


def _classwise(rng: np.random.Generator, mean: float, counts: list[int]) -> dict:
    mistakes = [int(np.clip(round(n * np.clip(mean + rng.normal(0, 10), 0, 100) / 100), 0, n)) for n in counts]
    errors = [100.0 * m / n for m, n in zip(mistakes, counts)]
    e = np.asarray(errors)
    worst = int(e.argmax())
    return {"error": errors, "n": list(counts),
            "summary": {"mean": float(e.mean()), "sd": float(e.std()), "worst_class": worst,
                        "worst_error": float(e[worst]), "worst_error_ci": [max(0.0, e[worst] - 12.0),
                                                                           min(100.0, e[worst] + 3.0)],
                        "sd_ci": [max(0.0, e.std() - 3.0), e.std() + 4.0]}}


def results(training: str, clean: float, pgd: float, paper: float, aa: float, mce: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    small = [12] * 10
    cw = {name: _classwise(rng, mean, DIGITS_N) for name, mean in
          (("clean", clean), ("pgd", pgd), ("paper", paper))}
    names = ["gaussian_noise", "fog", "pixelate"]
    table = {n: sorted(float(v) for v in np.clip(clean + rng.uniform(0, 2 * mce, 5), 0, 100)) for n in names}
    mce = float(np.mean([np.mean(v) for v in table.values()]))  # the unnormalised mCE: the mean of the CEs
    checks = [{"name": "no_zero_gradients", "passed": True, "zero_gradient_share": 0.0, "n": 32, "tolerance": 2.0},
              {"name": "pgd_close_to_autoattack", "passed": True, "gap": aa - pgd, "gap_ci": [aa - pgd - 9.0,
               aa - pgd + 11.0], "n": 32, "tolerance": 10.0}]
    if training == "adv_plus":
        checks.append({"name": "k_way_attack_not_weaker_than_full_head", "passed": True, "n": 32, "gap": -1.5})
    sound = {"eps": 0.2, "eps_pixel": 0.2, "steps": 40, "protocol": "sound"}
    return {
        "clean": {"evaluator": "clean", "metrics": {"error": clean}, "settings": {},
                  "classwise": {"clean": cw["clean"]}, "protocol": None, "details": {}, "num_examples": 360},
        "pgd40_sound": {"evaluator": "pgd", "metrics": {"robust_error": pgd, "clean_error": clean},
                        "settings": sound, "classwise": {"pgd40": cw["pgd"]}, "protocol": "sound", "details": {},
                        "num_examples": 360},
        "pgd40_paper": {"evaluator": "pgd", "metrics": {"robust_error": paper},
                        "settings": {**sound, "protocol": "paper"}, "classwise": {"pgd40": cw["paper"]},
                        "protocol": "paper", "details": {}, "num_examples": 360},
        "autoattack": {"evaluator": "autoattack", "metrics": {"robust_error": aa},
                       "settings": {"eps": 0.2, "version": "standard", "n_examples": 120, "pgd_first": True},
                       "classwise": {"autoattack": _classwise(rng, aa, small)}, "protocol": "sound",
                       "details": {}, "num_examples": 120},
        "corruptions": {"evaluator": "corruptions", "metrics": {"mce": mce}, "settings": {}, "classwise": {},
                        "protocol": None, "details": {"E": table, "corruptions": names,
                                                      "severities": [1, 2, 3, 4, 5]}, "num_examples": 360},
        "masking": {"evaluator": "masking", "metrics": {}, "settings": {}, "classwise": {}, "protocol": "sound",
                    "details": {"checks": checks, "skipped": {"autoattack_not_weaker_than_pgd": "AutoAttack ran "
                                "only on what PGD-40 left (pgd_first)"}}, "num_examples": 32},
    }


def write_demo_shaped(folder: Path, fast: bool = False) -> Path:
    """Write the three models' model_info JSONs under ``folder/model_info``; returns ``folder``."""
    for seed, (key, (training, *numbers)) in enumerate(MODELS.items()):
        meta = {"key": key, "dataset": "digits", "architecture": "resnet8_tiny", "training": training,
                "num_classes": 10, "num_ops": 1 if training == "adv_plus" else 0, "delta": 0.03, "eps": 0.2}
        extra = {"title": TITLE, "fast": fast, "class_names": [str(i) for i in range(10)]}
        info = model_info_from_results(meta, results(training, *numbers, seed=seed), extra=extra)
        path = folder / "model_info" / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(info, indent=1))
    return folder
