"""The agent's set of tools: normalised once, looked up forgivingly, described for prompts.

Tools are LangChain `BaseTool`s. Plain typed functions are wrapped with LangChain's own `tool()` with lenient
docstring parsing, so a first custom tool with an imperfect docstring still works (smolagents#574) while a tool
with no description at all is refused, since the model could never know when to use it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from langchain_core.tools import BaseTool
from langchain_core.tools import tool as make_tool
from pydantic import BaseModel, ValidationError

from agentkit.errors import ConfigError

__all__ = ["Toolbox"]

ToolLike = BaseTool | Callable[..., Any]


class Toolbox:
    """An ordered, name-unique set of tools.

    Args:
        tools: LangChain tools or plain typed functions with a docstring.

    Raises:
        ConfigError: When two tools share a name, a tool has no description, or an item is not a tool.
    """

    def __init__(self, tools: Iterable[ToolLike] = ()) -> None:
        self._tools: dict[str, BaseTool] = {}
        for item in tools:
            wrapped = _as_tool(item)
            if wrapped.name in self._tools:
                raise ConfigError(
                    f"Two tools are named {wrapped.name!r}. Tool names must be unique: rename one "
                    f"(e.g. @tool('other_name') or StructuredTool.from_function(..., name='other_name'))."
                )
            self._tools[wrapped.name] = wrapped
        # Schemas are rendered once: pydantic's model_json_schema costs far more than a model-free step.
        self._models = {name: tool.tool_call_schema for name, tool in self._tools.items()}
        self._schemas = {name: _schema(tool) for name, tool in self._tools.items()}
        # Forgiving lookup for text formats: small models write `Calculator` or `read-file`.
        self._loose = {_loose_key(name): name for name in self._tools}

    @property
    def names(self) -> list[str]:
        """Tool names in the order they were given."""
        return list(self._tools)

    @property
    def tools(self) -> list[BaseTool]:
        """The tools, in the order they were given."""
        return list(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def get(self, name: str) -> BaseTool | None:
        """Find a tool by exact name."""
        return self._tools.get(name)

    def resolve(self, name: str) -> str | None:
        """Map a name as a model wrote it to a tool name, ignoring case, spaces, `-` and `_`.

        Args:
            name: The name the model wrote.

        Returns:
            The tool's exact name, or None when nothing matches.
        """
        if name in self._tools:
            return name
        return self._loose.get(_loose_key(name))

    def subset(self, names: Iterable[str]) -> Toolbox:
        """A toolbox holding only the named tools, in the given order (unknown names are skipped)."""
        return Toolbox(self._tools[n] for n in names if n in self._tools)

    def parameters(self, name: str) -> dict[str, Any]:
        """JSON-schema properties of a tool's arguments (without injected arguments)."""
        return dict(self._schemas[name].get("properties", {}))

    def required(self, name: str) -> list[str]:
        """Names of a tool's required arguments."""
        return list(self._schemas[name].get("required", []))

    def coerce_args(self, name: str, raw: Any) -> dict[str, Any] | None:
        """Turn an action input that is not a JSON object into arguments, when that is unambiguous.

        A bare value is given to the tool's only parameter, or its only required one; an empty input suits a tool
        with no required parameter.

        Args:
            name: Exact tool name.
            raw: The parsed input: a mapping, a scalar or a string.

        Returns:
            The arguments, or None when the input cannot be mapped without guessing.
        """
        if isinstance(raw, Mapping):
            return dict(raw)
        params, required = self.parameters(name), self.required(name)
        if raw in ("", None) and not required:
            return {}
        targets = list(params) if len(params) == 1 else required
        if len(targets) == 1:
            return {targets[0]: raw}
        return None

    def validate(self, name: str, args: Mapping[str, Any]) -> str | None:
        """Check arguments against the tool's schema before anything runs.

        Args:
            name: Exact tool name.
            args: The arguments the model gave.

        Returns:
            None when valid, else a short explanation written for the model.
        """
        schema = self._models[name]
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            try:
                schema.model_validate(dict(args))
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}" for err in exc.errors()
                )
                return f"{problems}. Expected arguments: {self.describe_args(name)}"
            return None
        missing = [r for r in self.required(name) if r not in args]
        if missing:
            return f"missing required argument(s) {', '.join(missing)}. Expected: {self.describe_args(name)}"
        return None

    def describe_args(self, name: str) -> str:
        """A compact JSON rendering of a tool's arguments for prompts and error messages."""
        required = set(self.required(name))
        props = {
            arg: {k: v for k, v in spec.items() if k in ("type", "description", "enum", "default", "items")}
            | ({"required": True} if arg in required else {})
            for arg, spec in self.parameters(name).items()
        }
        return json.dumps(props, ensure_ascii=False)


def _as_tool(item: ToolLike) -> BaseTool:
    if isinstance(item, BaseTool):
        tool = item
    elif isinstance(item, type) and issubclass(item, BaseTool):
        # The class is callable too, and LangChain would wrap its constructor as a tool.
        raise ConfigError(f"{item.__name__} is a tool class: pass an instance, {item.__name__}(...).")
    elif callable(item):
        if not (getattr(item, "__doc__", None) or "").strip():
            raise ConfigError(
                f"Function {getattr(item, '__name__', item)!r} has no docstring. Add one: its first line tells "
                "the model what the tool does (an 'Args:' section describes each argument)."
            )
        try:
            tool = make_tool(item, parse_docstring=True, error_on_invalid_docstring=False)
        except ValueError as exc:
            # LangChain refuses callables without a __name__ (partials, callable objects) and docstrings with
            # only an 'Args:' section and no summary line.
            raise ConfigError(
                f"{getattr(item, '__name__', item)!r} cannot be made a tool: {exc} Pass a plain function whose "
                "docstring starts with what the tool does, or build one with StructuredTool.from_function(...)."
            ) from exc
    else:
        raise ConfigError(f"{item!r} is not a tool: pass a LangChain BaseTool or a typed function with a docstring.")
    if not (tool.description or "").strip():
        raise ConfigError(
            f"Tool {tool.name!r} has no description. Give it one (a docstring, or description=...): the model "
            "chooses tools by their descriptions."
        )
    return tool


def _schema(tool: BaseTool) -> dict[str, Any]:
    schema = tool.tool_call_schema
    if isinstance(schema, dict):
        return schema
    if issubclass(schema, BaseModel):
        return schema.model_json_schema()
    return dict(schema.schema())  # a pydantic.v1 model from an older tool


def _loose_key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())
