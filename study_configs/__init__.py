"""Study configs (``rbla study -c <name>``; one YAML per study), installed as ``robustbench_labelaug.study_configs``."""
