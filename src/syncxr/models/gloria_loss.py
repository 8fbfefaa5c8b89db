"""GLoRIA's losses (Huang et al., 2021): global and local image-text contrastive losses.

The local loss is the published one (`gloria_loss_reference.local_loss_reference` computes it a
caption at a time) computed for all captions at once: the words of all captions are packed into one
N x D matrix (no padded word is ever touched) and scored against every region of every image in one
matrix product. Beyond that, it does less arithmetic than the published loop:

- The cosine of a word e and its attention-weighted context c = sum_s p_s v_s needs <c, e> and |c|.
  <c, e> = sum_s p_s <v_s, e> reuses the word-region scores, so no context vector is formed for it;
  |c|^2 = p^T G p with each image's Gram matrix G = V V^T costs S^2 instead of S*D per word and
  image (S = 361 regions < D = 768 channels in the paper). Together with a hand-written backward
  pass that is 3 products of N x B*S x D (the scores and their two gradients, which any exact
  method needs) plus the cheaper Gram terms, where the loop does 6 (it also forms the contexts).
- The backward pass uses closed forms that autograd would recompute (e.g. sum_s p_s dL/dp_s of the
  region softmax is dnum <c, e> + 2 dsq |c|^2, both known), works in the forward's buffers in place
  and keeps them in a `Workspace` for the next call: on the CPU, fresh tensors of hundreds of MB
  cost more in page faults than the arithmetic done in them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _float(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def global_loss(
    image_emb: torch.Tensor, text_emb: torch.Tensor, temp3: float = 10.0, eps: float = 1e-8
) -> tuple[torch.Tensor, torch.Tensor]:
    """(image->text, text->image) cross-entropy over temp3 x cosine similarities (B x D each)."""
    with torch.autocast(image_emb.device.type, enabled=False):
        image_emb, text_emb = _float(image_emb), _float(text_emb)
        norms = image_emb.norm(dim=1, keepdim=True) * text_emb.norm(dim=1, keepdim=True).t()
        logits = image_emb @ text_emb.t() / norms.clamp_min(eps) * temp3
        labels = torch.arange(len(logits), device=logits.device)
        return F.cross_entropy(logits, labels), F.cross_entropy(logits.t(), labels)


def _segment_sum(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Sums the rows of x (N x M) caption by caption (`lengths` rows each). Unlike index_add_,
    segment_reduce keeps its speed when other processes compete for the cores."""
    return torch.segment_reduce(x, "sum", lengths=lengths, axis=0, unsafe=True)


def _segment_max(x: torch.Tensor, caption: torch.Tensor, n_captions: int) -> torch.Tensor:
    """Maximum of the rows of x (N x M) caption by caption."""
    # index_reduce_ is flagged beta, but faster than segment_reduce (docs/measurements.md#gloria-per-caption-max)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return x.new_full((n_captions, x.shape[1]), float("-inf")).index_reduce_(0, caption, x, "amax")


def _use_gram(n_words: int, n_regions: int, dim: int) -> bool:
    """Whether |c|^2 = p^T G p (Gram matrices) costs fewer flops than forming the contexts c."""
    gram = 4 * n_regions * n_regions * (dim + n_words)  # G and its gradient, G p and dG, per image
    explicit = 6 * n_words * n_regions * dim  # c = P V, then dP and dV from dc, per image
    return gram < explicit


class Workspace:
    """Scratch memory kept between calls of the local loss (the GLoRIA model holds one).

    On the CPU a fresh tensor of hundreds of MB costs more in page faults than the arithmetic done
    in it. A call borrows the memory until its backward pass ends (or its forward, without
    gradients); a call that finds it lent out, or too small, allocates afresh.
    """

    def __init__(self):
        self._flat: torch.Tensor | None = None

    def borrow(self, numel: int, like: torch.Tensor) -> torch.Tensor:
        flat, self._flat = self._flat, None
        if flat is None or flat.numel() < numel or flat.dtype != like.dtype or flat.device != like.device:
            flat = torch.empty(numel, dtype=like.dtype, device=like.device)
        return flat

    def give_back(self, flat: torch.Tensor) -> None:
        if self._flat is None or self._flat.numel() < flat.numel():
            self._flat = flat


@dataclass(frozen=True)
class LocalLossSettings:
    """The local loss's constants (the paper's defaults)."""

    temp1: float = 4.0  # sharpness of each word's attention over regions
    temp2: float = 5.0  # word-score aggregation, log(sum_w exp(temp2 cos_w))
    temp3: float = 10.0  # logit scale of the contrastive loss
    divide_by_temp2: bool = True  # the paper's equation divides the aggregate by temp2; False: the released code
    eps: float = 1e-8  # floor of the cosine's denominator


@dataclass(frozen=True)
class _ScoreOptions:
    """How `_LocalScores` runs: the attention's temp1, the |c|^2 strategy, the scratch memory, and
    whether a backward pass will follow (its buffers are then kept)."""

    temp1: float
    gram: bool
    workspace: Workspace
    backward: bool


class _LocalScores(torch.autograd.Function):
    """For word w (of caption i) and image j: num[w, j] = <c_wj, e_w> and sq[w, j] = |c_wj|^2, where
    c_wj is the attention-weighted sum of image j's regions (softmax over caption i's words, then
    temp1 x softmax over regions). Also returns each word's attention over its own image (N x S).

    Layout: word-major, N x (B*S), so each caption's words are a run of rows. The backward pass
    overwrites the saved buffers, so it can run only once per forward.
    """

    @staticmethod
    def forward(ctx, words, regions, lengths, caption, options: _ScoreOptions):
        temp1, gram, workspace, backward = options.temp1, options.gram, options.workspace, options.backward
        n, d = words.shape
        b, s, _ = regions.shape
        m = b * s
        flat = workspace.borrow(5 * n * m, words)  # scores, p1, p2, G p (Gram path), scratch
        scores, p1, p2, aux, tmp = (flat[k * n * m : (k + 1) * n * m] for k in range(5))
        scores = torch.mm(words, regions.view(m, d).t(), out=scores.view(n, m))  # all words x all regions
        # Softmax over each caption's words, region by region, shifted by the caption's maximum.
        p1 = torch.index_select(_segment_max(scores, caption, b), 0, caption, out=p1.view(n, m))
        torch.sub(scores, p1, out=p1).exp_()
        norm = _segment_sum(p1, lengths).reciprocal_().mul_(temp1)
        p1.mul_(torch.index_select(norm, 0, caption, out=p2.view(n, m)))  # temp1 x the word softmax
        a, p2 = scores.view(n, b, s), torch.softmax(p1.view(n, b, s), -1, out=p2.view(n, b, s))
        num = torch.einsum("nbs,nbs->nb", p2, a)  # <c, e> = sum_s p2 <v_s, e>: no context needed
        tmp = tmp.view(n, b, s)
        if gram:
            aux = torch.bmm(p2.transpose(0, 1), regions @ regions.transpose(1, 2), out=aux.view(b, n, s))
            sq = torch.mul(p2, aux.transpose(0, 1), out=tmp).sum(-1)
        else:
            aux = torch.bmm(p2.transpose(0, 1), regions)  # B x N x D: the contexts c
            sq = aux.square().sum(-1).t()
        maps = p2[torch.arange(n, device=caption.device), caption]
        ctx.mark_non_differentiable(maps)
        if backward:  # keep the buffers for it
            ctx.save_for_backward(words, regions, lengths, caption, scores, p1, p2, aux, num, sq)
            ctx.flat, ctx.tmp, ctx.workspace = flat, tmp, workspace
            ctx.temp1, ctx.gram, ctx.spent = temp1, gram, False
        else:
            workspace.give_back(flat)
        return num, sq, maps

    @staticmethod
    def backward(ctx, dnum, dsq, _):
        if ctx.spent:
            raise RuntimeError("GLoRIA's local loss reuses its buffers: backward can run only once")
        ctx.spent = True
        words, regions, lengths, caption, scores, p1, p2, aux, num, sq = ctx.saved_tensors
        n, d = words.shape
        b, s, _ = regions.shape
        a, p1, tmp = scores.view(n, b, s), p1.view(n, b, s), ctx.tmp
        dnum = torch.zeros_like(num) if dnum is None else dnum
        dsq = torch.zeros_like(sq) if dsq is None else dsq
        # dL/dp2 = dnum <v_s, e> + 2 dsq <v_s, c>, and <v_s, c> = (G p)_s was saved by the Gram path.
        vc = (aux if ctx.gram else torch.bmm(aux, regions.transpose(1, 2))).transpose(0, 1)
        # Region softmax: g = p2 (dL/dp2 - kappa), kappa = sum_s p2 dL/dp2 = dnum num + 2 dsq sq.
        # (The softmax's temp1 factor is already in p1, which holds temp1 x the word softmax.)
        kappa = (dnum * num + 2 * dsq * sq).unsqueeze(-1)
        g = torch.addcmul(-kappa, vc, 2 * dsq.unsqueeze(-1), out=vc)
        g.addcmul_(a, dnum.unsqueeze(-1)).mul_(p2)
        # Word softmax: dL/da = p1 (g - sum_{caption's words} p1 g), plus dnum p2 from num.
        h = torch.mul(p1, g, out=tmp)  # = p1 g: the temp1 factors cancel
        torch.index_select(_segment_sum(h.view(n, b * s), lengths), 0, caption, out=scores)
        h.addcmul_(p1, a, value=-1 / ctx.temp1).addcmul_(p2, dnum.unsqueeze(-1))  # a holds sigma now
        da = h.view(n, b * s)
        d_words = da @ regions.view(b * s, d)
        d_regions = (da.t() @ words).view(b, s, d)
        if ctx.gram:  # G = V V^T and dL/dG_j = sum_w dsq p p^T (symmetric): dV += 2 dG V
            weighted = torch.mul(p2, dsq.unsqueeze(-1), out=a)
            d_gram = torch.bmm(weighted.transpose(0, 1).transpose(1, 2), p2.transpose(0, 1))
            d_regions.baddbmm_(d_gram, regions, alpha=2.0)
        else:  # c = P_j V_j: dV_j += P_j^T dc with dc = 2 dsq c
            dc = aux.mul_(2 * dsq.t().unsqueeze(-1))
            d_regions.baddbmm_(p2.transpose(0, 1).transpose(1, 2), dc)
        ctx.workspace.give_back(ctx.flat)
        ctx.flat = ctx.tmp = None
        return d_words, d_regions, None, None, None


def local_loss_packed(
    region_feats: torch.Tensor,
    words: torch.Tensor,
    lengths: torch.Tensor,
    settings: LocalLossSettings = LocalLossSettings(),
    gram: bool | None = None,
    workspace: Workspace | None = None,
):
    """The local loss on packed words: `words` N x D holds caption 0's words, then caption 1's...,
    `lengths` (B) how many each has. Returns (loss image->text, loss text->image, attention N x H x W
    of each word over its own image). `gram` forces the |c|^2 strategy (None: the cheaper);
    `workspace` keeps the scratch memory for the next call."""
    b, d, h, w = region_feats.shape
    lengths = torch.as_tensor(lengths, device=words.device).long()
    if lengths.shape != (b,) or int(lengths.sum()) != len(words):
        raise ValueError(
            f"lengths {tuple(lengths.shape)} summing to {int(lengths.sum())} do not fit "
            f"{b} images and {len(words)} packed words"
        )
    if bool((lengths < 1).any()):
        raise ValueError(f"every caption needs at least one word; lengths: {lengths.tolist()}")
    if gram is None:
        gram = _use_gram(len(words), h * w, d)
    with torch.autocast(region_feats.device.type, enabled=False):  # softmaxes and sums in fp32
        regions = _float(region_feats).flatten(2).transpose(1, 2).contiguous()  # B x S x D
        words = _float(words).contiguous()
        caption = torch.repeat_interleave(torch.arange(b, device=words.device), lengths)
        backward = torch.is_grad_enabled() and (words.requires_grad or regions.requires_grad)
        temp2, temp3 = settings.temp2, settings.temp3
        num, sq, maps = _LocalScores.apply(
            words,
            regions,
            lengths,
            caption,
            _ScoreOptions(float(settings.temp1), bool(gram), workspace or Workspace(), backward),
        )
        cos = num / (words.norm(dim=1, keepdim=True) * sq.clamp_min(0).sqrt()).clamp_min(settings.eps)
        # log sum_w exp(temp2 cos) per caption and image; |temp2 cos| <= temp2, so exp is safe.
        member = F.one_hot(caption, b).to(cos.dtype)  # N x B: which caption each word is in
        agg = member.t() @ (temp2 * cos).exp()
        agg = agg.log() / temp2 if settings.divide_by_temp2 else agg.log()
        logits = temp3 * agg.t()  # rows: images, columns: captions
        labels = torch.arange(b, device=logits.device)
        return (F.cross_entropy(logits, labels), F.cross_entropy(logits.t(), labels), maps.view(len(words), h, w))


def pad_words(words: torch.Tensor, lengths: torch.Tensor, value: float = 0.0) -> torch.Tensor:
    """Packed N x ... rows -> B x T x ... (T the longest caption), `value` at padded positions."""
    lengths = torch.as_tensor(lengths, device=words.device)
    mask = torch.arange(int(lengths.max()), device=words.device) < lengths[:, None]
    out = words.new_full((len(lengths), mask.shape[1], *words.shape[1:]), value)
    out[mask] = words
    return out


def local_loss(
    region_feats: torch.Tensor,
    word_feats: torch.Tensor,
    caption_lengths: torch.Tensor | Sequence[int],
    settings: LocalLossSettings = LocalLossSettings(),
    gram: bool | None = None,
    workspace: Workspace | None = None,
):
    """GLoRIA's local loss on padded words: region_feats B x D x H x W, word_feats B x D x T with
    caption i's words in its first caption_lengths[i] columns (the rest is never read).

    Returns (loss image->text, loss text->image, attention maps B x T x H x W: each word over its
    own image, zero at padded words). Scores are log(sum_w exp(temp2 cos_w)), divided by temp2 as in
    the paper's equation (`settings.divide_by_temp2=False`: as the released code), times temp3.
    """
    b, _, t = word_feats.shape
    lengths = torch.as_tensor(caption_lengths, device=word_feats.device).long()
    if bool((lengths > t).any()):
        raise ValueError(f"caption lengths {lengths.tolist()} exceed the {t} word columns")
    mask = torch.arange(t, device=word_feats.device) < lengths[:, None]
    words = word_feats.transpose(1, 2)[mask]  # N x D, caption by caption
    l_i2t, l_t2i, maps = local_loss_packed(region_feats, words, lengths, settings, gram, workspace)
    return l_i2t, l_t2i, pad_words(maps, lengths)


def matched_attention(
    region_feats: torch.Tensor, words: torch.Tensor, lengths: torch.Tensor, temp1: float = 4.0
) -> torch.Tensor:
    """Attention of each caption's words over its own image only (what the maps show), without the
    all-pairs work of the loss. Packed words N x D -> N x H x W."""
    b, d, h, w = region_feats.shape
    lengths = torch.as_tensor(lengths, device=words.device)
    with torch.autocast(region_feats.device.type, enabled=False):
        padded = pad_words(_float(words), lengths)  # B x T x D
        scores = padded @ _float(region_feats).flatten(2)  # B x T x S
        valid = torch.arange(padded.shape[1], device=words.device) < lengths[:, None]
        p1 = scores.masked_fill(~valid[..., None], float("-inf")).softmax(dim=1)  # over the words
        p2 = (temp1 * p1).softmax(dim=-1)  # over the regions
        return p2[valid].view(-1, h, w)
