"""Analyses of real and generated corpora: `python -m syncxr.analysis` (conf/analyze.yaml)."""
