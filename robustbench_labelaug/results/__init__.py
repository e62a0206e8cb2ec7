"""The results layer, torch-free: what a measured number is called (:mod:`.keys`), the words for training modes,
threat models and precisions (:mod:`.vocab`), the value rules every entry point applies (:mod:`.rules`), the
:class:`~.measured.Measured` record with the one headline-merge rule (:mod:`.measured`) and the model_info files
built from them (:mod:`.model_info`).

Evaluators write through it, the runner assembles with it, the leaderboard only reads it. Nothing here imports
torch or timm (``tests/test_cli_startup.py`` checks it in a fresh interpreter)."""
