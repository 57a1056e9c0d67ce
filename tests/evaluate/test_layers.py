"""The package's layers: training's validation imports `nmtkit.evaluate.scores` alone, and that
must not load torch, matplotlib or the rest of the package."""

from __future__ import annotations

import json
import subprocess
import sys


def test_scores_imports_nothing_heavy() -> None:
    code = (
        "import json, sys; import nmtkit.evaluate.scores; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'matplotlib', 'sacrebleu') or m.startswith('nmtkit.evaluate.'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == ["nmtkit.evaluate.scores"]
