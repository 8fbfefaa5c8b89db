"""Report features for Figure 4 (conf/report_features): a transformers text encoder (Med-CPT in the
paper preset) or, in the phantom world, TF-IDF of the report words. Both embed a list of reports in
one call, so an embedder fitted on its input (TF-IDF) sees real and synthetic reports together."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from transformers import AutoModel, AutoTokenizer


class TfidfReportEmbedder:
    """TF-IDF vectors of the reports (scikit-learn), the vocabulary fitted on the texts of the call:
    training-free, so the phantom world needs no text model for the figure."""

    name = "tfidf"

    def __init__(self, max_features: int, min_df: int):
        self.max_features, self.min_df = max_features, min_df

    def embed(self, texts: list[str]) -> np.ndarray:
        vectorizer = TfidfVectorizer(max_features=self.max_features, min_df=self.min_df)
        try:
            return vectorizer.fit_transform(texts).toarray().astype(np.float32)
        except ValueError as e:  # e.g. no word in any report
            raise ValueError(f"report_features (tfidf): {e}") from e


class TransformersReportEmbedder:
    """A BERT-family encoder loaded with `AutoModel.from_pretrained(path)`; each report's embedding is
    the last hidden state of its [CLS] token (how MedCPT's encoders embed a text)."""

    name = "transformers"

    def __init__(self, path: str, max_length: int, batch_size: int, device: str | None = None):
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = AutoModel.from_pretrained(path).to(self.device).eval()
        self.max_length, self.batch_size = max_length, batch_size

    @torch.no_grad()
    def embed(self, texts: list[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), self.batch_size):
            enc = self.tokenizer(
                texts[i : i + self.batch_size],
                truncation=True,
                padding=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            out.append(self.model(**enc).last_hidden_state[:, 0].float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
