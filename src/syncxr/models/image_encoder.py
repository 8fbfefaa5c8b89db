"""Torchvision image backbones that take grayscale radiographs.

Every encoder has `dim` (global feature size) and `local_dim` (channels of its local feature map),
`forward(x) -> B x dim` (what ConVIRT uses) and `forward_features(x) -> (B x local_dim x h x w,
B x dim)`, the local map and the global feature from one pass (what GLoRIA uses).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models as tvm
from torchvision.models.vision_transformer import interpolate_embeddings

# name: (constructor, global dim, channels of the third stage, GLoRIA's local map)
RESNETS = {
    "resnet18": (tvm.resnet18, 512, 256),
    "resnet34": (tvm.resnet34, 512, 256),
    "resnet50": (tvm.resnet50, 2048, 1024),
}
VITS = {"vit_b_16": tvm.vit_b_16}
SWINS = {"swin_t": tvm.swin_t}
ENCODERS = sorted([*RESNETS, *VITS, *SWINS])


def load_weights(model: nn.Module, weights_path: str | Path, adapt: Callable[[dict], dict] | None = None) -> None:
    """Loads an ImageNet (or any matching) state dict from a local file, ignoring the classifier;
    `adapt` may reshape it first (e.g. a ViT's position embeddings to another image size)."""
    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"image encoder weights {path} not found")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = adapt(state) if adapt else state
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "heads.", "head."))}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(("fc.", "heads.", "head."))]
    if missing or unexpected:
        raise ValueError(
            f"{path}: weights do not fit the backbone (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )


def _three_channels(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1)  # ImageNet stems expect three channels


def _narrow(net: tvm.ResNet, width: int) -> tvm.ResNet:
    """`net` rebuilt with `width` stem channels instead of 64 (every stage scaled alike), the same
    depth and strides: the same feature-map sizes for a fraction of the compute."""
    block = type(net.layer1[0])
    depths = [len(layer) for layer in (net.layer1, net.layer2, net.layer3, net.layer4)]
    net.inplanes = width
    net.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    net.bn1 = nn.BatchNorm2d(width)
    for i, depth in enumerate(depths):
        setattr(net, f"layer{i + 1}", net._make_layer(block, width * 2**i, depth, stride=1 if i == 0 else 2))
    for m in net.modules():  # torchvision's own initialisation
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return net


class ResNetEncoder(nn.Module):
    """ResNet trunk. Local map: the third stage (1024 x 19 x 19 for ResNet-50 at 299 px). `width`:
    channels of the stem (64 as published; fewer for a narrower, cheaper network)."""

    has_resnet_stages = True

    def __init__(self, name: str, weights_path: str | None = None, width: int = 64):
        super().__init__()
        if name not in RESNETS:
            raise ValueError(f"unknown ResNet {name!r}; choose from {sorted(RESNETS)}")
        if width < 1:
            raise ValueError(f"ResNet width must be >= 1, got {width}")
        ctor, dim, local_dim = RESNETS[name]
        self.dim, self.local_dim = dim * width // 64, local_dim * width // 64
        net = ctor(weights=None) if width == 64 else _narrow(ctor(weights=None), width)
        if weights_path:
            load_weights(net, weights_path)
        net.fc = nn.Identity()
        self.net = net

    def forward_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(third-stage map, last-stage map) of a batch of grayscale images."""
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(_three_channels(x)))))
        x3 = n.layer3(n.layer2(n.layer1(x)))
        return x3, n.layer4(x3)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        local, last = self.forward_maps(x)
        return local, torch.flatten(self.net.avgpool(last), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[1]


class ViTEncoder(nn.Module):
    """Vision transformer. Global: the class token; local map: the patch tokens on their grid.

    Position embeddings are made for `image_size` (224 fits ImageNet weights) and interpolated to
    the grid of whatever input arrives, so the loader's image size need not match; inputs whose
    side is not a multiple of the patch size are resized to the nearest multiple.
    """

    has_resnet_stages = False

    def __init__(self, name: str, weights_path: str | None = None, image_size: int = 224):
        super().__init__()
        if name not in VITS:
            raise ValueError(f"unknown ViT {name!r}; choose from {sorted(VITS)}")
        net = VITS[name](weights=None, image_size=image_size)
        if weights_path:  # position embeddings of the checkpoint's grid (ImageNet: 224 px) resized
            load_weights(net, weights_path, lambda s: interpolate_embeddings(image_size, net.patch_size, s))
        net.heads = nn.Identity()
        self.net = net
        self.dim = self.local_dim = net.hidden_dim

    def _position_embedding(self, grid: tuple[int, int]) -> torch.Tensor:
        pos = self.net.encoder.pos_embedding  # 1 x (1 + g*g) x D
        g = self.net.image_size // self.net.patch_size
        if grid == (g, g):
            return pos
        patches = pos[:, 1:].reshape(1, g, g, -1).permute(0, 3, 1, 2)
        patches = F.interpolate(patches, size=grid, mode="bicubic", align_corners=False)
        return torch.cat([pos[:, :1], patches.flatten(2).transpose(1, 2)], dim=1)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        net, p = self.net, self.net.patch_size
        h, w = x.shape[-2:]
        size = (max(p, round(h / p) * p), max(p, round(w / p) * p))
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        x = net.conv_proj(_three_channels(x))  # B x D x gh x gw
        b, d, gh, gw = x.shape
        x = torch.cat([net.class_token.expand(b, -1, -1), x.flatten(2).transpose(1, 2)], dim=1)
        enc = net.encoder
        x = enc.ln(enc.layers(enc.dropout(x + self._position_embedding((gh, gw)))))
        local = x[:, 1:].transpose(1, 2).reshape(b, d, gh, gw)
        return local, x[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[1]


class SwinEncoder(nn.Module):
    """Swin transformer. Global: the pooled, normalised last stage; local map: the stage before
    last (384 channels at 1/16 of the input for Swin-T), channels first."""

    has_resnet_stages = False

    def __init__(self, name: str, weights_path: str | None = None):
        super().__init__()
        if name not in SWINS:
            raise ValueError(f"unknown Swin {name!r}; choose from {sorted(SWINS)}")
        net = SWINS[name](weights=None)
        if weights_path:
            load_weights(net, weights_path)
        net.head = nn.Identity()
        self.net = net
        self.dim = net.norm.normalized_shape[0]
        # features = [patch embedding, stage 1, merge, stage 2, merge, stage 3, merge, stage 4]
        self.local_dim = net.features[-3][-1].norm1.normalized_shape[0]

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        net = self.net
        local = net.features[:-2](_three_channels(x))  # B x h x w x C (Swin is channels last)
        last = net.norm(net.features[-2:](local))
        pooled = torch.flatten(net.avgpool(net.permute(last)), 1)
        return local.permute(0, 3, 1, 2), pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[1]


def build_image_encoder(
    arch: str, weights_path: str | None, image_size: int | None, width: int | None, random_init: bool
) -> nn.Module:
    """Backbone by torchvision architecture name. `image_size` only matters for ViTs (their position
    grid; 224 when not given), `width` only for ResNets (stem channels; None: 64, as published).
    `random_init`: random weights on purpose, which a `weights_path` contradicts (without either, the
    weights are random too: paper mode refuses that, syncxr.paper_prerequisites)."""
    if random_init and weights_path is not None:
        raise ValueError(
            f"image_encoder: random_init=true and weights_path={weights_path!r} contradict each other (choose one)"
        )
    if arch in RESNETS:
        return ResNetEncoder(arch, weights_path, 64 if width is None else width)
    if width is not None:
        raise ValueError(f"image_encoder.width: {arch!r} has no width setting (ResNets only)")
    if arch in VITS:
        return ViTEncoder(arch, weights_path, image_size or 224)
    if arch in SWINS:
        return SwinEncoder(arch, weights_path)
    raise ValueError(f"unknown image encoder {arch!r}; choose from {ENCODERS}")
