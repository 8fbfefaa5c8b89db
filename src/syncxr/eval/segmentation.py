"""Fine-tuned segmentation: a U-Net-style decoder on the pre-trained ResNet encoder.

The encoder's five stages (stem at 1/2, layer1..layer4 at 1/4..1/32) feed a decoder that upsamples
step by step, concatenating the skip connection of each stage. The decoder trains (BCE + soft Dice),
and the encoder too unless it is frozen (`freeze_encoder`, the default; the SynCXR paper says both:
§4.1 frozen, A.2 fine-tuned). With early stopping the validation split's Dice picks the epoch. Dice
and IoU are reported on the test split's positive images.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..data.benchmark_split import Split
from ..models.protocols import ImageEncoder
from .early_stopping import EarlyStopping
from .finetune import FinetuneSettings, fit, train_batches
from .metrics import iou_dice


def resnet_stages(encoder: ImageEncoder, x: torch.Tensor) -> list[torch.Tensor]:
    """[stem (1/2), layer1 (1/4), layer2 (1/8), layer3 (1/16), layer4 (1/32)] of a ResNetEncoder."""
    if not encoder.has_resnet_stages:
        raise ValueError(f"{type(encoder).__name__}: U-Net segmentation needs a ResNet image encoder")
    net = encoder.net
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    s0 = net.relu(net.bn1(net.conv1(x)))
    s1 = net.layer1(net.maxpool(s0))
    s2 = net.layer2(s1)
    s3 = net.layer3(s2)
    return [s0, s1, s2, s3, net.layer4(s3)]


def _block(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNetDecoder(nn.Module):
    def __init__(self, stage_channels: list[int], widths=(128, 64, 32, 32, 16)):
        super().__init__()
        c4, skips = stage_channels[-1], stage_channels[-2::-1]  # deepest first, then 1/16 .. 1/2
        self.blocks = nn.ModuleList()
        cin = c4
        for skip, w in zip(skips, widths):
            self.blocks.append(_block(cin + skip, w))
            cin = w
        self.final = _block(cin, widths[-1])
        self.out = nn.Conv2d(widths[-1], 1, 1)

    def forward(self, stages: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        x = stages[-1]
        for block, skip in zip(self.blocks, stages[-2::-1]):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        x = self.final(F.interpolate(x, size=size, mode="bilinear", align_corners=False))
        return self.out(x)[:, 0]


class EncoderUNet(nn.Module):
    """The U-Net: the encoder's stages and a decoder; `freeze` keeps the encoder as it is (no
    gradients, batch-norm statistics included)."""

    def __init__(self, encoder: nn.Module, image_size: int, freeze: bool = True):
        super().__init__()
        self.freeze = freeze
        self.encoder = encoder.eval().requires_grad_(not freeze)
        with torch.no_grad():
            chans = [s.shape[1] for s in resnet_stages(encoder, torch.zeros(1, 1, image_size, image_size))]
        self.decoder = UNetDecoder(chans)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze:
            self.encoder.eval()
        return self

    def forward(self, x):
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            stages = resnet_stages(self.encoder, x)
        return self.decoder(stages, x.shape[-2:])


class _MaskedImages(Dataset):
    def __init__(self, split: Split, index, transform, size: int):
        self.split, self.index, self.transform, self.size = split, np.asarray(index), transform, size

    def __len__(self):
        return len(self.index)

    def __getitem__(self, j):
        i = int(self.index[j])
        img = self.split.load(i)
        mask = torch.from_numpy(self.split.mask(i, tuple(img.shape[-2:])).astype(np.float32))[None, None]
        mask = F.interpolate(mask, size=(self.size, self.size), mode="nearest")[0, 0]
        return self.transform(img), mask


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits)
    inter = (p * target).flatten(1).sum(1)
    return (1 - (2 * inter + 1) / (p.flatten(1).sum(1) + target.flatten(1).sum(1) + 1)).mean()


def segmentation_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, mask) + soft_dice_loss(logits, mask)


def train_segmenter(
    image_encoder: nn.Module,
    train: Split,
    index,
    transform,
    image_size: int,
    accelerator,
    settings: FinetuneSettings,
    val: Split | None = None,
) -> tuple[EncoderUNet, EarlyStopping | None]:
    """Trains a U-Net decoder on a copy of `image_encoder` (frozen, or trained too with
    `settings.freeze_encoder` False) with train[index]'s masks (BCE + soft Dice) for `settings.epochs`
    passes or `settings.steps` batches (see `budget_sampler`), or, with early stopping, up to
    `settings.epochs` epochs keeping the one of best mean Dice on `val`'s positive images. Returns the
    net (eval mode) and the early-stopping record (None without)."""
    st = settings
    if st.early_stopping and val is None:
        raise ValueError(f"{train.source}: early stopping needs a validation split, and there is none")
    torch.manual_seed(st.seed)
    net = EncoderUNet(copy.deepcopy(image_encoder), image_size, st.freeze_encoder).to(accelerator.device)
    params = net.decoder.parameters() if st.freeze_encoder else net.parameters()
    opt = st.optimizer([{"params": params, "lr": st.lr}])
    record = fit(
        net,
        _MaskedImages(train, index, transform, image_size),
        lambda loader: train_batches(net, loader, segmentation_loss, opt, accelerator, "train U-Net"),
        lambda: segment_scores(net, val, transform, image_size, accelerator, st.batch_size)[0]["dice"],
        st,
    )
    return net.eval(), record


@torch.no_grad()
def segment_scores(
    net: EncoderUNet, test: Split, transform, image_size: int, accelerator, batch_size: int = 32
) -> tuple[dict[str, float], dict[str, list]]:
    """Mean Dice and IoU over the positive test images (prediction: sigmoid >= 0.5), and per image
    (`id`, `dice`, `iou`)."""
    index = np.flatnonzero(test.labels.max(1) > 0)
    if not len(index):
        raise ValueError(f"{test.source}: no positive images to score segmentation on")
    ious, dices = [], []
    for x, m in DataLoader(_MaskedImages(test, index, transform, image_size), batch_size=batch_size):
        with accelerator.autocast():
            pred = net(x.to(accelerator.device)).float().cpu() >= 0
        iou, dice = iou_dice(pred.numpy(), m.numpy() > 0.5)
        ious.append(iou)
        dices.append(dice)
    dice, iou = np.concatenate(dices), np.concatenate(ious)
    return (
        {"dice": float(dice.mean()), "iou": float(iou.mean()), "n_positive": float(len(index))},
        {"id": [test.ids[i] for i in index], "dice": dice, "iou": iou},
    )
