"""Leaderboards: ``rbla evaluate`` (config -> RobustBench model_info JSONs), ``rbla leaderboard`` (markdown/HTML
tables) and the paper's figures. Submodules are imported on use (the CLI loads only the chosen sub-command)."""
