"""Text-to-image backends and image curation (MLLM judge, embedding similarity to known-bad images)."""
