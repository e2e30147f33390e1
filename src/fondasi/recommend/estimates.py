"""Rule-of-thumb estimates behind a recommendation: cost, memory fit and latency.

They are estimates to rank and explain, not measurements: ``fondasi eval``
measures the real thing on the user's data.
"""

from __future__ import annotations

from dataclasses import dataclass

from fondasi.catalog.schema import Architecture, ModelCard, Task

DAYS_PER_MONTH = 30
AMORTISE_MONTHS = 12  # one-off costs (embedding a corpus) are spread over a year
TOKENS_PER_DOCUMENT = 500  # a typical chunk in a semantic-search index

# Typical tokens (in, out) for one request of each task.
TASK_TOKENS: dict[Task, tuple[int, int]] = {
    Task.CHAT: (600, 250),
    Task.TEXT_GENERATION: (300, 400),
    Task.TRANSLATION: (150, 150),
    Task.SUMMARIZATION: (1500, 200),
    Task.CLASSIFICATION: (200, 5),
    Task.EMBEDDINGS: (50, 0),
    Task.QUESTION_ANSWERING: (800, 200),
    Task.CODE: (800, 400),
    Task.IMAGE_CLASSIFICATION: (0, 0),
    Task.IMAGE_TEXT_MATCHING: (20, 0),
    Task.IMAGE_UNDERSTANDING: (1000, 200),
    Task.IMAGE_GENERATION: (60, 0),
    Task.SPEECH_RECOGNITION: (0, 150),  # a minute of speech: ~150 words out
    Task.BIOMEDICAL: (800, 250),
    Task.LEGAL: (1500, 250),
    Task.FINANCE: (800, 250),
}

# Share of RAM a model may take: the OS, the application and the data need the rest.
USABLE_RAM_SHARE = 0.75
# Sustained memory bandwidth (GB/s) and matmul rate (GFLOP/s) of a typical laptop CPU and a
# datacentre GPU. Decoding one token reads every weight once, so it is bandwidth-bound.
CPU_BANDWIDTH_GBS, GPU_BANDWIDTH_GBS = 20.0, 800.0
CPU_GFLOPS, GPU_GFLOPS = 100.0, 50_000.0
QUANTISABLE = {Architecture.DECODER_ONLY, Architecture.ENCODER_DECODER}


def tokens_for(task: Task, input_tokens: int | None, output_tokens: int | None) -> tuple[int, int]:
    """Tokens in and out per request: the user's figures, else the task's typical ones."""
    typical_in, typical_out = TASK_TOKENS[task]
    return (
        typical_in if input_tokens is None else input_tokens,
        typical_out if output_tokens is None else output_tokens,
    )


def monthly_api_cost(
    card: ModelCard, task: Task, requests_per_day: int, tokens: tuple[int, int]
) -> float | None:
    """USD a month for the request volume at the card's price; None if the price is unknown."""
    price = card.pricing
    if price is None:
        return None
    requests = requests_per_day * DAYS_PER_MONTH
    if task == Task.IMAGE_GENERATION:
        return None if price.per_image is None else requests * price.per_image
    if task == Task.SPEECH_RECOGNITION:  # priced by the minute; a request is a minute of audio
        return None if price.per_minute is None else requests * price.per_minute
    if price.input_per_1m is None:
        return None
    tokens_in, tokens_out = tokens
    cost = tokens_in * price.input_per_1m
    if tokens_out:
        if price.output_per_1m is None:
            return None
        cost += tokens_out * price.output_per_1m
    return requests * cost / 1e6


def indexing_cost(card: ModelCard, documents: int) -> float | None:
    """USD to embed a corpus once through the card's API."""
    if card.pricing is None or card.pricing.input_per_1m is None:
        return None
    return documents * TOKENS_PER_DOCUMENT * card.pricing.input_per_1m / 1e6


def local_indexing_hours(card: ModelCard, documents: int, on_gpu: bool) -> float | None:
    """Hours to embed a corpus once on local hardware (encoder compute-bound)."""
    if card.parameters is None:
        return None
    gflops = GPU_GFLOPS if on_gpu else CPU_GFLOPS
    flops = documents * 2 * card.parameters * TOKENS_PER_DOCUMENT
    return flops / (gflops * 1e9) / 3600


def index_size_gb(card: ModelCard, documents: int) -> float | None:
    """Memory of a float32 vector index over ``documents``."""
    if card.embedding_dim is None:
        return None
    return documents * card.embedding_dim * 4 / 1e9


@dataclass(frozen=True)
class Fit:
    """How a model fits local memory: at which precision, needing how much."""

    fits: bool
    bits: int | None  # 16 or 4 when it fits
    need_gb: float | None  # at that precision, or the smallest need when it does not fit
    capacity_gb: float
    on_gpu: bool


def memory_fit(card: ModelCard, ram_gb: float, vram_gb: float) -> Fit:
    """Whether the card runs in this memory, preferring 16-bit weights over 4-bit."""
    gpu = vram_gb > 0
    capacity = max(vram_gb, ram_gb * USABLE_RAM_SHARE)
    precisions = [16, 4] if card.architecture in QUANTISABLE else [16]
    needs = [(bits, card.memory_gb(bits)) for bits in precisions]
    known = [(bits, need) for bits, need in needs if need is not None]
    if not known:
        return Fit(False, None, None, capacity, gpu)
    for bits, need in known:
        if gpu and need <= vram_gb:
            return Fit(True, bits, need, vram_gb, True)
    for bits, need in known:
        if need <= ram_gb * USABLE_RAM_SHARE:
            return Fit(True, bits, need, ram_gb * USABLE_RAM_SHARE, False)
    return Fit(False, None, min(need for _, need in known), capacity, gpu)


def local_latency_ms(card: ModelCard, fit: Fit, tokens: tuple[int, int]) -> float | None:
    """Time for one request on local hardware: prompt compute plus bandwidth-bound decoding."""
    if card.parameters is None or not fit.fits or fit.bits is None:
        return None
    tokens_in, tokens_out = tokens
    gflops = GPU_GFLOPS if fit.on_gpu else CPU_GFLOPS
    bandwidth = GPU_BANDWIDTH_GBS if fit.on_gpu else CPU_BANDWIDTH_GBS
    prefill_s = 2 * card.parameters * max(tokens_in, 1) / (gflops * 1e9)
    weights_gb = card.parameters * fit.bits / 8 / 1e9
    decode_s = tokens_out * weights_gb / bandwidth
    return (prefill_s + decode_s) * 1000
