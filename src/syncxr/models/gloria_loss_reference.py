"""GLoRIA's local loss as published: one caption at a time (Huang et al., 2021).

Kept as the ground truth that the vectorised `gloria_loss.local_loss` is tested and benchmarked
against. For each caption i, its words attend over the regions of every image j in the batch
(softmax over the caption's words, then temp1 x softmax over regions), each word is compared with
its attention-weighted context by cosine, and the word scores are aggregated into a score s[j, i].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def local_loss_reference(
    region_feats: torch.Tensor,
    word_feats: torch.Tensor,
    caption_lengths,
    temp1: float = 4.0,
    temp2: float = 5.0,
    temp3: float = 10.0,
    divide_by_temp2: bool = True,
    eps: float = 1e-8,
):
    """region_feats B x D x H x W, word_feats B x D x T (captions padded to T words),
    caption_lengths B. Returns (loss image->text, loss text->image, attention maps), the maps a
    list of n_i x H x W tensors: caption i's words over image i's regions."""
    b, d, h, w = region_feats.shape
    regions = region_feats.reshape(b, d, h * w)  # B x D x S
    columns, maps = [], []
    for i in range(word_feats.shape[0]):
        n = int(caption_lengths[i])
        words = word_feats[i, :, :n]  # D x n
        attn = regions.transpose(1, 2) @ words  # B x S x n: every image's regions vs these words
        attn = attn.softmax(dim=-1)  # over the caption's words
        attn = (temp1 * attn.transpose(1, 2)).softmax(dim=-1)  # B x n x S: over the regions
        context = regions @ attn.transpose(1, 2)  # B x D x n: attention-weighted region feature
        cos = (context * words).sum(1) / (context.norm(dim=1) * words.norm(dim=0)).clamp_min(eps)
        score = torch.log(torch.exp(temp2 * cos).sum(dim=1))  # B: image j vs caption i
        columns.append(score / temp2 if divide_by_temp2 else score)
        maps.append(attn[i].reshape(n, h, w))
    logits = torch.stack(columns, dim=1) * temp3  # rows: images, columns: captions
    labels = torch.arange(b, device=logits.device)
    return F.cross_entropy(logits, labels), F.cross_entropy(logits.t(), labels), maps
