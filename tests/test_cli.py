"""The command line itself: help, version, `python -m nmtkit`, and a quick start-up."""

from __future__ import annotations

import subprocess
import sys
import time

from nmtkit import __version__
from tests.conftest import one_line, run_cli


def test_help_lists_commands_with_examples() -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    assert "prepare" in result.stdout
    prepare_help = one_line(run_cli("prepare", "--help").stdout)
    assert "nmtkit prepare demo" in prepare_help
    assert "--set" in prepare_help and "--force" in prepare_help


def test_version() -> None:
    result = run_cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"nmtkit {__version__}"


def test_python_dash_m_and_quick_start_without_heavy_imports() -> None:
    code = (
        "import sys, runpy; sys.argv = ['nmtkit', '--help']\n"
        "try:\n    runpy.run_module('nmtkit', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'datasets', 'sentencepiece', 'pydantic', 'numpy') "
        "if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - started
    assert "prepare" in out.stdout
    assert "HEAVY []" in out.stdout
    assert elapsed < 3.0  # well under a second on an idle machine; slack for a loaded CI box


def test_missing_recipe_argument_is_a_usage_error() -> None:
    result = run_cli("prepare")
    assert result.exit_code == 2
