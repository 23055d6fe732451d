"""Built-in tools: a safe calculator, the current time, and file tools confined to a workspace.

Every tool is a LangChain `BaseTool` with described arguments. Tools report problems by raising
`langchain_core.tools.ToolException` with a short message written for the model; the agent turns it into an
observation.

File tools only reach paths inside their workspace. The module-level `read_file`, `write_file` and `list_dir`
use the `AGENTKIT_WORKSPACE` environment variable, else the current directory, looked up on every call; use
`file_tools(root)` or the `make_*` factories to bind them to a folder.

Example:
    >>> from agentkit.tools import calculator, file_tools
    >>> calculator.invoke({"expression": "3.5*12 + 7.25"})
    '49.25'
    >>> [t.name for t in file_tools(".")]
    ['read_file', 'write_file', 'list_dir']
"""

from __future__ import annotations

import os

from langchain_core.tools import BaseTool

# Absolute imports: this folder installs as agentkit.tools (a bare `tools` is the repository folder).
from agentkit.tools.calculator import calculator
from agentkit.tools.current_time import current_time, make_current_time
from agentkit.tools.list_dir import list_dir, make_list_dir
from agentkit.tools.memory_tools import make_recall, make_remember, memory_tools
from agentkit.tools.read_file import make_read_file, read_file
from agentkit.tools.workspace import Workspace
from agentkit.tools.write_file import make_write_file, write_file

__all__ = [
    "Workspace",
    "calculator",
    "current_time",
    "default_tools",
    "file_tools",
    "list_dir",
    "make_current_time",
    "make_list_dir",
    "make_read_file",
    "make_recall",
    "make_remember",
    "make_write_file",
    "memory_tools",
    "read_file",
    "write_file",
]


def file_tools(root: str | os.PathLike[str] | Workspace | None = None) -> list[BaseTool]:
    """The file tools `read_file`, `write_file` and `list_dir`, all bound to one workspace.

    Args:
        root: The workspace folder (or a `Workspace`). None: the `AGENTKIT_WORKSPACE` environment variable, else
            the current directory, looked up on each call.

    Returns:
        The three tools, in that order.

    Raises:
        ConfigError: When an explicit `root` does not exist.
    """
    workspace = root if isinstance(root, Workspace) else Workspace(root)
    return [make_read_file(workspace), make_write_file(workspace), make_list_dir(workspace)]


def default_tools() -> list[BaseTool]:
    """All built-in tools, with the file tools working in the default workspace.

    Returns:
        `calculator`, `current_time`, `read_file`, `write_file` and `list_dir`, as a new list.
    """
    return [calculator, current_time, read_file, write_file, list_dir]
