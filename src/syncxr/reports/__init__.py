"""LLM backends and the FINDINGS/IMPRESSION loop with NER checks."""
