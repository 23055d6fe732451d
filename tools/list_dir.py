"""A tool that lists a folder of the workspace."""

from __future__ import annotations

import os

from langchain_core.tools import BaseTool, ToolException, tool

# ruff resolves relative imports to the bare `tools` folder, which the repo bans for *absolute* imports.
from agentkit.tools.workspace import Workspace

__all__ = ["MAX_ENTRIES", "list_dir", "make_list_dir"]

# A listing is read by a model: a few hundred names is all it can use, and all the context should hold.
MAX_ENTRIES = 200


def make_list_dir(root: str | os.PathLike[str] | Workspace | None = None) -> BaseTool:
    """Build a `list_dir` tool confined to one workspace.

    Args:
        root: The workspace folder, or a `Workspace` to share with other tools. None: the `AGENTKIT_WORKSPACE`
            environment variable, else the current directory, looked up on each call.

    Returns:
        The tool, named `list_dir`.

    Raises:
        ConfigError: When an explicit `root` does not exist.
    """
    workspace = root if isinstance(root, Workspace) else Workspace(root)

    @tool("list_dir", parse_docstring=True)
    def list_dir(path: str = ".") -> str:
        """List the files and folders in a workspace folder, one per line; folders end with "/".

        Args:
            path: Folder to list, relative to the workspace; "." is the workspace itself.
        """
        target = workspace.resolve(path)
        if not target.exists():
            raise ToolException(f"The folder {path!r} does not exist. Use list_dir('.') to start from the top.")
        if not target.is_dir():
            raise ToolException(f"{path!r} is a file, not a folder. Use read_file to read it.")
        try:
            with os.scandir(target) as scan:
                # is_dir() follows symlinks, so a link to a folder is shown as one.
                entries = sorted((entry.name, entry.is_dir()) for entry in scan)
            names = [name + ("/" if is_dir else "") for name, is_dir in entries]
        except OSError as exc:
            raise ToolException(f"Cannot list {path!r}: {exc.strerror or exc}.") from None
        if not names:
            return "(empty folder)"
        if len(names) > MAX_ENTRIES:
            hidden = len(names) - MAX_ENTRIES
            return "\n".join(
                [*names[:MAX_ENTRIES], f"(... and {hidden} more entries; showing the first {MAX_ENTRIES})"]
            )
        return "\n".join(names)

    return list_dir


list_dir = make_list_dir()
