"""Dataset format, paired image-text datasets, mixing and transforms."""
