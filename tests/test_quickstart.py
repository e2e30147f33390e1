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
    for number in range(1, 7):
        assert f"{number}. " in said  # every step announced itself
    results = json.loads((out / "eval" / "results.json").read_text())
    names = {c["name"] for c in results["candidates"]}
    assert {"minilm lora", "minilm full", "baseline · TF-IDF + LR"} <= names
    assert {"multilingual-e5-small · zero-shot", "all-minilm-l6-v2 · few-shot k=6"} <= names
    # SmolLM2 both ways: by each label's log-probability and by generating an answer
    assert {
        "smollm2-135m-instruct · zero-shot · sentiment-id",
        "smollm2-135m-instruct · zero-shot by generation · sentiment-id",
    } <= names
    assert "by generation →" in said and "by log-probability →" in said
    report = (out / "eval" / "report.html").read_text()
    assert all(name.replace("·", "").split()[0] in report for name in names)
    assert (out / "minilm-lora" / "adapter_model.safetensors").is_file()
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
