"""The results tables are generated from the run folders and match them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_index_and_results_match_the_run_folders():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "results.py"), "--check"], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"stale": []' in done.stdout


def test_committed_json_holds_no_absolute_paths_of_a_machine():
    bad = [str(p.relative_to(ROOT)) for pattern in ("*.json", "*.jsonl") for p in (ROOT / "benchmarks" / "runs").rglob(pattern)
           if any(prefix in p.read_text(encoding="utf-8") for prefix in ('"/work/', '"/tmp/', '"/home/', '"/root/'))]
    assert bad == []
