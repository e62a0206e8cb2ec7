"""Evaluation configs (one YAML per setup), installed as ``robustbench_labelaug.eval_configs``."""
