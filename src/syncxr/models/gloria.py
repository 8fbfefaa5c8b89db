"""GLoRIA (Huang et al., 2021): global and local (word-to-region) image-text contrastive learning.

Image side: the backbone's local map (ResNet-50's third stage: 1024 x 19 x 19 at 299 px) through a
1x1 convolution, and its global feature through a linear layer, both into the joint space. Text
side: the sum (or mean) of the last four BERT layers; word features merge WordPiece pieces into
their word (summed, as published); the sentence feature is the mean over the caption's tokens.
Special tokens and punctuation are not words (the published preprocessing strips punctuation).

Trained by W processes (DDP), both losses see the negatives of every rank: the global and local
features of the whole W*b batch are gathered (with gradient) and every rank computes the losses of
that batch, as one process at batch W*b does (syncxr.launch.data_parallel). The local loss's cost
and memory are then those of batch W*b on every rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config_choices import LAYER_AGGS
from ..launch.data_parallel import gather_rows
from .gloria_loss import LocalLossSettings, Workspace, global_loss, local_loss_packed, matched_attention, pad_words
from .protocols import ImageEncoder, TextEncoder

WORD, PIECE, SKIP = 0, 1, 2  # token kinds: starts a word, continues one (WordPiece "##"), no word


def word_piece_kinds(tokenizer, vocab_size: int | None = None) -> torch.Tensor:
    """Kind of every vocabulary id (uint8): WORD, PIECE or SKIP (special tokens, punctuation)."""
    vocab = tokenizer.get_vocab()
    kinds = torch.full((max(vocab_size or 0, max(vocab.values()) + 1),), WORD, dtype=torch.uint8)
    special = set(tokenizer.all_special_ids)
    for token, i in vocab.items():
        if i in special or not any(ch.isalnum() for ch in token):
            kinds[i] = SKIP
        elif token.startswith("##"):
            kinds[i] = PIECE
    return kinds


def merge_word_pieces(
    states: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor, kinds: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token states B x L x H -> (words N x H packed caption by caption, each the sum of its pieces;
    words per caption B; word index of each token within its caption B x L, -1 for none)."""
    kind = kinds[input_ids].long().masked_fill(attention_mask == 0, SKIP)
    prev = F.pad(kind[:, :-1], (1, 0), value=SKIP)
    start = (kind == WORD) | ((kind == PIECE) & (prev == SKIP))  # a stray piece starts a word
    keep = kind != SKIP
    index = torch.cumsum(start.flatten().long(), 0).view_as(kind) - 1  # global word index
    lengths = start.sum(1)
    words = states.new_zeros(int(lengths.sum()), states.shape[-1]).index_add(0, index[keep], states[keep])
    offsets = torch.cumsum(lengths, 0) - lengths
    word_of_token = (index - offsets[:, None]).masked_fill(~keep, -1)
    return words, lengths, word_of_token


@dataclass(frozen=True)
class GLoRIASettings:
    """GLoRIA's keys of conf/model/gloria.yaml (the towers aside)."""

    embed_dim: int | None  # joint space size; None: the text encoder's hidden size
    image_size_model: int | None  # images resized to this inside the model; None: as loaded
    last_n_layers: int  # text layers aggregated into token features
    layer_agg: str  # sum | mean over those layers
    temp1: float
    temp2: float
    temp3: float
    local_weight: float
    global_weight: float
    divide_by_temp2: bool

    def __post_init__(self):
        if self.layer_agg not in LAYER_AGGS:
            raise ValueError(f"GLoRIA layer_agg must be one of {LAYER_AGGS}, got {self.layer_agg!r}")
        if self.last_n_layers < 1:
            raise ValueError(f"GLoRIA last_n_layers must be >= 1, got {self.last_n_layers}")
        if min(self.temp1, self.temp2, self.temp3) <= 0:
            raise ValueError(f"GLoRIA temperatures must be > 0, got {self.temp1}, {self.temp2}, {self.temp3}")


class GLoRIA(nn.Module):
    """A LocalMapModel (models/protocols.py): word-to-region maps of its own."""

    has_local_maps = True
    settings_type = GLoRIASettings  # what the config's keys beside the towers build (tests/test_configs.py)

    def __init__(self, image_encoder: ImageEncoder, text_encoder: TextEncoder, **settings):
        """`settings`: the fields of GLoRIASettings, as the model config gives them."""
        super().__init__()
        s = GLoRIASettings(**settings)
        self.image_encoder, self.text_encoder = image_encoder, text_encoder
        dim = s.embed_dim or text_encoder.dim  # the paper: BERT's 768, no text projection
        self.global_embedder = nn.Linear(image_encoder.dim, dim)
        self.local_embedder = nn.Conv2d(image_encoder.local_dim, dim, kernel_size=1, bias=False)
        project = dim != text_encoder.dim
        self.word_embedder = nn.Linear(text_encoder.dim, dim) if project else nn.Identity()
        self.sentence_embedder = nn.Linear(text_encoder.dim, dim) if project else nn.Identity()
        # Which vocabulary ids start a word, continue one or are no word (from the text tower's tokenizer).
        kinds = word_piece_kinds(text_encoder.tokenizer, text_encoder.model.config.vocab_size)
        self.register_buffer("token_kinds", kinds, persistent=False)
        self.image_size_model, self.last_n_layers = s.image_size_model, s.last_n_layers
        self.layer_agg = s.layer_agg
        self.temp1, self.temp3 = s.temp1, s.temp3
        self.local_loss_settings = LocalLossSettings(s.temp1, s.temp2, s.temp3, s.divide_by_temp2)
        self.local_weight, self.global_weight = s.local_weight, s.global_weight
        self._workspace = Workspace()  # the local loss's scratch memory, kept between steps

    @property
    def local_projection(self) -> nn.Module:
        return self.global_embedder  # what projects the pooled last stage, applied per location

    def _model_input(self, images: torch.Tensor) -> torch.Tensor:
        size = self.image_size_model
        if size and images.shape[-2:] != (size, size):  # the paper upsamples to 299 px
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=True)
        return images

    def image_features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(local B x D x h x w, global B x D) in the joint space, before normalisation."""
        local, pooled = self.image_encoder.forward_features(self._model_input(images))
        return self.local_embedder(local), self.global_embedder(pooled)

    def final_conv_map(self, images: torch.Tensor) -> torch.Tensor:
        """B x h x w x D: the last ResNet stage (not the third, which the local loss uses) at the
        model's input size, each location through the global embedder; its mean over the locations
        is the global image feature before normalisation (the embedder is linear)."""
        if not self.image_encoder.has_resnet_stages:
            raise ValueError(
                f"{type(self.image_encoder).__name__} has no ResNet stage maps: final-conv grounding "
                "(task.zeroshot_grounding.map=final_conv) needs a ResNet image encoder"
            )
        _, last = self.image_encoder.forward_maps(self._model_input(images))
        return self.global_embedder(last.permute(0, 2, 3, 1))

    def _layer_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token states B x L x H: the sum (or mean) of the last `last_n_layers` layers."""
        out = self.text_encoder.token_states(input_ids, attention_mask, output_hidden_states=True)
        layers = torch.stack(out.hidden_states[-self.last_n_layers :])
        return layers.sum(0) if self.layer_agg == "sum" else layers.mean(0)

    def _sentence(self, states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        return self.sentence_embedder((states * mask).sum(1) / mask.sum(1).clamp_min(1.0))

    def text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """(words N x D packed, words per caption B, word index of each token B x L, sentence B x D)."""
        states = self._layer_states(input_ids, attention_mask)
        words, lengths, word_of_token = merge_word_pieces(states, input_ids, attention_mask, self.token_kinds)
        if bool((lengths == 0).any()):
            empty = torch.nonzero(lengths == 0).flatten().tolist()
            raise ValueError(
                f"captions {empty} of the batch have no word tokens (only special tokens "
                "or punctuation); GLoRIA's local loss needs at least one word per caption"
            )
        return self.word_embedder(words), lengths, word_of_token, self._sentence(states, attention_mask)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_features(images)[1], dim=-1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self._layer_states(input_ids, attention_mask)
        return F.normalize(self._sentence(states, attention_mask), dim=-1)

    def forward(self, images, input_ids, attention_mask) -> dict[str, torch.Tensor]:
        local, pooled = self.image_features(images)
        words, lengths, _, sentence = self.text_features(input_ids, attention_mask)
        if self.training:  # the batches of all ranks (identity in one process); every rank trains
            local, pooled, sentence = gather_rows(local), gather_rows(pooled), gather_rows(sentence)
            words, lengths = gather_rows(words), gather_rows(lengths)
        g_i2t, g_t2i = global_loss(pooled.float(), sentence.float(), self.temp3)
        l_i2t, l_t2i, _ = local_loss_packed(local, words, lengths, self.local_loss_settings, workspace=self._workspace)
        global_l, local_l = g_i2t + g_t2i, l_i2t + l_t2i
        loss = self.local_weight * local_l + self.global_weight * global_l
        return {"loss": loss, "global_loss": global_l.detach(), "local_loss": local_l.detach()}

    def word_attention(self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """Each word's attention over its own image's regions, as the local loss computes it.

        Returns (maps B x T x h x w, zero past a caption's words; words per caption B; word index of
        each token B x L, -1 for special tokens and punctuation).
        """
        local, _ = self.image_features(images)
        words, lengths, word_of_token, _ = self.text_features(input_ids, attention_mask)
        maps = matched_attention(local.float(), words.float(), lengths, self.temp1)
        return pad_words(maps, lengths), lengths, word_of_token

    def word_similarity(
        self,
        images: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """B x h x w: cosine of each region's local feature with the mean of the caption's selected
        words (those with a token in `token_mask`, B x L; None: every word), the word-region
        similarity the local loss is built on, before its attention softmaxes."""
        local, _ = self.image_features(images)
        words, lengths, word_of_token, _ = self.text_features(input_ids, attention_mask)
        padded = pad_words(F.normalize(words.float(), dim=-1), lengths)  # B x T x D
        chosen = torch.arange(padded.shape[1], device=padded.device) < lengths[:, None]
        if token_mask is not None:
            picked = torch.zeros_like(chosen)
            rows, cols = torch.nonzero(token_mask.bool() & (word_of_token >= 0), as_tuple=True)
            picked[rows, word_of_token[rows, cols]] = True
            if not bool(picked.any(1).all()):
                raise ValueError("word_similarity: a caption has no word among the tokens of token_mask")
            chosen = picked
        query = F.normalize((padded * chosen[..., None]).sum(1), dim=-1)  # B x D
        return torch.einsum("bd,bdhw->bhw", query, F.normalize(local.float(), dim=1))
