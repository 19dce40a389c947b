"""docs/python-api.md's ```python blocks run as written, in order, on the bundled demo data (216 Alpaca-style
records copied to the file name the examples use) in a scratch folder."""

from __future__ import annotations

import re
import shutil

import pytest

from datapaths import REPO

DOC = REPO / "docs" / "python-api.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_python_api_examples_run_as_written(tmp_path, monkeypatch, capsys):
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 2, "docs/python-api.md lost its examples"
    shutil.copy(REPO / "examples" / "demo_alpaca.json", tmp_path / "alpaca_data.json")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CAR_SELECT_CACHE", str(tmp_path / "cache"))
    namespace: dict = {}
    for number, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"{DOC.name} block {number}", "exec"), namespace)
        except Exception as e:  # noqa: BLE001 (the test names the block that failed)
            pytest.fail(f"{DOC.name} block {number} fails as written: {type(e).__name__}: {e}\n{block}")
    # what the blocks say they did, checked on what they left behind
    written = {p.name for p in tmp_path.iterdir()}
    assert {"subset.json", "selected.json", "annotated.jsonl", "report.html"} <= written
    assert len(namespace["sel"].indices) == 100 and len(namespace["scores"]) == len(namespace["ds"].records)
    assert "'selected'" in capsys.readouterr().out  # sel.summary() and the first annotated row were printed
