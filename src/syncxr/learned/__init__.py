"""Learned backends of the phantom world: a report LM, a NER and a text-to-image model trained here
on the phantom *real* corpus (never on synthetic sets), saved in the Hugging Face formats and loaded
by the very classes real checkpoints use (TransformersLLM, TransformersNER, DiffusersT2I). Each is
built on first use and cached under `cache_dir/models/` by the hash of its training config."""
