"""Model-zoo entries (one YAML file per model), installed as ``robustbench_labelaug.model_zoo``."""
