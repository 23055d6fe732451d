"""The wheel ships one top-level package, `agentkit`, with tools, memory and prompts inside it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Build from a copy so the checkout gets no build/ or egg-info litter; no isolation, so no download.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("agentkit", "tools", "memory"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("agentkit-*.whl")
    return built


def test_wheel_has_only_the_agentkit_package(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"agentkit"}
    for expected in (
        "agentkit/py.typed",
        "agentkit/tools/calculator.py",
        "agentkit/tools/__init__.py",
        "agentkit/memory/__init__.py",
        "agentkit/prompts/react_system.jinja",
    ):
        assert expected in names
    assert not any(name.startswith(("tests/", "tools/", "memory/", "notebooks/")) for name in names)


def test_installed_wheel_runs_outside_the_checkout(wheel: Path, tmp_path: Path):
    env_dir = tmp_path / "venv"
    # System site-packages provide the dependencies; the wheel itself is installed without them.
    venv.create(env_dir, with_pip=True, system_site_packages=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    script = (
        "import agentkit, agentkit.tools, agentkit.memory\n"
        "from agentkit.prompting import render\n"
        "assert 'site-packages' in agentkit.__file__, agentkit.__file__\n"
        "assert 'Final Answer' in render('react_system.jinja', instructions='', tools=[], tool_names='',"
        " max_steps=3, memories=[])\n"
        "print(agentkit.tools.calculator.invoke({'expression': '2**10'}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([python, "-c", script], check=False, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1024"
    cli = subprocess.run(
        [env_dir / "bin" / "agentkit", "demo"], check=False, cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert cli.returncode == 0, cli.stderr
    assert "Answer: 12 pens and a notebook cost 49.25." in cli.stdout
