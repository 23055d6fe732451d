"""A tool that writes a text file in the workspace."""

from __future__ import annotations

import os

from langchain_core.tools import BaseTool, ToolException, tool

# ruff resolves relative imports to the bare `tools` folder, which the repo bans for *absolute* imports.
from agentkit.tools.workspace import Workspace

__all__ = ["make_write_file", "write_file"]


def make_write_file(root: str | os.PathLike[str] | Workspace | None = None) -> BaseTool:
    """Build a `write_file` tool confined to one workspace.

    Args:
        root: The workspace folder, or a `Workspace` to share with other tools. None: the `AGENTKIT_WORKSPACE`
            environment variable, else the current directory, looked up on each call.

    Returns:
        The tool, named `write_file`.

    Raises:
        ConfigError: When an explicit `root` does not exist.
    """
    workspace = root if isinstance(root, Workspace) else Workspace(root)

    @tool("write_file", parse_docstring=True)
    def write_file(path: str, content: str, append: bool = False) -> str:
        """Write text to a file in the workspace, creating the file and its folders if needed.

        Args:
            path: Path of the file, relative to the workspace, e.g. "notes/todo.txt".
            content: The text to write.
            append: Add to the end of the file instead of replacing its content.
        """
        # resolve() follows symlinks, so writing through a link that points outside the workspace is refused
        # here, before anything is created.
        target = workspace.resolve(path)
        if target.is_dir():
            raise ToolException(f"{path!r} is a directory; give a file path such as '{path.rstrip('/')}/notes.txt'.")
        if target.exists() and not target.is_file():
            raise ToolException(f"{path!r} is not a regular file.")
        try:
            # The parent is inside the workspace: target is, and resolve() left no `..` or links in it.
            target.parent.mkdir(parents=True, exist_ok=True)
            # newline="": write the text exactly as given, without translating "\n" on Windows.
            with target.open("a" if append else "w", encoding="utf-8", newline="") as handle:
                handle.write(content)
        except OSError as exc:
            raise ToolException(f"Cannot write {path!r}: {exc.strerror or exc}.") from None
        verb = "Appended" if append else "Wrote"
        return f"{verb} {len(content)} characters to {workspace.relative(target)}"

    return write_file


write_file = make_write_file()
