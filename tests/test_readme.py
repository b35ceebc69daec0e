"""The README's Python examples run as written (every ```python block without a `...` placeholder)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
RUNNABLE = [block for block in BLOCKS if "..." not in block]


def test_the_readme_has_runnable_examples():
    assert len(RUNNABLE) >= 3


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"block{i}" for i in range(len(RUNNABLE))])
def test_a_readme_example_runs(block, monkeypatch):
    import torch
    monkeypatch.chdir(ROOT)  # recipes/... paths are the repository's
    torch.manual_seed(0)
    exec(compile(block, "README.md", "exec"), {})
