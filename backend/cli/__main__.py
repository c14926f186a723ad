"""``python -m backend.cli``: the same command as ``shopwise``."""

from backend.cli import app

app()
