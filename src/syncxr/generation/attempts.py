"""dataset.json's `attempts`: how hard a generation's regeneration loops worked, and what that says
of the report LLM (how often its first answer held exactly the asked entities, what it made up)."""

from __future__ import annotations

import pandas as pd

SECTIONS = ("findings", "impression")


def attempt_stats(
    df: pd.DataFrame, planned: int, counters: dict, max_report_attempts: int, max_image_attempts: int
) -> dict:
    """How hard the regeneration loops worked (dataset.json's `attempts`): the share of planned samples
    dropped at an attempt cap or by curation (`drop_rate`, `dropped_samples`), and the mean LLM calls
    (FINDINGS and IMPRESSION together: 2 when both pass at once) and images drawn per kept sample,
    beside the caps; and the report LLM's quality, from the content `counters` of the finished
    samples: the share of sections whose first answer held exactly the asked entities, and the
    entities answers wrote that were not asked for (in all, and per rejected answer)."""
    first = sum(counters.get(f"{sec}_first_answers", 0) for sec in SECTIONS)
    rejected = sum(counters.get(f"{sec}_rejected", 0) for sec in SECTIONS)
    unasked = sum(counters.get(f"{sec}_unasked_entities", 0) for sec in SECTIONS)
    return {
        "first_attempt_exact_rate": sum(counters.get(f"{sec}_first_passed", 0) for sec in SECTIONS) / first
        if first
        else 0.0,
        "unasked_entities": int(unasked),
        "unasked_per_rejected_answer": unasked / rejected if rejected else 0.0,
        "dropped_samples": int(planned - len(df)),
        "drop_rate": float(1 - len(df) / planned) if planned else 0.0,
        "mean_report_attempts": float(df["report_attempts"].mean()) if len(df) else 0.0,
        "mean_image_attempts": float(df["image_attempts"].mean()) if len(df) else 0.0,
        "max_report_attempts": max_report_attempts,
        "max_image_attempts": max_image_attempts,
    }
