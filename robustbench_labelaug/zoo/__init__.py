"""The model zoo: entries (``model_zoo/*.yaml``), ``load_model``, checkpoint export, RobustBench registration.

Checkpoints live at ``<model_dir>/<dataset>/<threat_model>/<name>.pt`` (RobustBench's layout) with a
``<name>.pt.sha256`` sidecar written by :func:`export_checkpoint`."""

from .entries import ZooEntry, get_entry, list_entries, load_entries, load_entry_file, validate_entry
from .export import Exported, export_checkpoint
from .loading import build_model, checkpoint_path, file_sha256, load_model, read_sidecar, sidecar_path
from .robustbench_registry import install_robustbench_hook, register_robustbench

__all__ = ["Exported", "ZooEntry", "build_model", "checkpoint_path", "export_checkpoint", "file_sha256", "get_entry",
           "install_robustbench_hook", "list_entries", "load_entries", "load_entry_file", "load_model",
           "read_sidecar", "register_robustbench", "sidecar_path", "validate_entry"]
