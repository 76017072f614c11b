"""The benchmark command still runs: `python -m bench --quick` exits 0 and writes every section.

Benchmarks are not tests: no figure is checked here, only that the command works end to end.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ["## Machine", "## Summary", "## 1. Engine overhead", "## 2. Concurrency", "## 3. Read path",
            "## 4. Sandbox", "## 5. Memory", "## 6. Per-turn CPU profile", "## 9. Router (simulation)"]


@pytest.mark.e2e
def test_quick_bench_writes_every_section(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--output", str(output),
                           "--out-dir", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    text = output.read_text()
    for heading in SECTIONS:
        assert heading in text, f"missing {heading!r}:\n{text[:3000]}"
    assert "python -m bench --quick" in text
    assert "**Failed**" not in text
