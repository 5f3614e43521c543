"""docs/tutorial.ipynb runs from top to bottom (small sizes), so the tutorial cannot rot.

The notebook is read and validated with nbformat and its code cells are executed in order in
one namespace, in this process (the kernels are compiled already), in a temporary folder.
No Jupyter kernel is needed: the cells use no IPython magics, which this test enforces."""
from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"


def test_tutorial_notebook_runs(tmp_path, monkeypatch):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    out = tmp_path / "out"
    monkeypatch.setenv("MCSIM_TUTORIAL_SMALL", "1")
    monkeypatch.setenv("MCSIM_TUTORIAL_OUT", str(out))
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    cells = [c for c in nb.cells if c.cell_type == "code"]
    assert len(cells) >= 8
    for i, cell in enumerate(cells):
        lines = cell.source.splitlines()
        assert not any(line.lstrip().startswith(("%", "!")) for line in lines), \
            f"cell {i} uses IPython syntax; the tutorial must run as plain Python"
        exec(compile(cell.source, f"docs/tutorial.ipynb, code cell {i}", "exec"), namespace)
    # what the tutorial promises happened
    for stem in ("layers-tanh-16", "width-sweep-layer6", "kurtosis-depth"):
        for ext in ("png", "pdf"):
            assert (out / "figures" / f"{stem}.{ext}").stat().st_size > 0
    stopped = namespace["stopped"]
    assert stopped.attrs["target_reached"] and stopped.networks < namespace["cap"]
    assert stopped.attrs["target_achieved"] <= 0.01
    ds = namespace["by_width"]
    assert list(ds["n"].values) == namespace["WIDTHS"]
    assert {"vertex", "vertex_stderr", "metric"} <= set(ds.data_vars)
