"""Every notebook in notebooks/ runs top to bottom without an error, offline, and shows what it promises.

Each notebook runs in a fresh kernel whose working directory is a temporary folder, so file tools write nothing
into the repository. The kernel is offline like the test process: it gets the Hugging Face offline variables, and
a first cell, added here and not saved, blocks non-loopback connections inside it.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from agentkit.testing import OFFLINE_ENV

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))

# A string some output of the notebook must show; notebooks not listed only have to run cleanly.
EXPECTED_OUTPUT = {
    "01_quickstart.ipynb": "3 ACME shares are worth $37.50.",
    "02_custom_tools.ipynb": "is outside the workspace",
    "03_local_model.ipynb": "the calculator returned: 42",
    "03_memory.ipynb": "written by episode True",
    "04_reward_to_dpo.ipynb": "success after DPO: 1.0",
}

# The guard is kept in a variable: a context manager that is garbage-collected undoes itself.
OFFLINE_CELL = """
from agentkit.testing import block_network
_offline_guard = block_network()
_offline_guard.__enter__()
"""


def _output_text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                parts.append(output["text"])
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_notebooks_exist():
    assert {p.name for p in NOTEBOOKS} >= set(EXPECTED_OUTPUT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_saved_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert code_cells, "a notebook without code cells tests nothing"
    dirty = [i for i, c in enumerate(code_cells) if c.outputs or c.execution_count is not None]
    assert not dirty, f"{path.name}: clear the outputs before saving (code cells {dirty})"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path):
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(OFFLINE_CELL))
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    # Raises CellExecutionError, naming the cell and the traceback, when any cell fails.
    client.execute(env={**os.environ, **OFFLINE_ENV})

    expected = EXPECTED_OUTPUT.get(path.name)
    if expected is not None:
        assert expected in _output_text(nb)
    assert not list(tmp_path.iterdir()), "the notebook left files in its working directory"
