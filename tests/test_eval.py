"""fondasi eval, the parts without models: metrics against hand-computed values, statistics,
config errors with line numbers, data loading with column mapping, baselines, the cache and
the escaping of the report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from fondasi.errors import BadInputError, UnknownChoiceError
from fondasi.evaluate import parse_config
from fondasi.evaluate.baselines import for_task
from fondasi.evaluate.cache import PredictionCache, cache_key
from fondasi.evaluate.config import DataSpec, EvalConfig
from fondasi.evaluate.datasets import load_examples, split
from fondasi.evaluate.metrics import choose
from fondasi.evaluate.stats import bootstrap, paired_test, pareto, percentile
from fondasi.evaluate.tasks import Context, get_task


def value(task: str, name: str, refs: list[object], outs: list[object]) -> float:
    get_task(task)  # registers every task's metrics
    return choose(task, name)(refs, outs)


# -- metrics on tiny cases, worked out by hand ---------------------------------------------


def test_classification_metrics_by_hand() -> None:
    refs = ["a", "a", "b", "b"]
    outs = ["a", "b", "b", None]
    assert value("classification", "accuracy", refs, outs) == pytest.approx(0.5)
    # a: P=1, R=.5, F1=2/3; b: P=.5, R=.5, F1=.5 -> macro 7/12; the unanswered one is wrong.
    assert value("classification", "macro_f1", refs, outs) == pytest.approx(7 / 12)


def test_classification_details_count_answers_outside_the_labels() -> None:
    task = get_task("classification")
    details = task.details(["a", "a", "b"], ["a", "x", "a"])
    assert details["confusion"]["columns"] == ["a", "b", "x"]
    assert details["confusion"]["matrix"] == [[1, 0, 1], [1, 0, 0]]
    assert details["never_predicted"] == ["b"]
    assert details["outside_labels"] == ["x"]
    assert details["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}


def test_generation_metrics_by_hand() -> None:
    same = ["the cat sat on the mat"]
    assert value("generation", "bleu", same, same) == pytest.approx(100)
    assert value("generation", "chrf", same, same) == pytest.approx(100)
    assert value("generation", "exact_match", ["Halo dunia."], ["halo  dunia"]) == 1.0
    # ROUGE-L: LCS "the cat" of 2 words; P = 2/2, R = 2/4, F = 2PR/(P+R) = 2/3.
    assert value("generation", "rouge_l", ["the cat sat down"], ["the cat"]) == pytest.approx(2 / 3)
    assert value("generation", "judge", ["x", "y", "z"], [5, 3, None]) == pytest.approx(0.75)


def test_extraction_metrics_by_hand() -> None:
    refs = [{"nama": "Sari", "kota": "Semarang", "jumlah": 3}, {"nama": "Budi", "kota": None}]
    outs = [{"nama": "sari", "kota": "Solo", "jumlah": 3}, None]
    # pairs: ref 3 + 1 = 4, predicted 3, right 2 (nama, jumlah): P = 2/3, R = 2/4, F1 = 4/7.
    assert value("extraction", "field_precision", refs, outs) == pytest.approx(2 / 3)
    assert value("extraction", "field_recall", refs, outs) == pytest.approx(0.5)
    assert value("extraction", "field_f1", refs, outs) == pytest.approx(4 / 7)
    assert value("extraction", "json_valid", refs, outs) == 0.5
    assert value("extraction", "exact_match", refs, outs) == 0.0


def test_retrieval_metrics_by_hand() -> None:
    refs = [{"d1": 1.0}, {"d2": 1.0, "d3": 1.0}]
    outs = [["d9", "d1", "d8"], ["d3", "d7", "d8"]]
    assert value("retrieval", "mrr", refs, outs) == pytest.approx((1 / 2 + 1) / 2)
    assert value("retrieval", "recall@1", refs, outs) == pytest.approx((0 + 0.5) / 2)
    assert value("retrieval", "recall@3", refs, outs) == pytest.approx((1 + 0.5) / 2)
    # query 1: DCG = 1/log2(3), ideal 1 -> 0.6309; query 2: DCG 1, ideal 1 + 1/log2(3).
    expected = (1 / 1.5849625 + 1 / (1 + 1 / 1.5849625)) / 2
    assert value("retrieval", "ndcg@3", refs, outs) == pytest.approx(expected, rel=1e-5)


def test_image_top_k_reads_imagenet_synonyms() -> None:
    refs = ["tabby|tiger cat", "espresso"]
    outs = [["Egyptian cat", "tabby, tabby cat"], ["cup", "coffee mug"]]
    assert value("image-classification", "top1", refs, outs) == 0.0
    assert value("image-classification", "top5", refs, outs) == 0.5


def test_metric_names_are_checked_against_the_task() -> None:
    get_task("classification")
    with pytest.raises(UnknownChoiceError, match="accuracy") as info:
        choose("classification", "acuracy")
    assert "Did you mean: accuracy" in str(info.value)
    with pytest.raises(UnknownChoiceError, match="metric for task classification"):
        choose("classification", "bleu")
    with pytest.raises(BadInputError, match="takes no @k"):
        choose("classification", "accuracy@3")
    with pytest.raises(UnknownChoiceError, match="unknown task"):
        get_task("clasification")


# -- statistics ------------------------------------------------------------------------------


def test_bootstrap_interval_holds_the_value_and_repeats_with_the_seed() -> None:
    get_task("classification")
    accuracy = choose("classification", "accuracy")
    refs = ["a"] * 40
    outs = ["a"] * 30 + ["b"] * 10
    first = bootstrap(accuracy, refs, outs, 300, seed=3)
    again = bootstrap(accuracy, refs, outs, 300, seed=3)
    assert first is not None and first == again
    assert first.low < 0.75 < first.high and first.level == 0.95
    assert bootstrap(accuracy, refs[:1], outs[:1], 300, seed=3) is None


def test_paired_test_separates_a_real_gap_from_noise() -> None:
    get_task("classification")
    accuracy = choose("classification", "accuracy")
    refs = ["a"] * 60
    clear = paired_test(accuracy, refs, ["a"] * 60, ["b"] * 60, 500, seed=1)
    assert clear.difference == 1.0 and clear.p_value < 0.01
    noise = paired_test(accuracy, refs, ["a", "b"] * 30, ["b", "a"] * 30, 500, seed=1)
    assert noise.difference == 0.0 and noise.p_value > 0.5


def test_pareto_front_and_percentiles() -> None:
    points = [(1.0, 0.5), (2.0, 0.9), (3.0, 0.8), (0.5, 0.4)]
    assert pareto(points) == [3, 0, 1]
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([], 95) is None


# -- config ----------------------------------------------------------------------------------

CONFIG = """\
task: classification
data:
  path: reviews.csv
candidates:
  - model: multilingual-e5-small
  - model: multilingual-e5-small
    shots: -2
"""


def test_config_errors_point_at_the_yaml_line() -> None:
    with pytest.raises(BadInputError, match=r"eval\.yaml:7: candidates\[1\]\.shots: .*0"):
        parse_config(CONFIG, "eval.yaml")
    unknown = CONFIG.replace("    shots: -2\n", "    shotz: 2\n")
    with pytest.raises(BadInputError, match=r"eval\.yaml:7: .*unknown field 'shotz'"):
        parse_config(unknown, "eval.yaml")
    with pytest.raises(BadInputError, match=r"eval\.yaml:3: not valid YAML"):
        parse_config("task: x\ndata: [\n  - : :\n", "eval.yaml")
    twice = CONFIG.replace("    shots: -2\n", "")
    with pytest.raises(BadInputError, match="both called"):
        parse_config(twice, "eval.yaml")


def test_unknown_names_point_at_their_line_too() -> None:
    metric = CONFIG.replace("candidates:", "metrics: [accuracy, bleu]\ncandidates:").replace(
        "    shots: -2\n", "    shots: 2\n    select: nearest\n"
    )
    with pytest.raises(BadInputError, match=r"eval\.yaml:4: metrics\[1\]: unknown metric"):
        parse_config(metric, "eval.yaml")
    selector = metric.replace("[accuracy, bleu]", "[accuracy]")
    with pytest.raises(BadInputError, match=r"eval\.yaml:9: candidates\[1\]\.select: .*knn"):
        parse_config(selector, "eval.yaml")
    good = selector.replace("    select: nearest\n", "")
    with pytest.raises(BadInputError, match=r"eval\.yaml:1: task: .*classification"):
        parse_config(good.replace("task: classification", "task: clasification"), "eval.yaml")
    with pytest.raises(BadInputError, match=r"eval\.yaml:9: baselines: .*majority"):
        parse_config(good + "baselines: [majorty]\n", "eval.yaml")


def test_candidates_describe_their_approach() -> None:
    config = parse_config(
        "task: classification\ndata: {path: x.csv}\ncandidates:\n"
        "  - {model: smollm2-135m-instruct, shots: 3, select: balanced, template: sentiment-id}\n"
        "  - {model: 'tuned:/runs/minilm-lora'}\n"
    )
    assert (
        config.candidates[0].label == "smollm2-135m-instruct · few-shot k=3 balanced · sentiment-id"
    )
    assert config.candidates[1].label == "tuned:minilm-lora · tuned"


def test_the_by_flag_makes_one_candidate_per_way_of_classifying() -> None:
    from fondasi.cli.eval import from_flags

    flags = dict.fromkeys(
        ("template", "shots", "select", "max_tokens", "columns", "qrels", "corpus", "train",
         "labels", "metrics", "judge"),
    )  # fmt: skip
    flags.update(models="smollm2-135m-instruct", data="x.csv", task="classification")
    config = EvalConfig.model_validate(from_flags({**flags, "by": "logprob,generation"}))
    assert [c.label for c in config.candidates] == [
        "smollm2-135m-instruct · zero-shot by logprob",
        "smollm2-135m-instruct · zero-shot by generation",
    ]
    with pytest.raises(ValidationError, match="generation"):
        EvalConfig.model_validate(from_flags({**flags, "by": "writing"}))


# -- data ------------------------------------------------------------------------------------


def test_csv_parquet_jsonl_and_datasets_folders_load_with_a_column_mapping(tmp_path: Path) -> None:
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"ulasan": "Mantap", "sentimen": "positif"}, {"ulasan": "Parah", "sentimen": "negatif"}]
    (tmp_path / "d.csv").write_text("ulasan,sentimen\nMantap,positif\nParah,negatif\n", "utf-8")
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows), "utf-8")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "folder"))
    mapping = {"text": "ulasan", "label": "sentimen"}
    for name in ("d.csv", "d.jsonl", "d.parquet", "folder"):
        spec = DataSpec(path=str(tmp_path / name), columns=mapping)
        examples = load_examples(spec, ("text", "label"))
        assert [e.fields for e in examples] == [
            {"text": "Mantap", "label": "positif"},
            {"text": "Parah", "label": "negatif"},
        ], name


def test_data_problems_are_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("", "utf-8")
    with pytest.raises(BadInputError, match="has no rows"):
        load_examples(DataSpec(path=str(tmp_path / "empty.jsonl")), ("text", "label"))
    (tmp_path / "d.csv").write_text("review,stars\nbagus,5\n", "utf-8")
    with pytest.raises(BadInputError, match=r"no column 'text'; the columns are: review, stars"):
        load_examples(DataSpec(path=str(tmp_path / "d.csv")), ("text", "label"))
    mapped = DataSpec(path=str(tmp_path / "d.csv"), columns={"text": "ulasan"})
    with pytest.raises(BadInputError, match=r"'ulasan' \(mapped from 'text'\)"):
        load_examples(mapped, ("text", "label"))
    with pytest.raises(BadInputError, match="no such data file"):
        load_examples(DataSpec(path=str(tmp_path / "nope.csv")), ("text",))
    with pytest.raises(UnknownChoiceError, match="eval-topic-id"):
        load_examples(DataSpec(path="bundled:eval-topik-id"), ("text",))


def test_split_is_stratified_and_seeded() -> None:
    examples = load_examples(DataSpec(path="bundled:eval-topic-id"), ("text", "label"))
    train, test = split(examples, 0.3, seed=0, stratify="label")
    again, _ = split(examples, 0.3, seed=0, stratify="label")
    assert [e.index for e in train] == [e.index for e in again]
    assert len(train) == 16 and len(test) == 44  # round(15 × 0.3) = 4 per label
    assert {e.fields["label"] for e in train} == {"pengiriman", "pembayaran", "akun", "produk"}


@pytest.mark.parametrize(
    "name",
    [
        "eval-topic-id",
        "eval-topic-en",
        "eval-rewrite-id",
        "eval-translate-en-id",
        "eval-extract-id",
        "eval-extract-en",
        "eval-retrieval-id-queries",
        "eval-retrieval-en-queries",
        "eval-image",
    ],
)
def test_bundled_eval_sets_fit_their_task(name: str) -> None:
    task_of = {"topic": "classification", "rewrite": "generation", "translate": "generation"}
    kind = name.split("-")[1]
    task = get_task(
        task_of.get(kind)
        or {"extract": "extraction", "retrieval": "retrieval"}.get(kind)
        or "image-classification"
    )
    examples = [
        task.prepare(e) for e in load_examples(DataSpec(path=f"bundled:{name}"), task.needed)
    ]
    assert len(examples) >= 6
    if task.name == "retrieval":
        corpus = load_examples(
            DataSpec(path=f"bundled:{name.replace('queries', 'corpus')}"), task.corpus_fields
        )
        ids = {str(doc.fields["id"]) for doc in corpus}
        assert all(set(e.fields["relevant"]) <= ids for e in examples)


# -- baselines and cache ---------------------------------------------------------------------


def test_baselines_fit_on_train_and_beat_chance_on_indonesian_topics() -> None:
    config = parse_config(
        "task: classification\ndata: {path: bundled:eval-topic-id}\n"
        "candidates: [{model: multilingual-e5-small}]\n"
    )
    examples = load_examples(config.data, ("text", "label"))
    train, test = split(examples, 0.5, seed=0, stratify="label")
    context = Context(
        config=config, labels=["akun", "pembayaran", "pengiriman", "produk"], train=train, test=test
    )
    scores = {}
    for baseline in for_task("classification", True):
        baseline.fit(context)
        outputs = baseline.predict(test)
        scores[baseline.name] = value(
            "classification", "accuracy", [e.fields["label"] for e in test], outputs
        )
    assert scores["majority"] == pytest.approx(0.25)
    assert scores["tfidf-lr"] > 0.5
    with pytest.raises(UnknownChoiceError, match="majority"):
        for_task("classification", ["majorty"])


def test_cache_keeps_successes_only(tmp_path: Path) -> None:
    cache = PredictionCache(tmp_path / "c.sqlite")
    key = cache_key("m", {"shots": 0}, "example")
    assert key == cache_key("m", {"shots": 0}, "example") != cache_key("m", {"shots": 1}, "e")
    cache.put_many("m", {key: {"output": "a", "error": None}, "k2": {"output": None, "error": "x"}})
    assert cache.get_many([key, "k2"]) == {key: {"output": "a", "error": None}}
    assert cache.count() == 1
    cache.close()


def test_runs_are_listed_newest_first_and_broken_folders_skipped(tmp_path: Path) -> None:
    from fondasi.evaluate import list_runs
    from fondasi.evaluate.results import CandidateResult, Results, write

    def results(name: str, created: str) -> Results:
        best = CandidateResult(
            name="e5", kind="model", approach="zero-shot", metrics={"accuracy": 0.8},
            examples=10, failures=0,
        )  # fmt: skip
        return Results(
            fondasi_version="0", created=created, name=name, task="classification",
            headline="accuracy", metrics=["accuracy"], seed=0, data={}, candidates=[best],
            verdict=[], config={},
        )  # fmt: skip

    write(tmp_path / "a", results("old", "2026-01-01T00:00:00+00:00"), [])
    write(tmp_path / "b", results("new", "2026-02-01T00:00:00+00:00"), [])
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "results.json").write_text('{"schema_version": 99}', encoding="utf-8")
    runs = list_runs(tmp_path)
    assert [(r.name, r.best, r.best_value, r.report) for r in runs] == [
        ("new", "e5", 0.8, None),
        ("old", "e5", 0.8, None),
    ]


# -- the report ------------------------------------------------------------------------------


def test_the_report_escapes_what_users_wrote(tmp_path: Path) -> None:
    """Names, labels, texts, answers, errors, the judge prompt and the config are shown as
    text: nothing a user wrote runs in the report."""
    from fondasi.evaluate.report import write_report
    from fondasi.evaluate.results import CandidateResult, Interval, Latency, Results

    from .browser import Browser

    evil = "<script>alert('x')</script>"
    labels = ["akun", f"label {evil}"]
    candidate = CandidateResult(
        name=f"e5 {evil}", kind="model", approach="zero-shot", metrics={"accuracy": 0.5},
        ci=Interval(low=0.2, high=0.8, level=0.95), examples=2, failures=0,
        latency=Latency(p50=0.01, p95=0.02), cost_usd=0.001, notes=[f"note {evil}"],
        details={"confusion": {"rows": labels, "columns": labels, "matrix": [[1, 0], [1, 0]]}},
    )  # fmt: skip
    broken = candidate.model_copy(update={"name": "broken", "failures": 2, "notes": []})
    results = Results(
        fondasi_version="0", created="2026-01-01T00:00:00+00:00", name=f"Run {evil}",
        task="classification", headline="accuracy", metrics=["accuracy"], seed=0,
        data={"path": f"{evil}.csv", "test_rows": 2}, labels=labels,
        candidates=[candidate, broken], verdict=[f"Best: {evil}"],
        judge_prompt=f"Grade {evil}", config={"name": evil},
    )  # fmt: skip

    def row(index: int, name: str) -> dict[str, object]:
        error = f"error {evil}" if name == "broken" else None
        return {"index": index, "candidate": name, "input": f"input {evil}", "score": 0.0,
                "reference": labels[index], "output": f"output {evil}", "error": error}  # fmt: skip

    rows = [row(i, name) for i in range(2) for name in (candidate.name, "broken")]
    write_report(tmp_path / "report.html", results, rows)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html and html.count("&lt;script&gt;") >= 12
    with Browser() as browser:
        page = browser.open(tmp_path / "report.html")
        assert page.console_errors == [] and page.title == f"Run {evil} · fondasi eval"
        text = page.text()
        for shown in ("e5", "label", "note", "Best:", "input", "output", "error", "Grade"):
            assert f"{shown} {evil}" in text, shown
        assert page.count("svg.chart") == 3
        assert page.count("table") == 4  # leaderboard, two confusion matrices, hardest examples
