"""File tools: they work inside their workspace and refuse every way out of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from langchain_core.tools import BaseTool, ToolException

from agentkit.errors import ConfigError
from agentkit.tools import (
    Workspace,
    default_tools,
    file_tools,
    list_dir,
    make_list_dir,
    make_read_file,
    make_write_file,
    read_file,
    write_file,
)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    # A sibling of the workspace: reachable with `..` or a symlink, and never allowed.
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_text("top secret", encoding="utf-8")
    return folder


@pytest.fixture
def tools(workspace: Path) -> dict[str, BaseTool]:
    return {tool.name: tool for tool in file_tools(workspace)}


def run(tool: BaseTool, **args: object) -> str:
    result = tool.invoke(args)
    assert isinstance(result, str)
    return result


# --- working inside the workspace ---------------------------------------------------------------------------


def test_write_read_list_roundtrip(tools: dict[str, BaseTool], workspace: Path) -> None:
    assert run(tools["write_file"], path="notes/todo.txt", content="buy milk\n") == (
        "Wrote 9 characters to notes/todo.txt"
    )
    assert (workspace / "notes" / "todo.txt").read_text(encoding="utf-8") == "buy milk\n"
    assert run(tools["read_file"], path="notes/todo.txt") == "buy milk\n"
    assert run(tools["list_dir"]) == "notes/"
    assert run(tools["list_dir"], path="notes") == "todo.txt"


def test_append(tools: dict[str, BaseTool]) -> None:
    run(tools["write_file"], path="log.txt", content="one\n")
    assert run(tools["write_file"], path="log.txt", content="two\n", append=True) == (
        "Appended 4 characters to log.txt"
    )
    assert run(tools["read_file"], path="log.txt") == "one\ntwo\n"
    run(tools["write_file"], path="log.txt", content="fresh")
    assert run(tools["read_file"], path="log.txt") == "fresh"


def test_unicode_roundtrip_and_dotdot_that_stays_inside(tools: dict[str, BaseTool], workspace: Path) -> None:
    (workspace / "sub").mkdir()
    run(tools["write_file"], path="sub/../caf\N{LATIN SMALL LETTER E WITH ACUTE}.txt", content="\N{SNOWMAN} ok")
    assert run(tools["read_file"], path="./caf\N{LATIN SMALL LETTER E WITH ACUTE}.txt") == "\N{SNOWMAN} ok"


def test_read_truncates_with_a_note(tools: dict[str, BaseTool], workspace: Path) -> None:
    (workspace / "big.txt").write_text("x" * 50, encoding="utf-8")
    result = run(tools["read_file"], path="big.txt", max_chars=10)
    assert result.startswith("x" * 10 + "\n")
    assert "(truncated, 40 more characters" in result
    assert run(tools["read_file"], path="big.txt", max_chars=50) == "x" * 50


def test_read_replaces_invalid_utf8(tools: dict[str, BaseTool], workspace: Path) -> None:
    (workspace / "latin1.txt").write_bytes(b"caf\xe9")
    assert run(tools["read_file"], path="latin1.txt") == "caf\N{REPLACEMENT CHARACTER}"


def test_read_refuses_directories_binaries_and_missing_files(tools: dict[str, BaseTool], workspace: Path) -> None:
    (workspace / "folder").mkdir()
    (workspace / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(ToolException, match="is a directory"):
        run(tools["read_file"], path="folder")
    with pytest.raises(ToolException, match="binary"):
        run(tools["read_file"], path="image.png")
    with pytest.raises(ToolException, match="does not exist"):
        run(tools["read_file"], path="missing.txt")
    with pytest.raises(ToolException, match="max_chars"):
        run(tools["read_file"], path="image.png", max_chars=0)


def test_read_empty_file(tools: dict[str, BaseTool], workspace: Path) -> None:
    (workspace / "empty.txt").touch()
    assert run(tools["read_file"], path="empty.txt") == "(empty file)"


def test_write_refuses_a_directory(tools: dict[str, BaseTool], workspace: Path) -> None:
    (workspace / "folder").mkdir()
    with pytest.raises(ToolException, match="is a directory"):
        run(tools["write_file"], path="folder", content="x")


def test_list_dir_marks_folders_and_sorts(tools: dict[str, BaseTool], workspace: Path) -> None:
    (workspace / "b.txt").touch()
    (workspace / "a").mkdir()
    (workspace / "c.md").touch()
    assert run(tools["list_dir"], path=".").splitlines() == ["a/", "b.txt", "c.md"]


def test_list_dir_empty_missing_and_file(tools: dict[str, BaseTool], workspace: Path) -> None:
    assert run(tools["list_dir"]) == "(empty folder)"
    (workspace / "f.txt").touch()
    with pytest.raises(ToolException, match="does not exist"):
        run(tools["list_dir"], path="nope")
    with pytest.raises(ToolException, match="is a file"):
        run(tools["list_dir"], path="f.txt")


def test_list_dir_caps_entries(tools: dict[str, BaseTool], workspace: Path) -> None:
    for i in range(250):
        (workspace / f"f{i:03d}.txt").touch()
    lines = run(tools["list_dir"]).splitlines()
    assert len(lines) == 201
    assert lines[0] == "f000.txt"
    assert lines[199] == "f199.txt"
    assert "50 more entries" in lines[200]


def test_symlink_inside_the_workspace_is_followed(tools: dict[str, BaseTool], workspace: Path) -> None:
    (workspace / "real.txt").write_text("real", encoding="utf-8")
    os.symlink(workspace / "real.txt", workspace / "alias.txt")
    assert run(tools["read_file"], path="alias.txt") == "real"


# --- refusing every way out -----------------------------------------------------------------------------------

BAD_PATHS = [
    ("..", "outside the workspace"),
    ("../outside/secret.txt", "outside the workspace"),
    ("sub/../../outside/secret.txt", "outside the workspace"),
    ("/etc/passwd", "absolute"),
    ("~/x", "'~'"),
    ("~", "'~'"),
    ("notes\x00.txt", "NUL"),
    ("", "empty"),
    ("   ", "empty"),
]


@pytest.mark.parametrize("tool_name", ["read_file", "write_file", "list_dir"])
@pytest.mark.parametrize(("path", "reason"), BAD_PATHS)
def test_refuses_paths_leaving_the_workspace(
    tools: dict[str, BaseTool], outside: Path, tool_name: str, path: str, reason: str
) -> None:
    args: dict[str, object] = {"path": path}
    if tool_name == "write_file":
        args["content"] = "pwned"
    with pytest.raises(ToolException, match=reason):
        tools[tool_name].invoke(args)
    assert (outside / "secret.txt").read_text(encoding="utf-8") == "top secret"


def test_refuses_a_symlink_pointing_outside(tools: dict[str, BaseTool], workspace: Path, outside: Path) -> None:
    os.symlink(outside / "secret.txt", workspace / "link.txt")
    os.symlink(outside, workspace / "linked_dir")
    with pytest.raises(ToolException, match="outside the workspace"):
        run(tools["read_file"], path="link.txt")
    with pytest.raises(ToolException, match="outside the workspace"):
        run(tools["write_file"], path="link.txt", content="pwned")
    with pytest.raises(ToolException, match="outside the workspace"):
        run(tools["write_file"], path="linked_dir/new.txt", content="pwned")
    with pytest.raises(ToolException, match="outside the workspace"):
        run(tools["list_dir"], path="linked_dir")
    assert (outside / "secret.txt").read_text(encoding="utf-8") == "top secret"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_refuses_a_dangling_symlink_pointing_outside(
    tools: dict[str, BaseTool], workspace: Path, outside: Path
) -> None:
    # Writing through it would create a file outside; resolve() follows links to missing targets too.
    os.symlink(outside / "created.txt", workspace / "dangling.txt")
    with pytest.raises(ToolException, match="outside the workspace"):
        run(tools["write_file"], path="dangling.txt", content="pwned")
    assert not (outside / "created.txt").exists()


def test_workspace_resolve_directly(workspace: Path) -> None:
    ws = Workspace(workspace)
    assert ws.root == workspace.resolve()
    assert ws.resolve("a/b.txt") == workspace.resolve() / "a" / "b.txt"
    assert ws.resolve(".") == workspace.resolve()
    with pytest.raises(ToolException, match="outside"):
        ws.resolve("../x")


# --- where the workspace is ---------------------------------------------------------------------------------


def test_env_var_is_read_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        (folder / "where.txt").write_text(folder.name, encoding="utf-8")
    monkeypatch.setenv("AGENTKIT_WORKSPACE", str(first))
    assert read_file.invoke({"path": "where.txt"}) == "first"
    monkeypatch.setenv("AGENTKIT_WORKSPACE", str(second))
    assert read_file.invoke({"path": "where.txt"}) == "second"
    write_file.invoke({"path": "new.txt", "content": "hi"})
    assert (second / "new.txt").read_text(encoding="utf-8") == "hi"
    assert list_dir.invoke({}) == "new.txt\nwhere.txt"


def test_current_directory_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTKIT_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here.txt").write_text("here", encoding="utf-8")
    assert read_file.invoke({"path": "here.txt"}) == "here"
    tool_names = [tool.name for tool in default_tools()]
    assert tool_names == ["calculator", "current_time", "read_file", "write_file", "list_dir"]


def test_env_var_to_a_missing_folder_is_a_tool_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTKIT_WORKSPACE", str(tmp_path / "missing"))
    with pytest.raises(ToolException, match="AGENTKIT_WORKSPACE"):
        read_file.invoke({"path": "x.txt"})


def test_explicit_root_is_fixed_at_construction(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = make_read_file(workspace)
    (workspace / "a.txt").write_text("a", encoding="utf-8")
    monkeypatch.setenv("AGENTKIT_WORKSPACE", str(workspace.parent))
    assert tool.invoke({"path": "a.txt"}) == "a"


@pytest.mark.parametrize("factory", [make_read_file, make_write_file, make_list_dir, file_tools, Workspace])
def test_missing_explicit_root_is_a_config_error(tmp_path: Path, factory: object) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        factory(tmp_path / "missing")  # type: ignore[operator]


def test_explicit_root_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").touch()
    with pytest.raises(ConfigError, match="not a directory"):
        make_read_file(tmp_path / "file")
    assert issubclass(ConfigError, ValueError)


def test_file_tools_share_one_workspace(workspace: Path) -> None:
    tools = file_tools(Workspace(workspace))
    assert [tool.name for tool in tools] == ["read_file", "write_file", "list_dir"]
    tools[1].invoke({"path": "x.txt", "content": "shared"})
    assert tools[0].invoke({"path": "x.txt"}) == "shared"


def test_tool_exception_propagates_from_a_tool_call(tools: dict[str, BaseTool]) -> None:
    call = {"type": "tool_call", "name": "read_file", "id": "r1", "args": {"path": "/etc/passwd"}}
    with pytest.raises(ToolException, match="absolute"):
        tools["read_file"].invoke(call)


def test_schemas_describe_every_argument() -> None:
    for tool in (read_file, write_file, list_dir):
        assert tool.description
        for name, spec in tool.args.items():
            assert spec.get("description"), f"{tool.name}.{name} has no description"
