"""The model zoo: entries (``model_zoo/*.yaml``), ``load_model``, checkpoint export, RobustBench registration.

Checkpoints live at ``<model_dir>/<dataset>/<threat_model>/<name>.pt`` (RobustBench's layout) with a
``<name>.pt.sha256`` sidecar written by :func:`export_checkpoint`."""

from .._lazy import lazy_exports

__getattr__ = lazy_exports(__name__, {
    **dict.fromkeys(("ZooEntry", "get_entry", "list_entries", "load_entries", "load_entry_file", "validate_entry"),
                    ".entries"),
    **dict.fromkeys(("Exported", "export_checkpoint"), ".export"),
    "file_sha256": "..fileio",
    **dict.fromkeys(("build_model", "checkpoint_path", "load_model", "read_sidecar", "sidecar_path", "zoo_entry_of"),
                    ".loading"),
    **dict.fromkeys(("install_robustbench_hook", "register_robustbench"), ".robustbench_registry"),
})

__all__ = ["Exported", "ZooEntry", "build_model", "checkpoint_path", "export_checkpoint", "file_sha256", "get_entry",
           "install_robustbench_hook", "list_entries", "load_entries", "load_entry_file", "load_model",
           "read_sidecar", "register_robustbench", "sidecar_path", "validate_entry", "zoo_entry_of"]
