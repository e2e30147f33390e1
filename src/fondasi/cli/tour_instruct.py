"""The tour's step for what a classifier cannot do: an instruct model and speech, locally.

One informal Indonesian customer message goes through the packaged instruct model three
ways: a ticket as JSON held to a schema while decoding, a reply in Indonesian, and a call to
an order-tracking tool. Then the bundled Whisper base transcribes an Indonesian clip. Each
part says why it is there; a part the small model gets wrong, or that fails, says so, and
the tour goes on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fondasi.cli._render import console, esc
from fondasi.settings import Settings

if TYPE_CHECKING:
    from fondasi.models.handle import Model

Step = Callable[[int, str, str], None]  # the tour's heading: number, title, why

ORDER = "INV-20931"
MESSAGE = (
    f"Halo kak, saya Rina. Pesanan {ORDER} belum sampai sudah 5 hari, tolong dicek ya. Makasih"
)
TICKET: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "order_id": {"type": "string", "maxLength": 20},
        "problem": {"enum": ["not_arrived", "damaged", "wrong_item", "refund", "other"]},
        "urgency": {"enum": ["low", "medium", "high"]},
    },
    "required": ["name", "order_id", "problem", "urgency"],
}
AGENT = (
    "Anda agen layanan pelanggan toko online yang sopan. "
    "Jawab selalu dalam Bahasa Indonesia, singkat."
)
# One example turn: told only to be polite, the 0.5B model answers as if it were the
# customer or repeats the message; one worked reply shows it the greeting, the apology and
# the order number, without scripting this customer's answer.
EXAMPLE = [
    {"role": "user", "content": "Permisi, saya Budi. Barang pesanan INV-10457 datang pecah."},
    {
        "role": "assistant",
        "content": "Halo Kak Budi, mohon maaf atas kendalanya. Pesanan INV-10457 segera kami "
        "cek dan kami kabari secepatnya ya.",
    },
]
LACAK = {
    "type": "function",
    "function": {
        "name": "lacak_pesanan",
        "description": "Lacak status pengiriman pesanan dari nomor pesanan.",
        "parameters": {
            "type": "object",
            "properties": {
                "nomor_pesanan": {"type": "string", "description": "Nomor pesanan, mis. INV-12345"}
            },
            "required": ["nomor_pesanan"],
        },
    },
}
# Few tokens: each one costs about 0.2 s on a laptop CPU. The ticket needs about 36 and the
# tool call about 28; a two-sentence reply fits in 60.
TICKET_TOKENS, REPLY_TOKENS, CALL_TOKENS = 60, 60, 40
CLIP = "speech/id-02.ogg"  # a row of the bundled eval-speech-id set: a parcel to send


def instruct_and_speech(settings: Settings, number: int, step: Step) -> None:
    """Tour step NUMBER: the instruct model fills JSON, replies, calls a tool; Whisper listens."""
    started = time.perf_counter()
    step(
        number,
        "Beyond labels: an instruct model reads, answers and calls a tool; Whisper listens",
        "A classifier gives a message one label. The local instruct model "
        f"({settings.chat_model}, on this machine, nothing sent anywhere) can fill a ticket, "
        "write the reply and decide to call one of your functions; Whisper base turns speech "
        "into text. One customer message, greedy decoding, a few dozen tokens each.",
    )
    console.print(f"  customer: [bold]{esc(MESSAGE)}[/]", soft_wrap=True)
    model = _loaded(settings)
    if model is not None:
        for part in (_ticket, _reply, _tool_call):
            _attempt(part, model)
    _attempt(_speech, settings)
    console.print(f"[dim]({time.perf_counter() - started:.0f} s for this step)[/]")


def _attempt(part: Callable[[Any], None], subject: Any) -> None:
    # A tour shows what a small model does, wrong answers included: one part failing
    # (an answer that does not parse, a missing package) is reported in a line and the tour goes on.
    try:
        part(subject)
    except Exception as exc:  # any failure is shown, not raised
        console.print(
            f"  [yellow]this part failed: {esc(type(exc).__name__)}: {esc(str(exc)[:300])}[/]"
            " — the tour goes on.",
            soft_wrap=True,
        )


def _loaded(settings: Settings) -> Model | None:
    """The chat model, after saying how long its first load takes; None if it cannot load."""
    from fondasi.models.load import load

    console.print(
        f"[dim]Loading {esc(settings.chat_model)}. A packaged GGUF model's first load "
        "dequantises its weights into the cache (about a minute, once); later loads take "
        "seconds.[/]",
        soft_wrap=True,
    )
    began = time.perf_counter()
    try:
        model = load(settings.chat_model, settings)
    except Exception as exc:  # the speech part still runs
        console.print(
            f"  [yellow]{esc(settings.chat_model)} did not load: {esc(str(exc)[:300])}[/]"
            " — skipping to speech.",
            soft_wrap=True,
        )
        return None
    console.print(f"[dim](loaded in {time.perf_counter() - began:.0f} s)[/]")
    return model


def _part(letter: str, title: str, why: str) -> None:
    console.print(f"\n [bold]{letter}. {esc(title)}[/] — {esc(why)}", soft_wrap=True)


def _cost(answer: Any) -> str:
    return f"[dim]({answer.usage.completion_tokens} tokens, {answer.seconds:.1f} s)[/]"


def _ticket(model: Model) -> None:
    _part(
        "a",
        "Extraction to JSON",
        "the decoder may only write tokens the schema allows, so the answer always parses "
        "and the category is one of yours.",
    )
    fields: dict[str, Any] = TICKET["properties"]
    listed = [
        f"{key} ∈ {{{', '.join(spec['enum'])}}}" if "enum" in spec else key
        for key, spec in fields.items()
    ]
    console.print(f"    schema: {esc(', '.join(listed))}", soft_wrap=True)
    answer = model.generate(
        MESSAGE,
        system="Extract the support ticket from the customer's message.",
        json_schema=TICKET,
        max_tokens=TICKET_TOKENS,
        temperature=0,
    )
    if answer.parsed is None:  # cut short by max_tokens: no whole JSON value came back
        console.print(
            f"    [yellow]cut off after {TICKET_TOKENS} tokens:[/] {esc(answer.text)}",
            soft_wrap=True,
        )
        return
    shown = json.dumps(answer.parsed, ensure_ascii=False)
    console.print(f"    [bold]{esc(shown)}[/] {_cost(answer)}", soft_wrap=True)
    if answer.parsed.get("order_id") != ORDER:
        console.print(f"    [yellow]wrong order id: the message says {ORDER}[/]")


def _reply(model: Model) -> None:
    _part(
        "b",
        "A reply in Indonesian",
        "a system prompt makes it a polite customer-service agent; one example turn shows "
        "the tone.",
    )
    turns = [*EXAMPLE, {"role": "user", "content": MESSAGE}]
    answer = model.generate(turns, system=AGENT, max_tokens=REPLY_TOKENS, temperature=0)
    text = answer.text.strip()
    if not text:
        console.print("    [yellow]the model wrote nothing[/]")
        return
    cut = " [yellow](cut at the token limit)[/]" if answer.finish_reason == "length" else ""
    console.print(f"    [bold]{esc(text)}[/]{cut} {_cost(answer)}", soft_wrap=True)


def _tool_call(model: Model) -> None:
    _part(
        "c",
        "A tool call",
        "offered lacak_pesanan(nomor_pesanan), the model decides on its own (tool_choice "
        "auto) to call it, with the argument read from the message; your code runs it.",
    )
    answer = model.generate(
        MESSAGE,
        system=AGENT,
        tools=[LACAK],
        tool_choice="auto",
        max_tokens=CALL_TOKENS,
        temperature=0,
    )
    if not answer.tool_calls:
        console.print(
            f"    [yellow]no call; it answered in text:[/] {esc(answer.text.strip())}",
            soft_wrap=True,
        )
        return
    for call in answer.tool_calls:
        args = ", ".join(
            f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in call.args.items()
        )
        console.print(f"    [bold]{esc(call.name)}({esc(args)})[/] {_cost(answer)}")
        if call.args.get("nomor_pesanan") != ORDER:
            console.print(f"    [yellow]wrong argument: the message says {ORDER}[/]")


def _speech(settings: Settings) -> None:
    from fondasi.cli.transcribe import DEFAULT_MODEL
    from fondasi.data import bundled, read_jsonl
    from fondasi.models.load import load

    _part(
        "d",
        "Speech in one line",
        f"{DEFAULT_MODEL} transcribes a bundled clip (synthetic espeak speech); told the "
        "language, because on this robotic Indonesian it guesses wrong.",
    )
    data = bundled("eval-speech-id")
    said = next(row["reference"] for row in read_jsonl(data) if row["audio"] == CLIP)
    audio = data.parent / CLIP
    began = time.perf_counter()
    result = load(DEFAULT_MODEL, settings).transcribe(audio, language="id")
    took = time.perf_counter() - began
    console.print(f"    said:  {esc(said)}", soft_wrap=True)
    console.print(
        f"    heard: [bold]{esc(result.text.strip())}[/] [dim]({result.duration or 0:.1f} s of "
        f"audio, {took:.1f} s to load and transcribe)[/]",
        soft_wrap=True,
    )
    console.print(f"    try:   fondasi transcribe {esc(str(audio))} --language id", soft_wrap=True)
