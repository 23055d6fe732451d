"""A tool that reads a text file from the workspace."""

from __future__ import annotations

import os

from langchain_core.tools import BaseTool, ToolException, tool

# ruff resolves relative imports to the bare `tools` folder, which the repo bans for *absolute* imports.
from agentkit.tools.workspace import Workspace

__all__ = ["DEFAULT_MAX_CHARS", "make_read_file", "read_file"]

DEFAULT_MAX_CHARS = 20_000
# Enough to recognise binary content (git uses the same NUL-byte heuristic on its first 8 KB).
_SNIFF_BYTES = 8192
_COUNT_CHUNK_CHARS = 1 << 20


def make_read_file(root: str | os.PathLike[str] | Workspace | None = None) -> BaseTool:
    """Build a `read_file` tool confined to one workspace.

    Args:
        root: The workspace folder, or a `Workspace` to share with other tools. None: the `AGENTKIT_WORKSPACE`
            environment variable, else the current directory, looked up on each call.

    Returns:
        The tool, named `read_file`.

    Raises:
        ConfigError: When an explicit `root` does not exist.
    """
    workspace = root if isinstance(root, Workspace) else Workspace(root)

    @tool("read_file", parse_docstring=True)
    def read_file(path: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
        """Read a text file from the workspace and return its content.

        Args:
            path: Path of the file, relative to the workspace, e.g. "notes/todo.txt".
            max_chars: Return at most this many characters; longer files are truncated.
        """
        if max_chars < 1:
            raise ToolException(f"max_chars must be at least 1, got {max_chars}.")
        target = workspace.resolve(path)
        if target.is_dir():
            raise ToolException(f"{path!r} is a directory, not a file. Use list_dir to see what it contains.")
        if not target.exists():
            raise ToolException(f"The file {path!r} does not exist. Use list_dir to see which files exist.")
        # is_file() is False for FIFOs and devices, which could block forever or never end.
        if not target.is_file():
            raise ToolException(f"{path!r} is not a regular file.")
        try:
            with target.open("rb") as raw:
                if b"\x00" in raw.read(_SNIFF_BYTES):
                    raise ToolException(f"{path!r} looks like a binary file; only text files can be read.")
            # Universal newlines: the model sees "\n" whatever the file uses; utf-8-sig drops a leading BOM.
            with target.open(encoding="utf-8-sig", errors="replace") as handle:
                text = handle.read(max_chars)
                more = 0
                # Counted in chunks so a huge file costs time, not memory.
                while chunk := handle.read(_COUNT_CHUNK_CHARS):
                    more += len(chunk)
        except OSError as exc:
            raise ToolException(f"Cannot read {path!r}: {exc.strerror or exc}.") from None
        if not text:
            return "(empty file)"
        if more:
            return f"{text}\n\n(truncated, {more} more characters; pass a larger max_chars to read more)"
        return text

    return read_file


read_file = make_read_file()
