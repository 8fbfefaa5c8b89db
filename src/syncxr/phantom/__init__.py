"""The phantom world: procedurally drawn chest radiographs and reports with full ground truth."""
