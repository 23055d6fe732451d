"""LangChain's standard tool tests for every built-in tool.

The integration suite only invokes the tools (no network, no model), so it runs here as well: it checks that a
`ToolCall` input comes back as a valid `ToolMessage`, sync and async. langchain-tests allows one standard base per
class, so each tool's parameters live in a mixin used by a unit class and an integration class.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from agentkit.tools import calculator, current_time, make_list_dir, make_read_file, make_write_file


class CalculatorParams:
    @property
    def tool_constructor(self) -> BaseTool:
        return calculator

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"expression": "3.5*12 + 7.25"}


class CurrentTimeParams:
    @property
    def tool_constructor(self) -> BaseTool:
        return current_time

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"timezone": "Europe/Paris"}


class FileToolParams:
    """File tools bound to a temporary workspace made once per test class, holding `notes.txt`."""

    root: Path

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _workspace(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
        # Properties cannot take fixtures, so the folder is stored on the class for `tool_constructor`.
        root = tmp_path_factory.mktemp("workspace")
        (root / "notes.txt").write_text("hello from the workspace\n", encoding="utf-8")
        cls.root = root
        yield


class ReadFileParams(FileToolParams):
    @property
    def tool_constructor(self) -> BaseTool:
        return make_read_file(self.root)

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"path": "notes.txt"}


class WriteFileParams(FileToolParams):
    @property
    def tool_constructor(self) -> BaseTool:
        return make_write_file(self.root)

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"path": "out/new.txt", "content": "written by the standard tests"}


class ListDirParams(FileToolParams):
    @property
    def tool_constructor(self) -> BaseTool:
        return make_list_dir(self.root)

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"path": "."}


class TestCalculatorUnit(CalculatorParams, ToolsUnitTests):
    pass


class TestCalculatorIntegration(CalculatorParams, ToolsIntegrationTests):
    pass


class TestCurrentTimeUnit(CurrentTimeParams, ToolsUnitTests):
    pass


class TestCurrentTimeIntegration(CurrentTimeParams, ToolsIntegrationTests):
    pass


class TestReadFileUnit(ReadFileParams, ToolsUnitTests):
    pass


class TestReadFileIntegration(ReadFileParams, ToolsIntegrationTests):
    pass


class TestWriteFileUnit(WriteFileParams, ToolsUnitTests):
    pass


class TestWriteFileIntegration(WriteFileParams, ToolsIntegrationTests):
    pass


class TestListDirUnit(ListDirParams, ToolsUnitTests):
    pass


class TestListDirIntegration(ListDirParams, ToolsIntegrationTests):
    pass
