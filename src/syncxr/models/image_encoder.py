"""Torchvision image backbones that take grayscale radiographs and return one feature vector."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision import models as tvm

RESNETS = {"resnet18": (tvm.resnet18, 512), "resnet34": (tvm.resnet34, 512),
           "resnet50": (tvm.resnet50, 2048)}


def load_weights(model: nn.Module, weights_path: str | Path) -> None:
    """Loads an ImageNet (or any matching) state dict from a local file, ignoring the classifier."""
    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"image encoder weights {path} not found")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "heads.", "head."))}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(("fc.", "heads.", "head."))]
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not fit the backbone (missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]})")


class ResNetEncoder(nn.Module):
    """ResNet trunk. `forward` gives the pooled feature; `stages` the intermediate maps."""

    def __init__(self, name: str, weights_path: str | None = None):
        super().__init__()
        if name not in RESNETS:
            raise ValueError(f"unknown ResNet {name!r}; choose from {sorted(RESNETS)}")
        ctor, self.dim = RESNETS[name]
        net = ctor(weights=None)
        if weights_path:
            load_weights(net, weights_path)
        net.fc = nn.Identity()
        self.net = net

    def forward_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(third-stage map, last-stage map) of a batch of grayscale images."""
        n = self.net
        x = x.expand(-1, 3, -1, -1)  # ImageNet stems expect three channels
        x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        x3 = n.layer3(n.layer2(n.layer1(x)))
        return x3, n.layer4(x3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.net.avgpool(self.forward_maps(x)[1]), 1)


def build_image_encoder(name: str, weights_path: str | None = None) -> nn.Module:
    """Backbone by torchvision name; the module has a `dim` attribute (feature size)."""
    if name in RESNETS:
        return ResNetEncoder(name, weights_path)
    raise ValueError(f"unknown image encoder {name!r}; choose from {sorted(RESNETS)}")
