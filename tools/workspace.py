"""The folder the file tools may touch, and the checks that keep them inside it.

Every path a model gives is relative to the workspace root. Anything that could reach outside it (absolute
paths, `~`, `..` that climbs out, a symlink pointing elsewhere) is refused with a message the model can act on.
"""

from __future__ import annotations

import os
from pathlib import Path, PureWindowsPath

from langchain_core.tools import ToolException

from agentkit.errors import ConfigError

__all__ = ["WORKSPACE_ENV_VAR", "Workspace"]

WORKSPACE_ENV_VAR = "AGENTKIT_WORKSPACE"


class Workspace:
    """A root folder that file tools are confined to.

    With an explicit `root`, the folder is checked and fixed when the workspace is created. Without one, the root
    is looked up on every call: the `AGENTKIT_WORKSPACE` environment variable when set, else the current working
    directory, so a module-level tool follows `os.chdir` and environment changes made after import.

    Args:
        root: The workspace folder. Relative paths are taken from the current directory at construction.

    Raises:
        ConfigError: When an explicit `root` does not exist or is not a directory.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self._root: Path | None = None
        if root is not None:
            path = Path(root).expanduser()
            if not path.is_dir():
                problem = "is not a directory" if path.exists() else "does not exist"
                raise ConfigError(
                    f"Workspace root {str(path)!r} {problem}. Create the folder first (e.g. "
                    f"Path(...).mkdir(parents=True)) or pass an existing directory as root=..."
                )
            self._root = path.resolve()

    @property
    def root(self) -> Path:
        """The resolved root folder, looked up now when it was not given explicitly.

        Raises:
            ToolException: When the root derived from the environment or working directory is not a folder.
        """
        if self._root is not None:
            if not self._root.is_dir():  # removed after construction
                raise ToolException(f"The workspace folder {str(self._root)!r} no longer exists.")
            return self._root
        env = os.environ.get(WORKSPACE_ENV_VAR, "").strip()
        source = f"the {WORKSPACE_ENV_VAR} environment variable" if env else "the current directory"
        try:
            path = Path(env).expanduser().resolve() if env else Path.cwd().resolve()
        except (OSError, RuntimeError):  # cwd deleted, symlink loop
            raise ToolException(f"The workspace folder (from {source}) cannot be found.") from None
        if not path.is_dir():
            raise ToolException(
                f"The workspace folder {str(path)!r} (from {source}) does not exist or is not a folder. "
                "Ask the user to create it or to set a valid workspace."
            )
        return path

    def resolve(self, path: str) -> Path:
        """Turn a path given by the model into an absolute path inside the workspace.

        Symlinks are followed, so the returned path is where a read or write would really land.

        Args:
            path: A path relative to the workspace root, e.g. `notes/todo.txt`.

        Returns:
            The resolved absolute path, guaranteed to be the root or inside it.

        Raises:
            ToolException: When the path is empty, absolute, starts with `~`, contains a NUL byte, or resolves
                outside the workspace.
        """
        if not isinstance(path, str) or not path.strip():
            raise ToolException("The path is empty. Give a path relative to the workspace, e.g. 'notes.txt'.")
        if "\x00" in path:
            raise ToolException(f"The path {path!r} contains a NUL byte, which no file name can contain.")
        if path.startswith("~"):
            raise ToolException(
                f"The path {path!r} starts with '~'; home folders are not reachable. "
                "Give a path relative to the workspace, e.g. 'notes.txt'."
            )
        # PureWindowsPath also catches `C:\...` and `\\server\share` whatever OS we run on.
        if os.path.isabs(path) or path.startswith(("/", "\\")) or PureWindowsPath(path).drive:
            raise ToolException(
                f"The path {path!r} is absolute. Give a path relative to the workspace, e.g. 'notes.txt'."
            )
        root = self.root
        try:
            # strict=False: the target may not exist yet (write_file), but every existing part, symlinks
            # included, is resolved, so a link pointing outside is caught below.
            target = (root / path).resolve()
        except (OSError, RuntimeError):  # symlink loop (RuntimeError before Python 3.13)
            raise ToolException(f"The path {path!r} cannot be resolved (a symlink loop?).") from None
        if target != root and not target.is_relative_to(root):
            raise ToolException(
                f"The path {path!r} is outside the workspace. Only files inside the workspace can be used; "
                "use list_dir('.') to see them."
            )
        return target

    def relative(self, path: Path) -> str:
        """Show a resolved path relative to the root, with `/` separators (`.` for the root itself).

        Args:
            path: A path returned by `resolve`.

        Returns:
            The path as the model should write it.
        """
        return path.relative_to(self.root).as_posix() or "."

    def __repr__(self) -> str:
        where = str(self._root) if self._root is not None else f"${WORKSPACE_ENV_VAR} or cwd"
        return f"Workspace({where})"
