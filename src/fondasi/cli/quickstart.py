"""``fondasi quickstart``: the whole loop on a bundled Indonesian customer-service task.

know → choose → use (zero-shot, few-shot) → adapt (LoRA, full fine-tuning) → measure
(one ``fondasi eval`` run, one report) → guard (PII masked before a cloud call) → serve.
Each step says what it does and why; the end prints the leaderboard and the report path.
The steps call the same code as the commands they stand for, nothing special-cased.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from fondasi.cli._render import console, esc
from fondasi.errors import BadInputError
from fondasi.settings import Settings

TASK = "sentiment3-id"  # Indonesian reviews and comments: positif / negatif / netral
LABELS = {
    "positif": "ulasan positif: puas, senang, bagus, mantap, recommended",
    "negatif": "ulasan negatif: kecewa, rusak, lambat, buruk, kapok",
    "netral": "pernyataan netral: pertanyaan atau fakta tanpa perasaan",
}
SECRET_MESSAGE = (
    "Halo, saya Budi. NIK saya 3201011501900001 dan nomor HP 0812-3456-7890. "
    "Paket saya belum sampai, tolong dicek ya."
)


@dataclass(frozen=True)
class Plan:
    """How big each step is: the full tour, or the fast one the tests run."""

    test_rows: int | None  # None: the whole dev set
    tune_steps: int | None  # None: the method's epochs, early stopping on dev
    shots: int  # labelled examples the embedding models see (few-shot prototypes)
    gemma: bool  # Gemma 3 270M few-shot: seconds per example on a laptop CPU
    retrieval: bool


FULL = Plan(test_rows=None, tune_steps=None, shots=24, gemma=True, retrieval=True)
FAST = Plan(test_rows=24, tune_steps=6, shots=6, gemma=False, retrieval=False)


@dataclass
class Tour:
    """What the steps made, for the ones after them."""

    out: Path
    settings: Settings
    plan: Plan
    tuned: dict[str, Path] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)


def step(number: int, title: str, why: str) -> None:
    """A step's heading and, in plain words, why it is there."""
    console.rule(f"[bold]{number}. {esc(title)}", align="left")
    console.print(esc(why), soft_wrap=True)


def quickstart(
    ctx: typer.Context,
    out: Path | None = typer.Option(
        None, "--out", help="Folder for the tuned models and the report (default: a new one)."
    ),
    fast: bool = typer.Option(
        False, "--fast", help="Fewer examples and training steps: a smoke run in a few minutes."
    ),
) -> None:
    """Run the whole loop on a bundled Indonesian task, offline, and say which model to pick."""
    settings: Settings = ctx.obj
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder = (out or settings.home / "quickstart" / stamp).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"cannot use {folder} for the quickstart: {exc.strerror}") from None
    tour = Tour(folder, settings, FAST if fast else FULL)
    console.print(
        f"[bold]fondasi quickstart[/] — an Indonesian customer-service task, offline, "
        f"{'fast mode' if fast else 'full mode'}; everything goes to {esc(str(folder))}"
    )
    know_and_choose(tour)
    use(tour)
    adapt(tour)
    results, report = measure(tour)
    guard(tour)
    serve(tour, results, report)


def know_and_choose(tour: Tour) -> None:
    """Step 1: the recommendation for the task on this machine."""
    from fondasi.api import recommend
    from fondasi.recommend import Requirements

    step(
        1,
        "Know and choose: which models fit an Indonesian classifier on this machine?",
        "fondasi ranks the catalog against the task, your hardware, privacy and licence. "
        "Privacy is high here (customer messages stay on the machine), so only local models "
        "qualify.",
    )
    wanted = Requirements(task="classification", lang="id", privacy="high", top=3)
    for pick in recommend(wanted, settings=tour.settings):
        memory = f", {pick.memory_gb:g} GB" if pick.memory_gb else ""
        console.print(f"  {pick.rank}. [bold]{esc(pick.model_id)}[/] ({pick.approach}{memory})")
        for reason in pick.why[:2]:
            console.print(f"     [dim]- {esc(reason)}[/]", soft_wrap=True)
    console.print(
        "The bundled models (multilingual-e5-small, all-MiniLM-L6-v2, SmolLM2-135M) run on "
        "any laptop; the next steps test them on your data instead of trusting the ranking."
    )


def use(tour: Tour) -> None:
    """Step 2: zero-shot and few-shot on a few messages, before any training."""
    from fondasi.data import bundled, read_jsonl
    from fondasi.models.load import load
    from fondasi.models.prompting import ask

    step(
        2,
        "Use: zero-shot and few-shot, no training",
        "Zero-shot compares each message with a description of each label; few-shot shows "
        "the model a handful of labelled examples first. A small language model (SmolLM2) "
        "classifies two ways: by the probability it gives each label after the prompt, or by "
        "writing an answer that is read as a label.",
    )
    train = balanced(read_jsonl(bundled(f"{TASK}-train")), tour.plan.shots)
    messages = ["Barangnya cepat sampai dan rapi, mantap!", "Aplikasinya error terus, kapok."]
    e5 = load("multilingual-e5-small", tour.settings)
    zero = e5.classify(messages, LABELS)
    few = e5.classify(messages, list(LABELS), shots=train)
    for text, a, b in zip(messages, zero, few, strict=True):
        console.print(
            f"  {esc(text)!s:<45} zero-shot → [bold]{a[0].label}[/] ({a[0].score:.2f}), "
            f"few-shot → [bold]{b[0].label}[/] ({b[0].score:.2f})"
        )
    smol = load("smollm2-135m-instruct", tour.settings)
    scored = smol.classify(messages, list(LABELS), template="sentiment-id")
    for text, ranking in zip(messages, scored, strict=True):
        answer = ask(smol, "sentiment-id", input=text, labels=list(LABELS))
        console.print(
            f"  {esc(text)!s:<45} SmolLM2 by log-probability → [bold]{ranking[0].label}[/], "
            f"by generation → [bold]{esc(str(answer.value or '(no label)'))}[/] "
            f"(it wrote {esc(answer.text.strip()[:30])!r})"
        )
    console.print(
        f"(few-shot: {len(train)} labelled examples, {len(train) // len(LABELS)} per label.) "
        "Step 4 measures every approach on held-out messages, not just two."
    )


def balanced(rows: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """``count`` rows with the labels taking turns, as the eval's balanced few-shot does."""
    queues: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        queues.setdefault(row["label"], []).append(row)
    picked: list[dict[str, Any]] = []
    while len(picked) < count and any(queues.values()):
        for queue in queues.values():
            if queue and len(picked) < count:
                picked.append(queue.pop(0))
    return picked


def adapt(tour: Tour) -> None:
    """Step 3: LoRA and full fine-tuning of MiniLM on the bundled training set."""
    from fondasi.cli.tune import show_result
    from fondasi.data import bundled
    from fondasi.tune.local import tune
    from fondasi.tune.options import TuneOptions

    step(
        3,
        "Adapt: fine-tune all-MiniLM-L6-v2, with LoRA and fully",
        "LoRA trains about 1% of the weights in small adapter matrices; full fine-tuning "
        "trains them all. Both learn from 300 labelled messages; the dev set picks when to "
        "stop. Each result is shown beside a TF-IDF + logistic-regression baseline.",
    )
    for method in ("lora", "full"):
        out = tour.out / f"minilm-{method}"
        options = TuneOptions(
            base="all-minilm-l6-v2",
            data=bundled(f"{TASK}-train"),
            eval_data=bundled(f"{TASK}-dev"),
            out=out,
            method=method,
            max_steps=tour.plan.tune_steps,
            seed=0,
        )
        show_result(tune(options, tour.settings))
        tour.tuned[method] = out


def measure(tour: Tour) -> tuple[Any, Path]:
    """Step 4: every approach in one evaluation run, one report."""
    from fondasi.cli.eval import _progress, show
    from fondasi.evaluate import EvalConfig, evaluate

    step(
        4,
        "Measure: every approach on the same held-out messages, in one report",
        "One `fondasi eval` run: quality with 95% intervals, latency, throughput and cost per "
        "candidate, beside honest baselines (TF-IDF + logistic regression fitted on the same "
        "training messages, the majority class, random guessing).",
    )
    shots = tour.plan.shots
    candidates: list[dict[str, Any]] = [
        {"model": "multilingual-e5-small"},
        {"model": "multilingual-e5-small", "shots": shots},
        {"model": "all-minilm-l6-v2", "shots": shots},
        *({"model": f"tuned:{path}", "name": f"minilm {m}"} for m, path in tour.tuned.items()),
    ]
    smol = {"model": "smollm2-135m-instruct", "template": "sentiment-id"}
    candidates += [smol, {**smol, "by": "generation"}]
    if tour.plan.gemma:
        gemma = {"model": "gemma-3-270m", "template": "sentiment-id"}
        candidates.append({**gemma, "shots": 6, "select": "balanced"})
    data: dict[str, Any] = {"path": f"bundled:{TASK}-dev"}
    if tour.plan.test_rows:
        data["limit"] = tour.plan.test_rows
    config = EvalConfig.model_validate(
        {
            "name": "Sentimen pesan pelanggan (quickstart)",
            "task": "classification",
            "data": data,
            "train": {"path": f"bundled:{TASK}-train"},
            "labels": LABELS,
            "candidates": candidates,
            "seed": 0,
            "cache": str(tour.out / "eval-cache.sqlite"),
        }
    )
    with _progress() as bars:
        results, folder = evaluate(config, tour.settings, tour.out / "eval", bars)
    show(results)
    if tour.plan.retrieval:
        faq_search(tour)
    return results, folder / "report.html"


def faq_search(tour: Tour) -> None:
    """Step 4b: semantic search over a small help-centre FAQ, against BM25."""
    from fondasi.cli.eval import _progress, show
    from fondasi.evaluate import EvalConfig, evaluate

    console.print(
        "\nThe same customers also search the help centre: do embeddings find the right "
        "answer better than keyword search (BM25)?"
    )
    config = EvalConfig.model_validate(
        {
            "name": "Pencarian FAQ (quickstart)",
            "task": "retrieval",
            "data": {
                "path": "bundled:eval-retrieval-id-queries",
                "corpus": {"path": "bundled:eval-retrieval-id-corpus"},
            },
            "candidates": [{"model": "multilingual-e5-small"}, {"model": "all-minilm-l6-v2"}],
            "cache": str(tour.out / "eval-cache.sqlite"),
        }
    )
    with _progress() as bars:
        results, _ = evaluate(config, tour.settings, tour.out / "eval-faq", bars)
    show(results)


class CloudStandIn:
    """Stands in for a hosted chat API: keeps what it was sent and answers politely."""

    id = "cloud-api (stand-in)"

    def __init__(self) -> None:
        self.received: list[str] = []

    def generate(self, prompt: Any, **options: Any) -> Any:
        """Answer like a support bot that repeats the reference it was given."""
        from fondasi.types import Completion, Usage

        text = prompt if isinstance(prompt, str) else str(prompt[-1].content)
        self.received.append(text)
        reference = next((w for w in text.split() if w.startswith("[NIK")), "Anda")
        answer = f"Terima kasih, pesanan atas NIK {reference} sedang kami lacak."
        return Completion(
            model=self.id,
            text=answer,
            usage=Usage(prompt_tokens=len(text.split()), completion_tokens=len(answer.split())),
            finish_reason="stop",
            seconds=0.0,
        )


def guard(tour: Tour) -> None:
    """Step 5: personal data masked before a (stand-in) cloud call, restored after."""
    from fondasi.guard import Policy
    from fondasi.guard.config import PolicyConfig

    step(
        5,
        "Guard: personal data never reaches the cloud",
        "A guard policy pseudonymises NIK and phone numbers before the request leaves the "
        "machine and puts them back in the answer. Here the cloud API is a local stand-in, so "
        "you can see exactly what it would have received.",
    )
    policy = Policy("quickstart", PolicyConfig(input={"pii": "pseudonymise"}), tour.settings)
    cloud = CloudStandIn()
    answer = policy.wrap(cloud).generate(SECRET_MESSAGE)
    console.print(f"  user wrote:     {esc(SECRET_MESSAGE)}", soft_wrap=True)
    console.print(f"  cloud received: [bold]{esc(cloud.received[-1])}[/]", soft_wrap=True)
    console.print(f"  user reads:     {esc(answer.text)}", soft_wrap=True)


def classify_body(candidate: Any) -> str:
    """The curl arguments that ask the served candidate for a label (tuned ones know theirs)."""
    import json
    import shlex

    body: dict[str, Any] = {"model": candidate.model, "input": "Pengirimannya cepat, mantap!"}
    if not candidate.model.startswith("tuned:"):
        body["labels"] = list(LABELS)
    return "-H 'content-type: application/json' -d " + shlex.quote(json.dumps(body))


def serve(tour: Tour, results: Any, report: Path) -> None:
    """Step 6: what to pick, and how to serve it."""
    step(
        6,
        "Serve: put the winner behind an OpenAI-compatible API",
        "The leaderboard above is the evidence; the report has the charts, the confusion "
        "matrices and the worst examples side by side.",
    )
    models = [c for c in results.candidates if c.kind == "model"]
    best = models[0] if models else None
    if best is not None and best.model:
        console.print(f"Best model on this data: [bold]{esc(best.name)}[/] ({esc(best.approach)})")
        console.print(f"  fondasi serve --models {esc(best.model)}")
        console.print(f"  curl -s 127.0.0.1:8000/v1/classify {esc(classify_body(best))}")
        if best.approach.startswith("few-shot"):
            console.print(
                "  (few-shot: add the labelled messages it learned from as "
                '"examples": [{"text": ..., "label": ...}, ...])'
            )
    tuned = [c for c in models if c.model and c.model.startswith("tuned:")]
    if tuned and tuned[0] is not best:
        console.print(f"Best fine-tuned model: [bold]{esc(tuned[0].name)}[/], served the same way:")
        console.print(f"  fondasi serve --models {esc(tuned[0].model)}")
    console.print("  then open http://127.0.0.1:8000/ui in a browser (the dashboard)")
    for sentence in results.verdict[:2]:
        console.print(esc(sentence), soft_wrap=True)
    minutes = (time.perf_counter() - tour.started) / 60
    console.print(f"\nreport: [bold]{esc(str(report))}[/]  ({minutes:.1f} min)")
