"""Development tools that do not ship in the wheel (``tools/docs_render.py``)."""
