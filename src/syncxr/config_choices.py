"""The values that string-valued config keys may take, in a module that imports nothing.

The modules that act on a key take its choices from here, and so do the entry points' checks
(`config_validation`). A refused config then costs no torch import, nor does a launcher
process that only submits jobs. Where a module maps each choice to something (a transform, a file
suffix), its dict keeps that mapping and tests/test_config_choices.py checks that the names agree.
"""

from __future__ import annotations

ANALYSES = ("curation", "long_tail", "figure4")  # analyze.py analyses=[...]
TEXT_MODES = ("report", "findings", "impression", "sentence")  # loader.text_mode
# A manifest or benchmark row whose image is missing or does not decode: fail naming it, or skip it.
ON_ERROR = ("raise", "skip")
RLE_MODES = ("relative", "absolute")  # benchmark.siim.options.rle: how the run-length pixel positions count
PIXEL_NORM_NAMES = ("standard", "unit", "half")  # loader.normalize (syncxr.data.transforms.PIXEL_NORMS)
IMAGE_FORMATS = ("jpeg", "png")  # image_format of a MIMIC-CXR conversion (syncxr.data.mimic_cxr.IMAGE_SUFFIX)
AUGMENTATION_NAMES = ("crop_jitter", "randaugment")  # task.*.augmentation (syncxr.eval.finetune.AUGMENTATIONS)
# The published definition (paper A.2): the final conv layer's cosine map, any model.
FINAL_CONV = "final_conv"
MAP_MODES = ("positive", "contrast", "occlusion", "gradcam", FINAL_CONV)  # task.zeroshot_grounding.map
ATTRIBUTION_MODES = ("occlusion", "gradcam")  # maps of where the global embedding finds the finding
ENSEMBLES = ("mean", "max")  # task.zeroshot_grounding.prompts.ensemble: how a prompt list's maps combine
REFERENCES = ("none", "normal")  # task.zeroshot_grounding.reference
TEXT_FIELDS = ("impression", "findings", "report")  # task.retrieval.datasets.*.text
PROTOCOLS = ("val", "paper")  # evaluation.protocol
DROP_RULES = ("all", "any")  # curation drop_if_no
PRECISIONS = ("no", "bf16", "fp16")  # trainer.precision
LAYER_AGGS = ("sum", "mean")  # model.layer_agg (GLoRIA)
POOLS = ("max", "mean", "cls")  # text_encoder.pool
MONITORS = ("train_loss", "val_loss")  # trainer.monitor
