"""The examples run as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_train_sequence_example(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "train_sequence.py"), "--steps", "5",
                           "--device", "cpu", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 4 and all("reloaded outputs match: True" in line for line in lines), done.stdout
    # every backend trains the same function from the same weights
    assert len({line.split(";")[0].split("loss")[1] for line in lines}) == 1, done.stdout
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == [
        f"sequence_model_{b}.pt" for b in ("auto", "eager", "native", "script")]


def test_train_detection_example(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "train_detection.py"), "--steps", "5",
                           "--device", "cpu", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 4, done.stdout
    assert all("scripted matches: True; exported matches: True" in line for line in lines), done.stdout
    # every backend trains the same function from the same weights
    assert len({line.split(";")[0].split("loss")[1] for line in lines}) == 1, done.stdout
    assert sorted(p.name for p in tmp_path.glob("*.pt*")) == sorted(
        f"detection_head_{b}.{ext}" for b in ("auto", "eager", "native", "script") for ext in ("pt", "pt2"))
