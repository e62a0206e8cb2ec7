"""RobustBench ``model_info`` JSONs, extended with a ``labelaug`` block.

The top level has exactly the fields of ``robustbench.utils.ModelInfo`` (1.1.1) with RobustBench's conventions:
accuracies in percent as strings with two decimals (``"clean_acc": "64.02"``), ``eps`` as a string (``"4/255"``
when it is a multiple of 1/255, else ``"0.03"``), ``reported`` = the robust accuracy the paper reports, and
``null`` where nothing was measured. Unknown text uses RobustBench's own values for it (from its model_info
files): ``"venue": "N/A"``, ``"authors": ""``, ``"reported": ""``, ``"link": ""`` (never ``null``, which its
template renders as ``href="None"``). RobustBench's leaderboard tooling reads these files as they are.

Reading, RobustBench's whole file schema is accepted, as found in its ``model_info/<dataset>/<threat_model>/``
files: the ModelInfo fields plus ``external`` (best known robust accuracy from another attack, a percent string)
and ``unreliable`` (AutoAttack's evaluation may be unreliable, a bool); ``""`` for an unknown number; no
``autoattack_acc`` in corruption files; mCE values (AlexNet = 100) above 100.

Everything else sits under ``"labelaug"``: the model (training mode, K, M, delta, threat model, pixel-space eps),
the headline numbers as *errors* in percent (``measured``), the protocol of every robust number, the paper's
numbers (``reported``, from the zoo entry, never mixed with measured ones) and every evaluator's full
:class:`~robustbench_labelaug.evaluation.base.EvalResult` (``results``, keyed by the config's evaluator id).

One job per module: :mod:`.robustbench_format` (RobustBench's fields and conventions), :mod:`.build` (a model's
model_info from its results and what they declare), :mod:`.validate` and :mod:`.read` (files of a folder, the
headlines a file stores). Torch-free: building takes what the evaluators declared (:class:`~..measured.Declared`);
reading and validating never import an evaluator.
"""

from __future__ import annotations

from ..vocab import THREAT_MODELS  # noqa: F401  (the one vocabulary, also under this name)
from .build import (
    PIXEL_SPACE,
    SCHEMA_VERSION,
    build_model_info,
    headline_records,
    headline_values,
    headlines,
    normalize_reported,
    summarize_results,
)
from .read import (
    FOLDER_DATASET,
    FOLDER_THREAT_MODEL,
    dataset_of,
    headline_sources,
    load_model_info,
    load_model_infos,
    model_info_files,
    stored_headlines,
    threat_model_of,
)
from .robustbench_format import (
    MODEL_INFO_FIELDS,
    REQUIRED_FIELDS,
    ROBUSTBENCH_AUTOATTACK_PROTOCOL,
    ROBUSTBENCH_EXTRA_FIELDS,
    ROBUSTBENCH_HEADLINES,
    UNKNOWN_TEXT,
    accuracy_to_error,
    autoattack_protocol,
    format_eps,
    number,
    parse_eps,
    percent,
)
from .validate import validate_model_info

__all__ = ["FOLDER_DATASET", "FOLDER_THREAT_MODEL", "MODEL_INFO_FIELDS", "PIXEL_SPACE", "REQUIRED_FIELDS",
           "ROBUSTBENCH_AUTOATTACK_PROTOCOL", "ROBUSTBENCH_EXTRA_FIELDS", "ROBUSTBENCH_HEADLINES", "SCHEMA_VERSION",
           "UNKNOWN_TEXT", "accuracy_to_error", "autoattack_protocol", "build_model_info", "dataset_of",
           "format_eps", "headline_records", "headline_sources", "headline_values", "headlines", "load_model_info",
           "load_model_infos", "model_info_files", "normalize_reported", "number", "parse_eps", "percent",
           "stored_headlines", "summarize_results", "threat_model_of", "validate_model_info"]
