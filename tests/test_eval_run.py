"""fondasi eval end to end: real bundled models, the OpenAI fake for hosted candidates, a
local Ray instance, the CLI, and the report opened in headless Chromium.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from fondasi.evaluate import evaluate, parse_config, read
from fondasi.providers import ProviderConfig
from fondasi.settings import Settings

from .browser import Browser
from .conftest import Cli
from .fakes.openai_server import KEY, FakeState, running

TOPICS = {
    "pengiriman": "pengiriman paket, kurir, resi, ongkos kirim, alamat",
    "pembayaran": "pembayaran, transfer, refund, cicilan, tagihan, saldo",
    "akun": "akun, login, kata sandi, OTP, verifikasi, nomor telepon",
    "produk": "produk, ukuran, warna, garansi, barang rusak, stok",
}


def config_text(cache: Path, *candidates: dict[str, Any], **extra: Any) -> str:
    body = {
        "name": "Topik pesan pelanggan",
        "task": "classification",
        "data": {"path": "bundled:eval-topic-id"},
        "labels": TOPICS,
        "candidates": list(candidates),
        "cache": str(cache),
        "bootstrap": 200,
        **extra,
    }
    return yaml.safe_dump(body, allow_unicode=True, sort_keys=False)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Settings:
    """Local models priced at a laptop's $0.36 an hour, so costs are not all zero."""
    home = tmp_path_factory.mktemp("eval-home")
    return Settings.load(home=home, cache=model_cache, hardware_usd_per_hour=0.36)


@pytest.fixture(scope="module")
def two_models(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """e5 zero-shot and few-shot, MiniLM few-shot, and a model that cannot load."""
    folder = tmp_path_factory.mktemp("run")
    text = config_text(
        folder / "cache.sqlite",
        {"model": "multilingual-e5-small"},
        {"model": "multilingual-e5-small", "shots": 8},
        {"model": "all-minilm-l6-v2", "shots": 8},
        {"model": "no-such-model-anywhere"},
    )
    return evaluate(parse_config(text), settings, out=folder / "out")


def test_a_run_writes_results_examples_and_a_report(two_models: tuple[Any, Path]) -> None:
    results, folder = two_models
    assert sorted(p.name for p in folder.iterdir()) == [
        "examples.jsonl",
        "report.html",
        "results.json",
    ]
    again = read(folder)
    assert again.schema_version == 1 and again.task == "classification"
    assert again.headline == "accuracy" and again.data["train"]["source"] == "split"
    rows = [json.loads(line) for line in (folder / "examples.jsonl").read_text().splitlines()]
    assert len(rows) == 7 * 44  # 4 candidates + 3 baselines, 44 test rows
    assert {"input", "reference", "output", "score", "seconds", "cost_usd"} <= set(rows[0])
    by_name = {c.name: c for c in results.candidates}
    e5 = by_name["multilingual-e5-small · zero-shot"]
    assert e5.metrics["accuracy"] > 0.5  # four topics: chance is 0.25
    assert e5.ci is not None and e5.ci.low <= e5.metrics["accuracy"] <= e5.ci.high
    assert e5.latency.p50 and e5.latency.p95 and e5.latency.p95 >= e5.latency.p50
    assert e5.throughput and e5.cost_usd and e5.cost_usd > 0
    assert e5.details["confusion"]["rows"] == sorted(TOPICS)
    assert {
        "baseline · TF-IDF + LR",
        "baseline · majority class",
        "baseline · random label",
    } <= set(by_name)
    assert results.significance is not None and 0 < results.significance.p_value <= 1


def test_a_candidate_that_fails_everywhere_is_reported_and_the_run_goes_on(
    two_models: tuple[Any, Path],
) -> None:
    results, _ = two_models
    broken = results.candidates[-1]
    assert broken.name == "no-such-model-anywhere · zero-shot"
    assert broken.failures == broken.examples == 44
    assert "unknown model id" in broken.errors[0]
    assert broken.notes[0].startswith("failed on every example")
    assert any("failed on every example" in sentence for sentence in results.verdict)
    assert sum(c.failures for c in results.candidates) == 44


def test_the_verdict_says_in_words_how_models_compare_with_baselines(
    two_models: tuple[Any, Path],
) -> None:
    results, _ = two_models
    best_model = max(
        (c for c in results.candidates if c.kind == "model" and c.failures == 0),
        key=lambda c: c.metrics["accuracy"],
    )
    best_base = max(
        (c for c in results.candidates if c.kind == "baseline"), key=lambda c: c.metrics["accuracy"]
    )
    said = " ".join(results.verdict)
    if best_base.metrics["accuracy"] > best_model.metrics["accuracy"]:
        assert f"A baseline wins: {best_base.name}" in said
    else:
        assert f"beats the strongest baseline ({best_base.name}" in said


def test_the_report_opens_in_chromium_with_charts_and_no_console_errors(
    two_models: tuple[Any, Path], tmp_path: Path
) -> None:
    from PIL import Image

    _, folder = two_models
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html and "<script" not in html
    with Browser() as browser:
        page = browser.open(folder / "report.html", screenshot=tmp_path / "report.png")
        assert page.console_errors == []
        assert page.title == "Topik pesan pelanggan · fondasi eval"
        assert page.count("svg.chart") == 3  # bars, quality vs latency, quality vs cost
        width, height = page.size("svg.chart")
        assert width > 300 and height > 100
        assert page.count("svg.chart circle") >= 6 and page.count("svg.chart rect") >= 6
        text = page.text()
        for heading in ("Leaderboard", "Confusion matrices", "Hardest examples", "Exact config"):
            assert heading in text
    shot = Image.open(tmp_path / "report.png").convert("RGB")
    assert shot.width == 1280 and shot.height > 1500
    colours = shot.getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 100  # drawn charts, not a blank page


def test_a_rerun_computes_nothing_and_repeats_every_number(
    two_models: tuple[Any, Path], settings: Settings, tmp_path: Path
) -> None:
    first, _ = two_models
    text = yaml.safe_dump(first.config, sort_keys=False)  # label order is part of a prompt
    again, _ = evaluate(parse_config(text), settings, tmp_path / "again")
    for old, new in zip(first.candidates, again.candidates, strict=True):
        assert (old.name, old.metrics, old.ci) == (new.name, new.metrics, new.ci)
        if old.kind == "model" and not old.failures:
            assert new.computed == 0 and new.cached == 44
    assert first.significance == again.significance


def test_labels_the_model_never_outputs_are_named(settings: Settings, tmp_path: Path) -> None:
    text = config_text(
        tmp_path / "cache.sqlite",
        {"model": "multilingual-e5-small"},
        labels=["pengiriman", "pembayaran"],
        baselines=False,
        data={"path": "bundled:eval-topic-id", "limit": 16},
    )
    results, _ = evaluate(parse_config(text), settings, out=tmp_path / "out")
    (only,) = results.candidates
    assert only.details["never_predicted"] == ["akun", "produk"]
    assert "never predicted: akun, produk" in only.notes
    assert only.metrics["accuracy"] < 1.0


@pytest.mark.slow
def test_a_tuned_folder_is_a_candidate_beside_its_base(settings: Settings, tmp_path: Path) -> None:
    from fondasi.data import bundled, read_jsonl
    from fondasi.tune.local import tune
    from fondasi.tune.options import TuneOptions

    rows = [r for r in read_jsonl(bundled("sentiment3-en-train")) if r["label"] != "neutral"]
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(row) for row in rows[:48]), encoding="utf-8")
    options = TuneOptions(
        base="all-minilm-l6-v2",
        data=train,
        out=tmp_path / "minilm-lora",
        method="lora",
        max_steps=4,
        batch_size=8,
        max_length=48,
    )
    tune(options, settings, progress=False)
    dev = [r for r in read_jsonl(bundled("sentiment3-en-dev")) if r["label"] != "neutral"]
    test = tmp_path / "dev.jsonl"
    test.write_text("\n".join(json.dumps(row) for row in dev[:12]), encoding="utf-8")
    config = tmp_path / "eval.yaml"
    config.write_text(
        "task: classification\ndata: {path: dev.jsonl}\ntrain: {path: train.jsonl}\n"
        "candidates:\n  - model: tuned:minilm-lora\n  - model: all-minilm-l6-v2\n"
        f"cache: {tmp_path / 'cache.sqlite'}\nbootstrap: 100\n",
        encoding="utf-8",
    )
    from fondasi.evaluate import load_config

    results, _ = evaluate(load_config(config), settings, tmp_path / "out")
    tuned = next(c for c in results.candidates if c.name == "tuned:minilm-lora · tuned")
    assert tuned.approach == "tuned" and tuned.failures == 0 and tuned.examples == 12
    assert tuned.model == f"tuned:{tmp_path / 'minilm-lora'}"
    assert set(tuned.details["confusion"]["columns"]) <= {"negative", "positive"}


# -- resume after a kill ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_killed_run_resumes_without_recomputing(tmp_path: Path, cli: Cli) -> None:
    cache = tmp_path / "cache.sqlite"
    config = tmp_path / "eval.yaml"
    config.write_text(
        config_text(
            cache,
            {"model": "multilingual-e5-small"},
            {"model": "all-minilm-l6-v2", "shots": 4},
            batch_size=1,
            baselines=False,
        ),
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "fondasi", "eval", str(config), "--out", str(tmp_path / "a")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    done = 0
    while time.monotonic() < deadline and process.poll() is None:
        if cache.exists():
            with sqlite3.connect(cache) as db:
                try:
                    done = db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
                except sqlite3.OperationalError:  # the table is being created
                    done = 0
            if done >= 3:
                break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    with sqlite3.connect(cache) as db:
        kept = db.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
    assert 3 <= kept < 88
    resumed = cli("eval", str(config), "--out", str(tmp_path / "b"))
    assert resumed.returncode == 0, resumed.stderr
    results = read(tmp_path / "b")
    assert sum(c.cached for c in results.candidates) == kept
    assert sum(c.computed for c in results.candidates) == 88 - kept
    final = cli("eval", str(config), "--out", str(tmp_path / "c"))
    assert final.returncode == 0, final.stderr
    assert [c.computed for c in read(tmp_path / "c").candidates] == [0, 0]


# -- hosted candidates (the OpenAI fake), a language model by log-probability, a judge -------


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[str, FakeState]]:
    state = FakeState()
    with running(state) as url:
        yield url, state


def hosted(url: str, home: Path, cache: Path) -> Settings:
    provider = ProviderConfig(adapter="openai", base_url=url, api_key=SecretStr(KEY), timeout_s=5)
    return Settings.load(home=home, cache=cache, providers={"fake": provider}, retries=0)


@pytest.mark.slow
def test_local_and_hosted_candidates_side_by_side(
    fake: tuple[str, FakeState], tmp_path: Path, model_cache: Path
) -> None:
    url, state = fake
    text = config_text(
        tmp_path / "cache.sqlite",
        {"model": "smollm2-135m-instruct", "shots": 2, "select": "balanced"},
        {"model": "smollm2-135m-instruct", "by": "generation"},
        {"model": "fake:echo", "shots": 1},
        {"model": "fake:always-500"},
        data={"path": "bundled:eval-topic-en", "limit": 12},
        labels=["shipping", "payment", "account", "product"],
        concurrency=3,
        requests_per_minute=6000,
        split=0.34,
    )
    results, folder = evaluate(
        parse_config(text), hosted(url, tmp_path, model_cache), tmp_path / "o"
    )
    by_name = {c.name: c for c in results.candidates}
    smol = by_name["smollm2-135m-instruct · few-shot k=2 balanced"]
    assert smol.failures == 0 and smol.examples == 8
    assert set(smol.details["confusion"]["columns"]) <= {
        "shipping",
        "payment",
        "account",
        "product",
    }
    # The same local model answering in words: its tokens are counted, its answers read.
    said = by_name["smollm2-135m-instruct · zero-shot by generation"]
    assert said.failures == 0 and said.examples == 8 and said.tokens and said.tokens > 8 * 20
    assert not smol.tokens  # log-probabilities generate nothing
    assert set(said.details["confusion"]["columns"]) - {"(no answer)"} <= {
        "shipping", "payment", "account", "product"
    }  # fmt: skip
    echo = by_name["fake:echo · few-shot k=1"]
    assert echo.failures == 0 and echo.tokens and echo.tokens > 8 * 11
    assert state.calls["echo"] == 8
    failing = by_name["fake:always-500 · zero-shot"]
    assert failing.failures == 8 and "500" in failing.errors[0]
    assert read(folder).candidates[-1].name == failing.name


def test_the_judge_metric_without_a_judge_asks_the_chat_model(
    fake: tuple[str, FakeState], tmp_path: Path, model_cache: Path
) -> None:
    url, state = fake
    settings = hosted(url, tmp_path, model_cache).model_copy(update={"chat_model": "fake:echo"})
    config = parse_config(
        yaml.safe_dump(
            {
                "task": "generation",
                "data": {"path": "bundled:eval-rewrite-id", "limit": 3},
                "metrics": ["chrf", "judge"],
                "candidates": [{"model": "fake:echo", "max_tokens": 16}],
                "cache": str(tmp_path / "cache.sqlite"),
            }
        )
    )
    results, _ = evaluate(config, settings, tmp_path / "judged")
    assert (results.judge_prompt or "").startswith("judge model: fake:echo\n")
    # Three answers by the candidate, three grades by the judge (the baseline's too).
    assert state.calls["echo"] >= 6


def test_generation_extraction_and_a_judge_on_hosted_models(
    fake: tuple[str, FakeState], tmp_path: Path, model_cache: Path
) -> None:
    url, _ = fake
    settings = hosted(url, tmp_path, model_cache)
    judge = tmp_path / "judge.yaml"
    # The echo fake repeats the prompt: a prompt that is just "4" makes it grade 4.
    judge.write_text(
        "name: four\ndescription: always four\nvariables: [input, reference, output]\n"
        "input: '4'\noutput: {format: label, labels: ['1', '2', '3', '4', '5']}\n",
        encoding="utf-8",
    )
    generation = parse_config(
        yaml.safe_dump(
            {
                "task": "generation",
                "data": {"path": "bundled:eval-rewrite-id", "limit": 5},
                "metrics": ["chrf", "judge", "bleu"],
                "judge": {"model": "fake:echo", "template": str(judge)},
                "candidates": [{"model": "fake:echo", "max_tokens": 64}],
                "cache": str(tmp_path / "cache.sqlite"),
            }
        )
    )
    results, folder = evaluate(generation, settings, tmp_path / "gen")
    names = [c.name for c in results.candidates]
    assert names[-1] == "baseline · copy the input" or names[0] == "baseline · copy the input"
    echo = next(c for c in results.candidates if c.kind == "model")
    assert echo.metrics["judge"] == pytest.approx(0.75)
    assert 0 < echo.metrics["chrf"] < 100
    assert "always four" in (results.judge_prompt or "")
    assert "Judge prompt" in (folder / "report.html").read_text(encoding="utf-8")
    extraction = parse_config(
        yaml.safe_dump(
            {
                "task": "extraction",
                "data": {"path": "bundled:eval-extract-en", "limit": 3},
                "candidates": [{"model": "fake:json-repair"}],
                "cache": str(tmp_path / "cache.sqlite"),
            }
        )
    )
    results, _ = evaluate(extraction, settings, tmp_path / "ext")
    (only,) = results.candidates
    assert only.metrics["json_valid"] == 1.0 and only.metrics["field_f1"] == 0.0


def test_retrieval_against_bm25_and_images_top_k(settings: Settings, tmp_path: Path) -> None:
    retrieval = parse_config(
        yaml.safe_dump(
            {
                "task": "retrieval",
                "data": {
                    "path": "bundled:eval-retrieval-en-queries",
                    "corpus": {"path": "bundled:eval-retrieval-en-corpus"},
                },
                "metrics": ["ndcg@10", "recall@1", "mrr"],
                "candidates": [{"model": "all-minilm-l6-v2"}],
                "cache": str(tmp_path / "cache.sqlite"),
            }
        )
    )
    results, _ = evaluate(retrieval, settings, tmp_path / "ret")
    by_name = {c.name: c for c in results.candidates}
    assert by_name["all-minilm-l6-v2 · zero-shot"].metrics["mrr"] > 0.6
    assert by_name["baseline · BM25"].metrics["ndcg@10"] > 0.3
    images = parse_config(
        yaml.safe_dump(
            {
                "task": "image-classification",
                "data": {"path": "bundled:eval-image"},
                "candidates": [{"model": "efficientnet-lite0"}],
                "cache": str(tmp_path / "cache.sqlite"),
            }
        )
    )
    results, _ = evaluate(images, settings, tmp_path / "img")
    (net,) = results.candidates
    assert net.metrics["top1"] >= 0.5 and net.metrics["top5"] >= net.metrics["top1"]


# -- Ray -------------------------------------------------------------------------------------


def test_ray_executor_matches_the_local_run_and_shares_its_cache(
    settings: Settings, tmp_path: Path
) -> None:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        text = config_text(
            tmp_path / "ray-cache.sqlite",
            {"model": "multilingual-e5-small"},
            {"model": "all-minilm-l6-v2", "shots": 4},
            {"model": "no-such-model-anywhere"},
            data={"path": "bundled:eval-topic-id", "limit": 24},
            executor="ray",
            batch_size=5,
            baselines=False,
        )
        on_ray, _ = evaluate(parse_config(text), settings, tmp_path / "ray")
    finally:
        ray.shutdown()
    assert [c.computed for c in on_ray.candidates] == [16, 16, 0]
    assert on_ray.candidates[-1].failures == 16
    local_text = text.replace("executor: ray", "executor: local")
    local, _ = evaluate(parse_config(local_text), settings, tmp_path / "local")
    for a, b in zip(on_ray.candidates, local.candidates, strict=True):
        assert a.metrics == b.metrics
    assert [c.cached for c in local.candidates] == [16, 16, 0]


# -- the command line ------------------------------------------------------------------------


def test_cli_flag_form_on_a_users_csv_and_compare(cli: Cli, tmp_path: Path) -> None:
    from fondasi.data import bundled

    rows = [json.loads(line) for line in bundled("eval-topic-en").read_text().splitlines()]
    csv_path = tmp_path / "reviews.csv"
    with csv_path.open("w", encoding="utf-8") as handle:
        handle.write("message,topic\n")
        for row in rows:
            handle.write(f'"{row["text"]}",{row["label"]}\n')
    args = [
        "eval",
        "--models",
        "all-minilm-l6-v2",
        "--data",
        str(csv_path),
        "--task",
        "classification",
        "--columns",
        "text=message,label=topic",
        "--shots",
        "0,4",
        "--bootstrap",
        "50",
    ]
    first = cli(*args, "--out", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    assert "baseline · TF-IDF + LR" in first.stdout and "wrote" in first.stdout
    second = cli(*args, "--seed", "1", "--out", str(tmp_path / "b"))
    assert second.returncode == 0, second.stderr
    diff = cli("eval", "compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert diff.returncode == 0, diff.stderr
    assert "all-minilm-l6-v2 · few-shot k=4" in diff.stdout and "fixed" in diff.stdout
    missing = cli(*args[:-4], "--columns", "text=pesan,label=topic", "--out", str(tmp_path / "c"))
    assert missing.returncode == 2
    assert (
        "no column 'pesan'" in missing.stderr
        and "the columns are: message, topic" in missing.stderr
    )


def test_cli_errors_are_one_line_with_exit_code_2(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "eval.yaml"
    config.write_text(
        "task: classification\ndata: {path: bundled:eval-topic-id}\ncandidates:\n"
        "  - model: multilingual-e5-small\n    select: balanced\n    shots: many\n",
        encoding="utf-8",
    )
    bad = cli("eval", str(config))
    assert bad.returncode == 2 and f"{config}:6: candidates[0].shots" in bad.stderr
    config.write_text(
        "task: classification\ndata: {path: bundled:eval-topic-id}\nmetrics: [accuracy, bleu]\n"
        "candidates: [{model: multilingual-e5-small}]\n",
        encoding="utf-8",
    )
    unknown = cli("eval", str(config))
    assert (
        unknown.returncode == 2
        and "unknown metric for task classification 'bleu'" in unknown.stderr
        and f"{config}:3: metrics[1]:" in unknown.stderr
    )
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    nothing = cli("eval", "--models", "x", "--data", str(empty), "--task", "classification")
    assert nothing.returncode == 2 and "has no rows" in nothing.stderr
    no_task = cli("eval", "--models", "x", "--data", str(empty), "--task", "clasification")
    assert no_task.returncode == 2 and "Did you mean: classification" in no_task.stderr


def test_retrieval_reads_beir_style_qrels(settings: Settings, tmp_path: Path, cli: Cli) -> None:
    from fondasi.data import bundled, read_jsonl

    corpus = read_jsonl(bundled("eval-retrieval-id-corpus"))
    queries = read_jsonl(bundled("eval-retrieval-id-queries"))
    (tmp_path / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": d["id"], "text": d["text"]}) for d in corpus), "utf-8"
    )
    (tmp_path / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": f"q{n}", "text": q["query"]}) for n, q in enumerate(queries)),
        "utf-8",
    )
    lines = ["query-id\tcorpus-id\tscore"] + [
        f"q{n}\t{doc}\t1" for n, q in enumerate(queries) for doc in q["relevant"]
    ]
    (tmp_path / "qrels.tsv").write_text("\n".join(lines) + "\n", "utf-8")
    args = [
        "eval", "--task", "retrieval", "--models", "no-such-embedder",
        "--data", str(tmp_path / "queries.jsonl"), "--columns", "id=_id,query=text",
        "--corpus", str(tmp_path / "corpus.jsonl"), "--corpus-columns", "id=_id",
        "--qrels", str(tmp_path / "qrels.tsv"),
        "--qrels-columns", "query_id=query-id,doc_id=corpus-id,relevance=score",
    ]  # fmt: skip
    run = cli(*args, "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    results = read(tmp_path / "out")
    bm25 = next(c for c in results.candidates if c.name == "baseline · BM25")
    assert bm25.examples == 16 and bm25.metrics["ndcg@10"] > 0.3
    assert results.candidates[-1].failures == 16  # the unknown model, reported
    (tmp_path / "qrels.tsv").write_text("\n".join(lines[:-1]) + "\n", "utf-8")
    short = cli(*args)
    assert short.returncode == 2 and "query 'q15' has no judgements" in short.stderr


def test_done_when_a_users_csv_and_three_models_local_and_cloud(
    fake: tuple[str, FakeState], cli: Cli, home: Path, tmp_path: Path
) -> None:
    """The issue's finish line: one command, the user's CSV, local and hosted models."""
    url, state = fake
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'retries = 0\n[providers.fake]\nadapter = "openai"\nbase_url = "{url}"\n'
        f'api_key = "{KEY}"\n',
        encoding="utf-8",
    )
    from fondasi.data import bundled, read_jsonl

    rows = read_jsonl(bundled("eval-topic-id"))[:24]
    data = tmp_path / "pesan.tsv"  # a spreadsheet export, tab-separated
    lines = ["pesan\ttopik", *(f"{row['text']}\t{row['label']}" for row in rows)]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = state.calls["echo"]
    run = cli(
        "eval", "--models", "multilingual-e5-small,all-minilm-l6-v2,fake:echo",
        "--data", str(data), "--columns", "text=pesan,label=topik",
        "--task", "classification", "--bootstrap", "100",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    (folder,) = (home / "evals").glob("*-classification")
    results = read(folder)
    assert [c.kind for c in results.candidates].count("model") == 3
    echo = next(c for c in results.candidates if c.model == "fake:echo")
    assert echo.failures == 0 and echo.tokens and state.calls["echo"] - before == echo.examples
    assert (folder / "report.html").is_file() and results.verdict[0].startswith("Best on accuracy")
