"""A model-based check of the bootstrap's mean-error difference: logistic models of the per-example outcomes
(statsmodels), fitted to the same outcome table.

The data's structure is a crossed random-effects logistic model: ``logit P(wrong) = class + arm + u_model +
v_example`` (one ``u`` per trained model, seeds nested in arms; one ``v`` per test example, shared by every
model). Two fits are offered:

- :func:`gee_difference` (the check whose *interval* is compared): a marginal logistic model ``wrong ~ class +
  arm`` fitted by generalised estimating equations (Liang & Zeger 1986) with one cluster per trained model and an
  exchangeable working correlation within it, and the bias-reduced sandwich covariance (Mancl & DeRouen 2001) for
  the few clusters a study has (2 x seeds); its interval uses a t quantile with (clusters - 2) degrees of freedom
  (the arm is a between-cluster covariate, estimated from the clusters' two groups; the class terms vary within
  clusters and do not use up cluster-level degrees of freedom: the "between-within" rule for cluster-level
  effects). The estimate is the population-averaged class-mean error difference ``mean_c [expit(eta_c + b) -
  expit(eta_c)]`` (percentage points) with a delta-method interval. The sandwich is valid whatever the correlation
  within a model, so seed-to-seed variation is in the interval; the correlation *across* models through the
  shared examples is not modelled, which for a difference of arms (paired over the same examples) errs on the
  wide side.
- :func:`mixed_glm_difference`: the crossed random-effects model itself, ``BinomialBayesMixedGLM`` (statsmodels'
  only mixed-effects logistic model) with variance components for the model and the example, fitted by
  mean-field variational Bayes. Its point estimate of the difference and its variance components (seed SD and
  example SD on the logit scale) are reported. Its *interval* is not used as the check: mean-field VB treats the
  arm effect and the model effects as independent, though the model effects are nested in the arms, so the arm
  effect's posterior SD comes out several times too small (measured here: 0.08 on the logit scale where the
  seeds' spread implies about 0.2); the Laplace fit (``fit_map``) drives the variance components to 0 on these
  data and does not converge. That is why the interval check is the GEE fit.

Both functions take what :func:`.bootstrap.bootstrap_draws` takes (an outcome table or arm -> ArmOutcomes).
References: K.-Y. Liang and S. L. Zeger, Biometrika 73 (1986); L. A. Mancl and T. A. DeRouen, Biometrics 57
(2001); statsmodels' ``GEE`` and ``BinomialBayesMixedGLM`` documentation.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import stats as sps

from ..errors import UserError
from .bootstrap import as_arms
from .outcomes import ArmOutcomes, same_examples
from .simulate import expit


def _long(a: ArmOutcomes, b: ArmOutcomes) -> dict[str, np.ndarray]:
    """Long-format arrays of two arms: ``wrong``, ``is_b``, ``cls``, ``example`` and ``model`` (cluster id)."""
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("wrong", "is_b", "cls", "example", "model")}
    model = 0
    for flag, arm in ((0.0, a), (1.0, b)):
        for s in range(arm.num_seeds):
            rows["wrong"].append(arm.wrong[s].astype(np.float64))
            rows["is_b"].append(np.full(arm.y.size, flag))
            rows["cls"].append(arm.y)
            rows["example"].append(np.arange(arm.y.size))
            rows["model"].append(np.full(arm.y.size, model))
            model += 1
    return {k: np.concatenate(v) for k, v in rows.items()}


def _design(cls: np.ndarray, is_b: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Columns: intercept, one per class after the first (treatment coding), arm B."""
    dummies = (cls[:, None] == classes[None, 1:]).astype(np.float64)
    return np.column_stack([np.ones(cls.size), dummies, is_b])


def _mean_difference(params: np.ndarray, n_classes: int) -> tuple[float, np.ndarray]:
    """Class-mean error difference (pp) of a ``class + arm`` logit model and its gradient w.r.t. the params."""
    eta = params[0] + np.concatenate([[0.0], params[1:n_classes]])
    b = params[-1]
    pa, pb = expit(eta), expit(eta + b)
    diff = 100.0 * float(np.mean(pb - pa))
    da, db = pa * (1 - pa), pb * (1 - pb)
    grad = np.zeros(params.size)
    grad[0] = np.mean(db - da)
    grad[1:n_classes] = (db - da)[1:] / n_classes
    grad[-1] = np.mean(db)
    return diff, 100.0 * grad


def _two_arms(data: Any, arm_a: str, arm_b: str) -> tuple[ArmOutcomes, ArmOutcomes]:
    a, b = as_arms(data, [arm_a, arm_b])
    same_examples([a, b])
    return a, b


def gee_difference(data: Any, arm_a: str, arm_b: str, *, level: float = 0.95) -> dict[str, Any]:
    """B - A class-mean error difference (pp) from the marginal logistic GEE fit (see the module docstring):
    ``{"diff", "ci", "se", "log_odds": [b, its se], "n_clusters", "df", "level", "model"}``."""
    import statsmodels.api as sm

    a, b = _two_arms(data, arm_a, arm_b)
    long = _long(a, b)
    classes = np.unique(long["cls"])
    exog = _design(long["cls"], long["is_b"], classes)
    n_clusters = a.num_seeds + b.num_seeds
    if min(a.num_seeds, b.num_seeds) < 2:
        raise UserError(f"the GEE check needs >= 2 seeds per arm: arms {arm_a!r} and {arm_b!r} have "
                        f"{a.num_seeds} and {b.num_seeds}; add seeds")
    model = sm.GEE(long["wrong"], exog, groups=long["model"], family=sm.families.Binomial(),
                   cov_struct=sm.cov_struct.Exchangeable())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(cov_type="bias_reduced", maxiter=100)
    params, cov = np.asarray(fit.params), np.asarray(fit.cov_params())
    diff, grad = _mean_difference(params, classes.size)
    se = float(np.sqrt(grad @ cov @ grad))
    df = n_clusters - 2
    half = float(sps.t.ppf(0.5 + level / 2, df)) * se
    return {"diff": diff, "ci": [diff - half, diff + half], "se": se,
            "log_odds": [float(params[-1]), float(np.sqrt(cov[-1, -1]))], "n_clusters": n_clusters, "df": df,
            "level": level, "model": "GEE, binomial, exchangeable within each trained model, bias-reduced sandwich"}


def mixed_glm_difference(data: Any, arm_a: str, arm_b: str) -> dict[str, Any]:
    """B - A class-mean error difference (pp) from ``BinomialBayesMixedGLM`` (crossed model and example variance
    components, variational Bayes): the difference at the posterior means, marginalised over both random effects
    (``u + v ~ N(0, seed_sd^2 + example_sd^2)``, Gauss-Hermite), and the variance components ``seed_sd`` and
    ``example_sd`` (logit scale). No interval (see the module docstring)."""
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    a, b = _two_arms(data, arm_a, arm_b)
    long = _long(a, b)
    classes = np.unique(long["cls"])
    exog = _design(long["cls"], long["is_b"], classes)
    models = (long["model"][:, None] == np.unique(long["model"])[None, :]).astype(np.float64)
    examples = (long["example"][:, None] == np.unique(long["example"])[None, :]).astype(np.float64)
    exog_vc = np.hstack([models, examples])
    ident = np.concatenate([np.zeros(models.shape[1], dtype=int), np.ones(examples.shape[1], dtype=int)])
    glm = BinomialBayesMixedGLM(long["wrong"], exog, exog_vc, ident)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = glm.fit_vb()
    seed_sd, example_sd = (float(v) for v in np.exp(fit.vcp_mean))
    x, w = np.polynomial.hermite_e.hermegauss(64)
    z, w = float(np.hypot(seed_sd, example_sd)) * x, w / w.sum()
    params = np.asarray(fit.fe_mean)
    eta = params[0] + np.concatenate([[0.0], params[1:classes.size]])
    pa = expit(eta[:, None] + z[None, :]) @ w
    pb = expit(eta[:, None] + params[-1] + z[None, :]) @ w
    return {"diff": 100.0 * float(np.mean(pb - pa)), "log_odds": float(params[-1]),
            "log_odds_posterior_sd": float(fit.fe_sd[-1]), "seed_sd": seed_sd, "example_sd": example_sd,
            "model": "BinomialBayesMixedGLM (variance components: model, example), variational Bayes"}


__all__ = ["gee_difference", "mixed_glm_difference"]
