"""Toolbox: wrapping and refusing tools, forgiving lookup, argument coercion, validation and descriptions."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from langchain_core.tools import BaseTool, StructuredTool

from agentkit import ConfigError, Toolbox, tool


def add(a: int, b: int = 2) -> int:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def read_file(path: str) -> str:
    """Read a text file.

    Args:
        path: Path of the file to read.
    """
    return path


def now() -> str:
    """The current time."""
    return "12:00"


def options(mode: str = "fast", level: int = 1) -> str:
    """Run with options.

    Args:
        mode: How to run.
        level: How hard to try.
    """
    return f"{mode}{level}"


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers.

    Args:
        a: First factor.
        b: Second factor.
    """
    return a * b


def no_docstring(x: int) -> int:
    return x


def blank_docstring(x: int) -> int:
    """ """
    return x


def args_only_docstring(x: int) -> int:
    """Args:
    x: A number.
    """
    return x


class EchoTool(BaseTool):
    """Echo a value back."""

    name: str = "echo"
    description: str = "Echo the query back."

    def _run(self, query: str) -> str:
        return query


class CallableObject:
    """A callable that is not a function."""

    def __call__(self, x: int) -> int:
        return x


SEARCH_SCHEMA = {
    "type": "object",
    "properties": {"q": {"type": "string", "description": "What to look for."}, "n": {"type": "integer"}},
    "required": ["q"],
}


def _search(**kwargs: Any) -> str:
    return str(kwargs)


@pytest.fixture
def toolbox() -> Toolbox:
    return Toolbox([add, read_file, now, options, multiply])


# --------------------------------------------------------------------------------------------------------------------
# Building a toolbox
# --------------------------------------------------------------------------------------------------------------------


def test_names_and_tools_keep_the_given_order(toolbox: Toolbox) -> None:
    assert toolbox.names == ["add", "read_file", "now", "options", "multiply"]
    assert [t.name for t in toolbox.tools] == toolbox.names
    assert all(isinstance(t, BaseTool) for t in toolbox.tools)
    assert len(toolbox) == 5
    assert "add" in toolbox
    assert "Add" not in toolbox
    assert toolbox.get("multiply") is multiply
    assert toolbox.get("nope") is None


def test_empty_toolbox() -> None:
    box = Toolbox()
    assert box.names == []
    assert len(box) == 0
    assert box.resolve("anything") is None


def test_function_wrapping_keeps_google_docstring_descriptions(toolbox: Toolbox) -> None:
    wrapped = toolbox.get("add")
    assert wrapped is not None
    assert wrapped.description == "Add two numbers."
    params = toolbox.parameters("add")
    assert params["a"]["description"] == "The first number."
    assert params["a"]["type"] == "integer"
    assert params["b"]["description"] == "The second number."
    assert params["b"]["default"] == 2
    assert toolbox.required("add") == ["a"]
    assert toolbox.parameters("read_file")["path"]["description"] == "Path of the file to read."
    assert wrapped.invoke({"a": 3, "b": 4}) == 7


def test_tool_without_arguments(toolbox: Toolbox) -> None:
    assert toolbox.parameters("now") == {}
    assert toolbox.required("now") == []
    assert toolbox.describe_args("now") == "{}"


def test_langchain_tools_are_used_as_they_are() -> None:
    echo = EchoTool()
    box = Toolbox([echo])
    assert box.tools == [echo]
    assert box.get("echo") is echo
    assert box.required("echo") == ["query"]


def test_parameters_returns_a_copy(toolbox: Toolbox) -> None:
    toolbox.parameters("add").clear()
    toolbox.required("add").clear()
    assert "a" in toolbox.parameters("add")
    assert toolbox.required("add") == ["a"]


# --------------------------------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------------------------------


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_duplicate_names_are_refused_naming_the_tool() -> None:
    with pytest.raises(ConfigError, match=r"'add'") as info:
        Toolbox([add, read_file, add])
    assert "unique" in str(info.value)


def test_duplicate_names_across_function_and_tool_are_refused() -> None:
    @tool("read_file")
    def other(path: str) -> str:
        """Read something else."""
        return path

    with pytest.raises(ConfigError, match="read_file"):
        Toolbox([read_file, other])


def test_function_without_docstring_is_refused() -> None:
    with pytest.raises(ConfigError, match="no_docstring") as info:
        Toolbox([no_docstring])
    assert "docstring" in str(info.value)


def test_function_with_blank_docstring_is_refused() -> None:
    with pytest.raises(ConfigError, match="docstring"):
        Toolbox([blank_docstring])


def test_lambda_is_refused() -> None:
    with pytest.raises(ConfigError, match="docstring"):
        Toolbox([lambda x: x])


def test_docstring_with_only_args_section_is_refused() -> None:
    with pytest.raises(ConfigError, match="args_only_docstring"):
        Toolbox([args_only_docstring])


@pytest.mark.parametrize("description", ["", "   \n\t"])
def test_base_tool_without_description_is_refused(description: str) -> None:
    blank = StructuredTool.from_function(_search, name="blank", description=description, args_schema=SEARCH_SCHEMA)
    with pytest.raises(ConfigError, match="'blank' has no description"):
        Toolbox([blank])


@pytest.mark.parametrize("item", [42, "add", None, {"name": "add"}, 3.5], ids=["int", "str", "none", "dict", "float"])
def test_non_tools_are_refused(item: Any) -> None:
    with pytest.raises(ConfigError, match="is not a tool"):
        Toolbox([item])


def test_tool_class_instead_of_instance_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"EchoTool\(") as info:
        Toolbox([EchoTool])
    assert "instance" in str(info.value)


@pytest.mark.parametrize("item", [functools.partial(add, 1), CallableObject()], ids=["partial", "callable-object"])
def test_callables_langchain_cannot_wrap_are_refused(item: Any) -> None:
    with pytest.raises(ConfigError, match="cannot be made a tool"):
        Toolbox([item])


# --------------------------------------------------------------------------------------------------------------------
# Forgiving lookup
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("add", "add"),
        ("ADD", "add"),
        (" Add ", "add"),
        ("read_file", "read_file"),
        ("read-file", "read_file"),
        ("Read File", "read_file"),
        ("READ_FILE", "read_file"),
        ("readfile", "read_file"),
        ("ReadFile", "read_file"),
        ("read__file", "read_file"),
        ("read - file", "read_file"),
        ("Multiply", "multiply"),
        ("write_file", None),
        ("reader", None),
        ("", None),
        ("   ", None),
        ("-_-", None),
    ],
)
def test_resolve(toolbox: Toolbox, written: str, expected: str | None) -> None:
    assert toolbox.resolve(written) == expected


def test_resolve_prefers_an_exact_name() -> None:
    def read_File(path: str) -> str:
        """Another reader.

        Args:
            path: A path.
        """
        return path

    box = Toolbox([read_file, read_File])
    assert box.resolve("read_file") == "read_file"
    assert box.resolve("read_File") == "read_File"


# --------------------------------------------------------------------------------------------------------------------
# Coercing a non-object input into arguments
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        pytest.param("read_file", "notes.txt", {"path": "notes.txt"}, id="sole-param"),
        pytest.param("read_file", 7, {"path": 7}, id="sole-param-any-value"),
        pytest.param("add", 5, {"a": 5}, id="sole-required-param"),
        pytest.param("add", "", {"a": ""}, id="empty-goes-to-sole-required"),
        pytest.param("multiply", 3, None, id="two-required-ambiguous"),
        pytest.param("options", "slow", None, id="two-optional-ambiguous"),
        pytest.param("now", 3, None, id="value-for-no-params"),
        pytest.param("now", "", {}, id="empty-no-params"),
        pytest.param("now", None, {}, id="null-no-params"),
        pytest.param("options", "", {}, id="empty-no-required"),
        pytest.param("options", None, {}, id="null-no-required"),
        pytest.param("multiply", {"a": 1, "b": 2}, {"a": 1, "b": 2}, id="mapping-kept"),
        pytest.param("multiply", {}, {}, id="empty-mapping-kept"),
    ],
)
def test_coerce_args(toolbox: Toolbox, name: str, raw: Any, expected: dict[str, Any] | None) -> None:
    assert toolbox.coerce_args(name, raw) == expected


def test_coerce_args_copies_a_mapping(toolbox: Toolbox) -> None:
    raw = {"a": 1}
    args = toolbox.coerce_args("add", raw)
    assert args == raw
    assert args is not raw


# --------------------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("add", {"a": 1}),
        ("add", {"a": 1, "b": 2}),
        ("add", {"a": "3"}),  # pydantic's lax mode accepts a numeric string
        ("add", {"a": 1, "unknown": 2}),  # extra arguments are not an error
        ("now", {}),
        ("multiply", {"a": 1.5, "b": 2}),
    ],
)
def test_validate_accepts_good_arguments(toolbox: Toolbox, name: str, args: dict[str, Any]) -> None:
    assert toolbox.validate(name, args) is None


def test_validate_wrong_type_names_the_field_and_the_expected_arguments(toolbox: Toolbox) -> None:
    message = toolbox.validate("add", {"a": "abc"})
    assert message is not None
    assert message.startswith("a: ")
    assert "integer" in message
    assert "Expected arguments: " + toolbox.describe_args("add") in message


def test_validate_missing_argument(toolbox: Toolbox) -> None:
    message = toolbox.validate("add", {})
    assert message is not None
    assert message.startswith("a: ")
    assert "required" in message.lower()
    assert toolbox.describe_args("add") in message


def test_validate_reports_every_problem(toolbox: Toolbox) -> None:
    message = toolbox.validate("multiply", {"a": "x"})
    assert message is not None
    assert "a: " in message
    assert "b: " in message
    assert "; " in message


def test_validate_message_mentions_the_field_for_a_second_argument(toolbox: Toolbox) -> None:
    message = toolbox.validate("add", {"a": 1, "b": [1]})
    assert message is not None
    assert message.startswith("b: ")


def test_validate_json_schema_tool() -> None:
    search = StructuredTool.from_function(_search, name="search", description="Search.", args_schema=SEARCH_SCHEMA)
    box = Toolbox([search])
    assert box.required("search") == ["q"]
    assert box.parameters("search")["q"]["description"] == "What to look for."
    assert box.validate("search", {"q": "cats"}) is None
    message = box.validate("search", {"n": 3})
    assert message is not None
    assert "q" in message
    assert box.describe_args("search") in message
    assert box.coerce_args("search", "cats") == {"q": "cats"}


# --------------------------------------------------------------------------------------------------------------------
# Descriptions and subsets
# --------------------------------------------------------------------------------------------------------------------


def test_describe_args_is_json_marking_required(toolbox: Toolbox) -> None:
    described = json.loads(toolbox.describe_args("add"))
    assert described == {
        "a": {"description": "The first number.", "type": "integer", "required": True},
        "b": {"description": "The second number.", "type": "integer", "default": 2},
    }
    both = json.loads(toolbox.describe_args("multiply"))
    assert both["a"]["required"] is True
    assert both["b"]["required"] is True
    assert all("required" not in spec for spec in json.loads(toolbox.describe_args("options")).values())


def test_describe_args_keeps_only_useful_keys(toolbox: Toolbox) -> None:
    for name in toolbox.names:
        for spec in json.loads(toolbox.describe_args(name)).values():
            assert set(spec) <= {"type", "description", "enum", "default", "items", "required"}


def test_describe_args_keeps_unicode_readable() -> None:
    def greet(name: str) -> str:
        """Greet someone.

        Args:
            name: Der Name (Grüße).
        """
        return name

    box = Toolbox([greet])
    assert "Grüße" in box.describe_args("greet")
    assert json.loads(box.describe_args("greet"))["name"]["description"] == "Der Name (Grüße)."


def test_subset_keeps_the_given_order_and_skips_unknown_names(toolbox: Toolbox) -> None:
    sub = toolbox.subset(["multiply", "nope", "add", "Read_File"])
    assert isinstance(sub, Toolbox)
    assert sub.names == ["multiply", "add"]
    assert sub.get("add") is toolbox.get("add")
    assert toolbox.names == ["add", "read_file", "now", "options", "multiply"]
    assert sub.describe_args("add") == toolbox.describe_args("add")


def test_empty_subset(toolbox: Toolbox) -> None:
    assert toolbox.subset([]).names == []
    assert toolbox.subset(["nope"]).names == []
