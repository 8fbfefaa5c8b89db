"""Zero-shot and fine-tuned evaluation, metrics."""
