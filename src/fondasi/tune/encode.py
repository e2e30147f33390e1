"""Rows to token ids: classification inputs; prompt/completion pairs where only the
completion is learned (the prompt's labels are -100), through the chat template when the
model has one; and encoder-decoder pairs (the prompt in, the completion as the target)."""

from __future__ import annotations

from typing import Any

IGNORE = -100  # label value the loss skips
SOFT = "teacher_probs"  # a row's teacher probabilities (distillation)


def classification(
    rows: list[dict[str, Any]], tokenizer: Any, labels: list[str], limit: int
) -> Any:
    """A ``datasets.Dataset`` of input ids and label indices."""
    from datasets import Dataset

    index = {name: i for i, name in enumerate(labels)}
    encoded = tokenizer([str(row["text"]) for row in rows], truncation=True, max_length=limit)
    columns = {**dict(encoded), "labels": [index[str(row["label"])] for row in rows]}
    if rows and SOFT in rows[0]:  # a teacher's probabilities, for distillation
        columns[SOFT] = [row[SOFT] for row in rows]
    return Dataset.from_dict(columns)


def turns(row: dict[str, Any]) -> tuple[list[dict[str, str]], str]:
    """The conversation before the answer, and the answer."""
    if "messages" in row:
        messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
        return messages[:-1], messages[-1]["content"]
    return [{"role": "user", "content": str(row["prompt"])}], str(row["completion"])


def prompt_and_answer(row: dict[str, Any], tokenizer: Any) -> tuple[str, str]:
    """The text the model reads and the text it must learn to write after it."""
    context, answer = turns(row)
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


def seq2seq(rows: list[dict[str, Any]], tokenizer: Any, limit: int) -> Any:
    """A ``datasets.Dataset`` of encoder inputs and decoder targets (T5, BART)."""
    from datasets import Dataset

    sources, targets = [], []
    for row in rows:
        context, answer = turns(row)
        # An encoder-decoder has no chat template: earlier turns are read as plain lines.
        sources.append("\n".join(turn["content"] for turn in context))
        targets.append(answer)
    encoded = tokenizer(sources, truncation=True, max_length=limit)
    answers = tokenizer(text_target=targets, truncation=True, max_length=limit)
    return Dataset.from_dict({**dict(encoded), "labels": answers["input_ids"]})
