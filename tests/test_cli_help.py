"""``python -m playground --help`` and every subcommand's ``--help``."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from playground.cli import main

ROOT = Path(__file__).resolve().parents[1]
WANT = {
    "train": ["--page", "--url", "--settings", "--data", "--epochs", "--out", "--device", "--seed", "--mlflow"],
    "predict": ["bundle", "sequences", "--out", "--long"],
    "embed": ["--model", "--checkpoint", "--out", "--device", "--dtype", "--layer", "--pooling", "--token-budget",
              "resum"],
}
if (ROOT / "playground" / "cli" / "sweep.py").is_file():     # the sweep subcommand, once it is there
    WANT["sweep"] = ["sweep"]


def test_python_m_playground_help_lists_every_subcommand():
    """The real entry point, in a fresh interpreter (one process: each start imports torch, see README)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "playground", "--help"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.startswith("usage: python -m playground")
    for name in ("train", "predict", "embed", "sweep"):
        assert name in p.stdout
    assert "unavailable" not in p.stdout, p.stdout


@pytest.mark.parametrize("name", list(WANT))
def test_every_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m playground {name}")
    missing = [w for w in WANT[name] if w.lower() not in out.lower()]
    assert not missing, missing
