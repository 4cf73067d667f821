"""A notebook read without a kernel (an HTML export, the documentation site) shows each session's
final state, never a blank widget that needs JavaScript from the internet."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

pytestmark = pytest.mark.notebook

CELLS = [
    "import json\nfrom pathlib import Path\nimport blarify_lab as bl\n"
    "db = bl.connect(temporary=True)\n"
    "bl.load_python_package(db, Path(json.__file__).parent)\n"
    "processor = bl.RecursiveDFSProcessor(db, bl.ExtractiveSummarizer(), max_workers=2)",
    'text = processor.process_node("/json", scope="subtree")',
    'handle = processor.start("/json", scope="subtree", progress=False, force=True)\n'
    "dashboard = handle.dashboard()\ndashboard",
    "handle.result(60)\nprint(handle.session.status)",
    "db.close()",
]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_stored_outputs_of_progress_and_dashboard_render_without_a_kernel(tmp_path: Path) -> None:
    pytest.importorskip("ipywidgets")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    outputs = [out for cell in nb.cells for out in cell.get("outputs", [])]
    sessions = [
        out for out in outputs if "blarify-session" in str(out.get("data", {}).get("text/html", ""))
    ]
    assert len(sessions) == 2, "the progress bar and the dashboard each store the session's end"
    assert all(WIDGET_VIEW not in out["data"] for out in sessions), (
        "a finished session's stored output needs no widget JavaScript"
    )
    assert "completed" in json.dumps(sessions[0]["data"]["text/html"])

    body, _ = HTMLExporter().from_notebook_node(nb)
    assert body.count("blarify-session") >= 2, "the export shows both final states"
