"""A token-classification NER through `transformers` (RaTE-NER in the paper preset).

Labels are RaTE types, optionally BIO-prefixed ("B-ABNORMALITY", "I-ANATOMY", ...); the pipeline's
`simple` aggregation joins sub-word pieces and B/I runs into entity spans.
"""

from __future__ import annotations

from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

from ..phantom.vocabulary import ENTITY_TYPES


class TransformersNER:
    name = "transformers"
    quality: dict = {}  # held-out figures of a model trained here (syncxr.learned.ner); empty otherwise

    def __init__(self, path: str, batch_size: int, device: int | str | None = None):
        model = AutoModelForTokenClassification.from_pretrained(path)
        labels = {tag.split("-", 1)[-1] for tag in model.config.id2label.values()} - {"O"}
        unknown = labels - set(ENTITY_TYPES)
        if unknown:
            raise ValueError(f"{path}: labels {sorted(unknown)} are not RaTE entity types {ENTITY_TYPES}")
        self.pipe = pipeline(
            "token-classification",
            model=model,
            tokenizer=AutoTokenizer.from_pretrained(path),
            aggregation_strategy="simple",
            device=device,
        )
        self.batch_size = batch_size

    @staticmethod
    def _records(spans) -> list[dict]:
        out: list[dict] = []
        for s in spans:
            item = {"name": s["word"].strip().lower(), "type": s["entity_group"]}
            if item["name"] and item not in out:
                out.append(item)
        return out

    def extract(self, text: str) -> list[dict]:
        return self.extract_batch([text])[0]

    def extract_batch(self, texts: list[str]) -> list[list[dict]]:
        return [self._records(spans) for spans in self.pipe(list(texts), batch_size=self.batch_size)]
