"""The SynCXR generation pipeline: vocabulary -> entity plan -> reports -> images -> curation."""
