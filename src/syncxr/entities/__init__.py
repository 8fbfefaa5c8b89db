"""Entity vocabulary, NER backends, balanced / long-tailed sampling, entity-ratio subsets."""
