"""Every selectable backbone trains ConVIRT and GLoRIA for one step at a tiny input size."""

import pytest
import torch

from syncxr.models.convirt import ConVIRT
from syncxr.models.gloria import GLoRIA
from syncxr.models.image_encoder import build_image_encoder
from syncxr.models.text_encoder import load_tokenizer
from tests.helpers import model_settings, text_encoder

BACKBONES = {"resnet18": (512, 256), "resnet50": (2048, 1024), "vit_b_16": (768, 768), "swin_t": (768, 384)}
TEXTS = ["small left pleural effusion.", "no pneumothorax."]


@pytest.fixture(scope="module", params=list(BACKBONES))
def encoder(request):
    torch.manual_seed(0)
    return request.param, build_image_encoder(request.param, None, None, None, False)


@pytest.fixture(scope="module")
def text_batch(tiny_text_path):
    tok = load_tokenizer(tiny_text_path)
    return tok, tok(TEXTS, padding=True, return_tensors="pt")


def _one_step(model, images, tok) -> float:
    # Plain SGD: one pass over the weights (ViT-B/16 has 86M of them; Adam would triple the cost).
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.zero_grad(set_to_none=True)
    before = [p.detach().clone() for p in list(model.image_encoder.parameters())[:3]]
    loss = model(images, tok["input_ids"], tok["attention_mask"])["loss"]
    loss.backward()
    opt.step()
    after = list(model.image_encoder.parameters())[:3]
    assert any(not torch.equal(b, a) for b, a in zip(before, after)), "the backbone did not move"
    return loss.item()


def test_feature_shapes(encoder):
    name, enc = encoder
    dim, local_dim = BACKBONES[name]
    assert (enc.dim, enc.local_dim) == (dim, local_dim)
    with torch.no_grad():
        local, pooled = enc.eval().forward_features(torch.randn(1, 1, 64, 64))
    assert pooled.shape == (1, dim) and local.shape == (1, local_dim, 4, 4)  # all four: 1/16 scale


def test_trains_convirt_and_gloria(encoder, tiny_text_path, text_batch):
    name, enc = encoder
    enc.train()
    tokenizer, tok = text_batch
    images = torch.randn(2, 1, 32, 32)
    convirt = ConVIRT(enc, text_encoder(tiny_text_path), **model_settings("convirt", proj_dim=16, proj_hidden=32))
    assert torch.isfinite(torch.tensor(_one_step(convirt, images, tok)))
    gloria = GLoRIA(enc, text_encoder(tiny_text_path), **model_settings("gloria", image_size_model=None))
    assert torch.isfinite(torch.tensor(_one_step(gloria, images, tok)))


def test_vit_matches_torchvision_at_its_native_size():
    torch.manual_seed(0)
    enc = build_image_encoder("vit_b_16", None, 32, None, False).eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(enc(x), enc.net(x.expand(-1, 3, -1, -1)), atol=1e-5)
        assert enc(torch.randn(1, 1, 40, 40)).shape == (1, 768)  # resized to a multiple of 16


def test_swin_and_vit_reject_foreign_names():
    from syncxr.models.image_encoder import SwinEncoder, ViTEncoder

    with pytest.raises(ValueError, match="unknown ViT"):
        ViTEncoder("vit_h_14")
    with pytest.raises(ValueError, match="unknown Swin"):
        SwinEncoder("swin_b")


def test_a_narrow_resnet_keeps_the_feature_map_sizes_at_a_fraction_of_the_weights():
    torch.manual_seed(0)
    full, narrow = (
        build_image_encoder("resnet18", None, None, None, False),
        build_image_encoder("resnet18", None, None, 16, False),
    )
    assert (narrow.dim, narrow.local_dim) == (128, 64)
    x = torch.randn(2, 1, 96, 96)
    with torch.no_grad():
        (lf, _), (ln, gn) = full.eval().forward_features(x), narrow.eval().forward_features(x)
    assert ln.shape[2:] == lf.shape[2:] == (6, 6) and gn.shape == (2, 128) and ln.shape[1] == 64
    n_full, n_narrow = (sum(p.numel() for p in m.parameters()) for m in (full, narrow))
    assert n_narrow < n_full / 10  # weights scale with width squared
    with pytest.raises(ValueError, match="width"):
        build_image_encoder("vit_b_16", None, 32, 16, False)
    with pytest.raises(ValueError, match="width"):
        build_image_encoder("resnet18", None, None, 0, False)
