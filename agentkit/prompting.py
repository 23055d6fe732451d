"""Render the prompt templates in `agentkit/prompts/` (prompts are data, not code).

Templates use jinja2 with `StrictUndefined`, so a variable missing from a render call fails loudly instead of
leaving a silent hole in a prompt.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import jinja2

__all__ = ["render"]


@cache
def _environment() -> jinja2.Environment:
    def load(name: str) -> str:
        return resources.files("agentkit.prompts").joinpath(name).read_text(encoding="utf-8")

    return jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,  # prompts are plain text for a model, never HTML
    )


@cache
def _template(name: str) -> jinja2.Template:
    return _environment().get_template(name)


def render(name: str, **variables: Any) -> str:
    """Render a template from `agentkit/prompts/`.

    Args:
        name: The template's file name, e.g. ``"react_system.jinja"``.
        **variables: The template's variables; every one it uses must be given.

    Returns:
        The rendered text, stripped of surrounding whitespace.

    Raises:
        jinja2.UndefinedError: When the template uses a variable that was not given.
    """
    return _template(name).render(**variables).strip()
