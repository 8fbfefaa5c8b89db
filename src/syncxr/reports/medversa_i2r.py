"""MedVersa (Zhou et al. 2024), the report generator of SynCXR's Table 4b ("real image, synthetic
report", paper §4.3, footnote 9: huggingface.co/hyzhou/MedVersa), run the way its public release
runs it. The release is not a transformers model: it is the `medomni` package shipped beside the
weights, loaded through its registry (`registry.get_model_class("medomni").from_pretrained(path)`),
and its report generation is a hand-built prompt around the image embeddings:

  image   RGB, resized to 224 x 224, CLIP mean/std normalisation, bfloat16, encoded by
          `model.encode_img` for modality "cxr" into 9 visual tokens
  prompt  "###Human:<img0>" + 9 x "<ImageHere>" + "</img0>" (the visual tokens, `model.prompt_wrap`),
          then "<context>{context}</context>{question}###Assistant:" (`model.prompt_concat`)
  decode  `model.llama_model.generate(inputs_embeds=...)` with the release's sampling settings; the
          answer is the text before the first "###"

Images of a batch share the prompt (same context and question), so they are generated together
without padding. The answer is a report; where it carries no FINDINGS/IMPRESSION heading (the
question asks for the findings) it is returned as the FINDINGS section.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .i2r_prompt import split_report
from .release_code import import_release, require_weights

INSTALL = (
    "MedVersa's code is published with its weights on the Hugging Face hub (hyzhou/MedVersa): clone "
    "that repository, create its environment (environment.yml) and set i2r.code_dir=<the clone> "
    "(or put it on PYTHONPATH)"
)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # official hyzhou/MedVersa utils.py (load_and_preprocess_image)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGE_SIZE = 224
VISUAL_TOKENS = 9  # the Swin map pooled to 3 x 3, one <ImageHere> each
STOP_TOKEN = 835  # "###" in MedVersa's Llama tokenizer: the release stops there
LEADING = (0, 1)  # <unk>, <s>: the release strips them from the start of the answer


def preprocess(images: list[np.ndarray]) -> torch.Tensor:
    """B x 1 x 3 x 224 x 224: each uint8 grayscale image as the release feeds an RGB one."""
    out = []
    for image in images:
        x = torch.from_numpy(np.ascontiguousarray(image)).float().div(255.0)[None, None]
        x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", antialias=True, align_corners=False)
        x = x.clamp(0, 1).expand(1, 3, IMAGE_SIZE, IMAGE_SIZE)
        mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        out.append((x - mean) / std)
    return torch.cat(out).unsqueeze(1)


def as_report(answer: str) -> str:
    """The answer as a report with headed sections: unheaded text is the FINDINGS section."""
    answer = answer.strip()
    if not answer or split_report(answer) is not None:
        return answer
    return f"FINDINGS: {answer}"


class MedVersaI2R:
    name = "medversa"
    reads_labels = False

    def __init__(
        self,
        path: str | None,
        *,
        code_dir: str | None,
        context: str,
        question: str,
        batch_size: int,
        sampling: dict,
        device: str | None = None,
    ):
        path = require_weights(path, backend="MedVersa", key="i2r.path", hint="e.g. hyzhou/MedVersa, gated")
        registry = import_release("medomni.common.registry", backend="MedVersa", code_dir=code_dir, install=INSTALL)
        import_release("medomni.models", backend="MedVersa", code_dir=code_dir, install=INSTALL)  # registers "medomni"
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model_cls = registry.registry.get_model_class("medomni")
        self.model = model_cls.from_pretrained(path).to(self.device).eval()
        self.prefix = "###Human:<img0>" + "<ImageHere>" * VISUAL_TOKENS + "</img0>"
        self.prompt = f"<context>{context}</context>{question}###Assistant:"
        self.batch_size, self.sampling = batch_size, dict(sampling)
        self.calls = 0

    def _embeds(self, pixels: torch.Tensor) -> torch.Tensor:
        """The prompt's input embeddings for a batch of preprocessed images (the release's order)."""
        model, n = self.model, pixels.shape[0]
        img, atts, _ = model.encode_img(pixels, ["cxr"] * n)
        img, atts = model.prompt_wrap(img, atts, [self.prefix] * n, [1] * n)
        tokens = model.llama_tokenizer(self.prompt, return_tensors="pt", add_special_tokens=False).to(self.device)
        embeds, _ = model.prompt_concat(img, atts, tokens)
        return embeds

    def _decode(self, sequence: torch.Tensor) -> str:
        ids = sequence.tolist()
        eos = self.model.llama_tokenizer.eos_token_id
        if eos in ids:  # a finished row of a batch is padded after its end
            ids = ids[: ids.index(eos)]
        while ids and ids[0] in LEADING:
            ids = ids[1:]
        text = self.model.llama_tokenizer.decode(ids, add_special_tokens=False)
        return as_report(text.split("###")[0].split("Assistant:")[-1])

    @torch.no_grad()
    def describe(self, images: list[np.ndarray], seeds: list[int]) -> list[str]:
        if len(images) != len(seeds):
            raise ValueError(f"medversa i2r: {len(images)} images but {len(seeds)} seeds")
        out: list[str] = []
        eos = [t for t in (self.model.llama_tokenizer.eos_token_id, STOP_TOKEN) if t is not None]
        for i in range(0, len(images), self.batch_size):
            pixels = preprocess(images[i : i + self.batch_size]).to(self.device, torch.bfloat16)
            torch.manual_seed(int(seeds[i]))  # a retry (new seeds) samples new reports
            with torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16):
                generated = self.model.llama_model.generate(
                    inputs_embeds=self._embeds(pixels), eos_token_id=eos, **self.sampling
                )
            out.extend(self._decode(s) for s in generated)  # only the new tokens: the input was embeddings
            self.calls += pixels.shape[0]
        return out

    def counters(self) -> dict:
        return {"i2r_calls": self.calls}
