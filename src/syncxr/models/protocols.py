"""The written contracts of the networks: what the training job and the evaluation suites may call on
a model and its towers. A new model is one class (named by `model/*.yaml`'s `_target_`, built with
its two towers by models/build.py) that satisfies `VisionLanguageModel`; what the code needs to know
about it is declared (`has_local_maps`, `has_resnet_stages`), never probed for."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class ImageEncoder(Protocol):
    """An image tower: B x C x H x W images (C = 1 or 3) to B x `dim` global features."""

    dim: int  # width of the global feature
    local_dim: int  # channels of the local map of forward_features
    # True: `net` is a torchvision ResNet whose stages (conv1 .. layer4) may be run one by one (U-Net
    # segmentation, Grad-CAM at a stage), and forward_maps gives its third and last stage maps.
    has_resnet_stages: bool

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...

    def forward_features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(local map B x local_dim x h x w, global feature B x dim)."""
        ...


@runtime_checkable
class ResNetImageEncoder(ImageEncoder, Protocol):
    """An ImageEncoder with has_resnet_stages true."""

    net: nn.Module  # the torchvision ResNet

    def forward_maps(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(third-stage map, last-stage map)."""
        ...


@runtime_checkable
class TextEncoder(Protocol):
    """A text tower: token ids and attention mask (B x L) to B x `dim` sentence features; it carries
    the tokenizer of its checkpoint and the number of tokens it reads."""

    dim: int
    tokenizer: object  # a transformers tokenizer
    max_length: int

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor: ...

    def token_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, output_hidden_states: bool = False):
        """The transformer's output (last_hidden_state, and hidden_states when asked)."""
        ...


@runtime_checkable
class VisionLanguageModel(Protocol):
    """Two towers, a joint embedding space and the training loss.

    Called on (images, input_ids, attention_mask) in training mode it returns {"loss": scalar, ...}
    (further entries are logged); encode_image / encode_text give L2-normalised joint embeddings."""

    image_encoder: ImageEncoder
    text_encoder: TextEncoder
    # True: the model is a LocalMapModel (its own word-to-region maps: grounding, attention_maps.png).
    has_local_maps: bool

    @property
    def local_projection(self) -> nn.Module | None:
        """What maps each location of the image tower's last-stage map into the joint space (applied
        per location, for local-feature grounding); None: the map's features are used as they are."""
        ...

    def __call__(
        self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]: ...

    def encode_image(self, images: torch.Tensor) -> torch.Tensor: ...

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class LocalMapModel(VisionLanguageModel, Protocol):
    """A VisionLanguageModel with has_local_maps true (GLoRIA): word-to-region maps of its own."""

    def word_attention(self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """(maps B x T x h x w over each caption's words, zero past them; words per caption B; word
        index of each token B x L, -1 for tokens of no word)."""
        ...

    def word_similarity(
        self,
        images: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """B x h x w: each region's similarity with the caption's words that have a token in
        `token_mask` (B x L; None: every word)."""
        ...

    def final_conv_map(self, images: torch.Tensor) -> torch.Tensor:
        """B x h x w x D, not normalised: the image tower's final convolutional layer on the images as
        the model encodes them, each location projected into the joint space as its pooled feature is
        (zero-shot grounding by local features, the BioViL pipeline)."""
        ...
