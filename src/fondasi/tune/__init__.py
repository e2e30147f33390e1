"""Adapt pre-trained models: local fine-tuning methods and cloud fine-tuning jobs."""
