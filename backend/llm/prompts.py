"""Prompt and text templates: Jinja2 files in ``prompts/``, the product team's to edit.

Rendering uses ``StrictUndefined`` so a template that names a variable we do not pass fails
loudly (in tests and at preview), never silently. Jinja reloads a file when it changes on
disk, so an edited template takes effect without a restart.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError

_BLANK_RUNS = re.compile(r"\n{3,}")


class PromptError(RuntimeError):
    """A template is missing, does not parse, or needs a variable that was not given."""


class PromptLibrary:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._env = Environment(
            loader=FileSystemLoader(str(directory)),
            undefined=StrictUndefined,
            autoescape=False,  # plain text for people and models, not HTML
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=True,
        )

    def names(self) -> list[str]:
        return sorted(p.name for p in self.directory.glob("*.j2"))

    def render(self, name: str, /, **context: Any) -> str:
        try:
            text = self._env.get_template(name).render(**context)
        except TemplateError as exc:
            raise PromptError(f"template {name!r}: {exc}") from exc
        return _BLANK_RUNS.sub("\n\n", text).strip()
