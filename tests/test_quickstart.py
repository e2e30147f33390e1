"""The quickstart runs the whole loop end to end (fast mode) and its report has every candidate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NIK = "3201011501900001"


@pytest.mark.slow
def test_the_fast_quickstart_runs_the_whole_loop(tmp_path: Path, home: Path) -> None:
    out = tmp_path / "tour"
    done = subprocess.run(
        [sys.executable, "-m", "fondasi", "quickstart", "--fast", "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    said = done.stdout
    for number in range(1, 8):
        assert f"{number}. " in said  # every step announced itself
    # The instruct model filled the ticket and called the tool with the order number.
    assert said.count("INV-20931") >= 2 and "lacak_pesanan" in said
    results = json.loads((out / "eval" / "results.json").read_text())
    names = {c["name"] for c in results["candidates"]}
    assert {
        "multilingual-e5-small · zero-shot",
        "multilingual-e5-small · few-shot k=6",
        "multilingual-e5-small · linear head",
        "all-minilm-l6-v2 · SetFit",
        "baseline · TF-IDF + LR",
    } <= names
    # The learning curve: each learner at 6 examples and at the whole train split.
    curve = results["curve"]
    assert curve["sizes"] == [6, 300]
    assert {s["name"] for s in curve["series"]} == names - {
        "baseline · majority class",
        "baseline · random label",
    }
    assert "learning curve: accuracy" in said
    report = (out / "eval" / "report.html").read_text()
    assert all(name.replace("·", "").split()[0] in report for name in names)
    assert "class='chart curve'" in report
    assert (out / "e5-linear-head" / "head.npz").is_file()
    assert (out / "eval" / "tuned" / "all-minilm-l6-v2-setfit" / "fondasi-tune.json").is_file()
    # The stand-in cloud API never saw the NIK; the user reads it back.
    sent = next(line for line in said.splitlines() if "cloud received:" in line)
    assert NIK not in sent and "[NIK_1]" in sent
    reads = next(line for line in said.splitlines() if "user reads:" in line)
    assert NIK in reads
    assert "fondasi serve --models" in said and "report:" in said
    assert "/v1/classify" in said


def test_quickstart_refuses_an_out_folder_it_cannot_write(tmp_path: Path, home: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    done = subprocess.run(
        [sys.executable, "-m", "fondasi", "quickstart", "--fast", "--out", str(blocked / "x")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "error:" in done.stderr
