"""Rows to token ids: classification inputs, and prompt/completion pairs where only the
completion is learned (the prompt's labels are -100), through the chat template when the
model has one."""

from __future__ import annotations

from typing import Any

IGNORE = -100  # label value the loss skips


def classification(
    rows: list[dict[str, Any]], tokenizer: Any, labels: list[str], limit: int
) -> Any:
    """A ``datasets.Dataset`` of input ids and label indices."""
    from datasets import Dataset

    index = {name: i for i, name in enumerate(labels)}
    encoded = tokenizer([str(row["text"]) for row in rows], truncation=True, max_length=limit)
    return Dataset.from_dict(
        {**dict(encoded), "labels": [index[str(row["label"])] for row in rows]}
    )


def _turns(row: dict[str, Any]) -> tuple[list[dict[str, str]], str]:
    """The conversation before the answer, and the answer."""
    if "messages" in row:
        messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
        return messages[:-1], messages[-1]["content"]
    return [{"role": "user", "content": str(row["prompt"])}], str(row["completion"])


def prompt_and_answer(row: dict[str, Any], tokenizer: Any) -> tuple[str, str]:
    """The text the model reads and the text it must learn to write after it."""
    context, answer = _turns(row)
    end = tokenizer.eos_token or ""
    if not getattr(tokenizer, "chat_template", None):
        prompt = "\n".join(turn["content"] for turn in context) + "\n"
        return prompt, answer + end
    prompt = tokenizer.apply_chat_template(context, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(
        [*context, {"role": "assistant", "content": answer}], tokenize=False
    )
    # The template's own end-of-turn markers are part of what the model learns to write.
    return (prompt, full[len(prompt) :]) if full.startswith(prompt) else (prompt, answer + end)


def causal(rows: list[dict[str, Any]], tokenizer: Any, limit: int) -> Any:
    """A ``datasets.Dataset`` where only answer tokens carry labels."""
    from datasets import Dataset

    ids, labels = [], []
    for row in rows:
        prompt, answer = prompt_and_answer(row, tokenizer)
        head = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        tail = tokenizer(answer, add_special_tokens=False)["input_ids"]
        ids.append((head + tail)[:limit])
        labels.append(([IGNORE] * len(head) + tail)[:limit])
    return Dataset.from_dict(
        {"input_ids": ids, "attention_mask": [[1] * len(x) for x in ids], "labels": labels}
    )
