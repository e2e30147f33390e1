"""Prompt templates: zero-shot and few-shot rendering, chat forms, answer parsing."""
