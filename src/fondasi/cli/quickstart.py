"""``fondasi quickstart``: the whole loop on bundled Indonesian customer-service tasks.

know → choose → use (zero-shot, few-shot; the local instruct model writing JSON, a reply and
a tool call; speech to text) → adapt (a head on frozen embeddings, SetFit) → measure (one
``fondasi eval`` run with a learning curve, one report; a second task) → guard (PII masked
before a cloud call) → serve. Each step says what it does and why; the end prints the
leaderboard and the report path. The steps call the same code as the commands they stand
for, nothing special-cased.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from fondasi.cli._render import console, esc
from fondasi.cli.tour_instruct import instruct_and_speech
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
    sizes: list[int]  # the learning curve's train sizes (the whole split is added)
    draws: int  # samples per size
    shots: int  # labelled examples the embedding models see (few-shot prototypes)
    setfit: dict[str, Any]  # SetFit's settings: its pairs are most of the tour's time
    llm: bool  # the instruct model among the candidates (zero-shot, by log-probability)
    second_task: bool  # intent-id, so the tour does not rest on one test set
    retrieval: bool


FULL = Plan(
    test_rows=None,
    sizes=[8, 32, 128],
    draws=3,
    shots=24,
    setfit={"pairs": 4},
    llm=True,
    second_task=True,
    retrieval=True,
)
FAST = Plan(
    test_rows=24,
    sizes=[6],
    draws=1,
    shots=6,
    setfit={"pairs": 2, "max_steps": 4},
    llm=False,
    second_task=False,
    retrieval=False,
)


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
    instruct_and_speech(tour.settings, 3, step)
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
        "The bundled models (multilingual-e5-small, all-MiniLM-L6-v2, Qwen2.5-Coder-0.5B-"
        "Instruct, Whisper base) run on any laptop; the next steps test them on your data "
        "instead of trusting the ranking."
    )


def use(tour: Tour) -> None:
    """Step 2: zero-shot and few-shot on a few messages, before any training."""
    from fondasi.data import bundled, read_jsonl
    from fondasi.models.load import load

    step(
        2,
        "Use: zero-shot and few-shot, no training",
        "Zero-shot compares each message with a description of each label; few-shot "
        "compares it with a handful of labelled examples of each label instead.",
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
    console.print(
        f"(few-shot: {len(train)} labelled examples, {len(train) // len(LABELS)} per label.) "
        "Step 5 measures every approach on held-out messages, not just two."
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
    """Step 4: a linear head on frozen e5 embeddings, tuned on the bundled training set."""
    from fondasi.cli.tune import show_result
    from fondasi.data import bundled
    from fondasi.tune.local import tune
    from fondasi.tune.options import TuneOptions

    step(
        4,
        "Adapt: a classifier head on a frozen pre-trained encoder",
        "The recipe engineers reach for with a few hundred labels: multilingual-e5 turns each "
        "message into a vector it learned on billions of sentences, and a logistic regression "
        "learns the labels on top in seconds. SetFit, which also tunes the encoder itself, runs "
        "in step 5. The result is shown beside a TF-IDF + logistic-regression baseline.",
    )
    out = tour.out / "e5-linear-head"
    options = TuneOptions(
        base="multilingual-e5-small",
        data=bundled(f"{TASK}-train"),
        eval_data=bundled(f"{TASK}-dev"),
        out=out,
        method="linear-head",
        seed=0,
    )
    show_result(tune(options, tour.settings))
    tour.tuned["linear-head"] = out


def measure(tour: Tour) -> tuple[Any, Path]:
    """Step 5: every approach in one evaluation run with a learning curve, one report."""
    from fondasi.cli.eval import _progress, show
    from fondasi.evaluate import EvalConfig, evaluate
    from fondasi.tune.for_eval import eval_tuner

    step(
        5,
        "Measure: every approach on the same held-out messages, and how many labels each needs",
        "One `fondasi eval` run: quality with 95% intervals, latency, throughput and cost per "
        "candidate, beside honest baselines (TF-IDF + logistic regression fitted on the same "
        "training messages, the majority class, random guessing). The learning curve gives "
        "every approach that learns from labels random samples of the training set, from a "
        "handful to all of it: is a pre-trained model worth it, and at how many labels?",
    )
    plan = tour.plan
    candidates: list[dict[str, Any]] = [
        {"model": "multilingual-e5-small"},
        {"model": "multilingual-e5-small", "shots": plan.shots},
        {"model": "multilingual-e5-small", "head": "linear"},
        {
            "model": "all-minilm-l6-v2",
            "tune": "setfit",
            "tune_options": plan.setfit,
            "name": "all-minilm-l6-v2 · SetFit",
        },
    ]
    if plan.llm:
        candidates.append({"model": tour.settings.chat_model, "template": "sentiment-id"})
    data: dict[str, Any] = {"path": f"bundled:{TASK}-dev"}
    if plan.test_rows:
        data["limit"] = plan.test_rows
    config = EvalConfig.model_validate(
        {
            "name": "Sentimen pesan pelanggan (quickstart)",
            "task": "classification",
            "data": data,
            "train": {"path": f"bundled:{TASK}-train"},
            "labels": LABELS,
            "candidates": candidates,
            "curve": {"sizes": plan.sizes, "draws": plan.draws},
            "seed": 0,
            "cache": str(tour.out / "eval-cache.sqlite"),
        }
    )
    tuner = eval_tuner(tour.settings, config.seed)
    with _progress() as bars:
        results, folder = evaluate(config, tour.settings, tour.out / "eval", bars, tuner)
    show(results)
    if plan.second_task:
        intents(tour)
    if plan.retrieval:
        faq_search(tour)
    return results, folder / "report.html"


INTENTS = {
    "lacak_pesanan": "lacak pesanan: paket belum sampai, posisi kurir, nomor resi",
    "batal_pesanan": "batalkan pesanan yang belum dikirim",
    "refund_retur": "pengembalian dana atau retur barang rusak atau salah kirim",
    "pembayaran_gagal": "pembayaran gagal, saldo terpotong, transfer belum masuk",
    "promo_voucher": "promo, voucher, diskon, cashback, kode kupon",
    "akun_login": "akun, login, kata sandi, OTP, verifikasi",
    "info_produk": "pertanyaan tentang produk: ukuran, bahan, stok, garansi",
    "keluhan_layanan": "keluhan tentang pelayanan penjual, kurir atau customer service",
}


def intents(tour: Tour) -> None:
    """Step 5b: a second task, eight intents of informal, code-mixed messages."""
    side_eval(
        tour,
        "A second task, so the verdict does not rest on one test set: route 160 informal, "
        "code-mixed customer messages to eight intents.",
        {
            "name": "Intent pesan pelanggan (quickstart)",
            "task": "classification",
            "data": {"path": "bundled:intent-id-test"},
            "train": {"path": "bundled:intent-id-train"},
            "labels": INTENTS,
            "candidates": [
                {"model": "multilingual-e5-small"},
                {"model": "multilingual-e5-small", "head": "linear"},
            ],
            "curve": {"sizes": tour.plan.sizes, "draws": tour.plan.draws},
            "seed": 0,
        },
        "eval-intent",
    )


def faq_search(tour: Tour) -> None:
    """Step 5c: semantic search over a small help-centre FAQ, against BM25."""
    side_eval(
        tour,
        "The same customers also search the help centre: do embeddings find the right "
        "answer better than keyword search (BM25)?",
        {
            "name": "Pencarian FAQ (quickstart)",
            "task": "retrieval",
            "data": {
                "path": "bundled:eval-retrieval-id-queries",
                "corpus": {"path": "bundled:eval-retrieval-id-corpus"},
            },
            "candidates": [{"model": "multilingual-e5-small"}, {"model": "all-minilm-l6-v2"}],
        },
        "eval-faq",
    )


def side_eval(tour: Tour, intro: str, config: dict[str, Any], folder: str) -> None:
    """One more eval run after the main one, sharing its prediction cache."""
    from fondasi.cli.eval import _progress, show
    from fondasi.evaluate import EvalConfig, evaluate

    console.print("\n" + intro)
    checked = EvalConfig.model_validate({**config, "cache": str(tour.out / "eval-cache.sqlite")})
    with _progress() as bars:
        results, _ = evaluate(checked, tour.settings, tour.out / folder, bars)
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
    """Step 6: personal data masked before a (stand-in) cloud call, restored after."""
    from fondasi.guard import Policy
    from fondasi.guard.config import PolicyConfig

    step(
        6,
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


def classify_body(model: str) -> str:
    """The curl arguments that ask the served model for a label (tuned ones know theirs)."""
    import json
    import shlex

    body: dict[str, Any] = {"model": model, "input": "Pengirimannya cepat, mantap!"}
    if not model.startswith("tuned:"):
        body["labels"] = list(LABELS)
    return "-H 'content-type: application/json' -d " + shlex.quote(json.dumps(body))


def serve(tour: Tour, results: Any, report: Path) -> None:
    """Step 7: what to pick, and how to serve it."""
    step(
        7,
        "Serve: put the winner behind an OpenAI-compatible API",
        "The leaderboard above is the evidence; the report has the charts, the confusion "
        "matrices and the worst examples side by side.",
    )
    models = [c for c in results.candidates if c.kind == "model"]
    best = models[0] if models else None
    if best is not None and best.model:
        console.print(f"Best model on this data: [bold]{esc(best.name)}[/] ({esc(best.approach)})")
        served = best.model
        if (best.spec or {}).get("head") == "linear" and "linear-head" in tour.tuned:
            # The eval fitted the head in memory; step 4 saved the same recipe to a folder.
            served = f"tuned:{tour.tuned['linear-head']}"
            console.print("  (the same recipe step 4 saved as a model folder)")
        console.print(f"  fondasi serve --models {esc(served)}")
        console.print(f"  curl -s 127.0.0.1:8000/v1/classify {esc(classify_body(served))}")
        if best.approach.startswith("few-shot"):
            console.print(
                "  (few-shot: add the labelled messages it learned from as "
                '"examples": [{"text": ..., "label": ...}, ...])'
            )
    tuned = [c for c in models if c.model and c.model.startswith("tuned:")]
    if tuned and tuned[0] is not best and tuned[0].model:
        console.print(f"Best fine-tuned model: [bold]{esc(tuned[0].name)}[/], served the same way:")
        console.print(f"  fondasi serve --models {esc(tuned[0].model)}")
    console.print("  then open http://127.0.0.1:8000/ui in a browser (the dashboard)")
    for sentence in results.verdict[:2]:
        console.print(esc(sentence), soft_wrap=True)
    minutes = (time.perf_counter() - tour.started) / 60
    console.print(f"\nreport: [bold]{esc(str(report))}[/]  ({minutes:.1f} min)")
