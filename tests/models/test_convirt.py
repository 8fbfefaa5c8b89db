import math

import pytest
import torch

from syncxr.models.convirt import ConVIRT, convirt_loss
from syncxr.models.image_encoder import build_image_encoder
from syncxr.models.text_encoder import load_tokenizer
from tests.helpers import model_settings, text_encoder


def test_loss_matches_the_direct_formula():
    torch.manual_seed(0)
    img, txt = torch.randn(6, 8), torch.randn(6, 8)
    tau, lam = 0.1, 0.75
    u = img / img.norm(dim=1, keepdim=True)
    v = txt / txt.norm(dim=1, keepdim=True)
    total = 0.0
    for i in range(6):
        sim_iv = [float(u[i] @ v[k]) / tau for k in range(6)]
        sim_vi = [float(v[i] @ u[k]) / tau for k in range(6)]
        l_iv = -math.log(math.exp(sim_iv[i]) / sum(math.exp(s) for s in sim_iv))
        l_vi = -math.log(math.exp(sim_vi[i]) / sum(math.exp(s) for s in sim_vi))
        total += lam * l_iv + (1 - lam) * l_vi
    assert convirt_loss(img, txt, tau, lam).item() == pytest.approx(total / 6, rel=1e-5)


def test_loss_rewards_matched_pairs():
    x = torch.randn(8, 16)
    assert convirt_loss(x, x) < convirt_loss(x, x.roll(1, 0))


def _model(text_path):
    return ConVIRT(
        build_image_encoder("resnet18", None, None, None, False),
        text_encoder(text_path),
        **model_settings("convirt", proj_dim=16, proj_hidden=32),
    )


def test_both_towers_receive_gradients(tiny_text_path):
    torch.manual_seed(0)
    model = _model(tiny_text_path)
    tok = load_tokenizer(tiny_text_path)(
        ["no pleural effusion.", "small nodule in the right upper lobe."], padding=True, return_tensors="pt"
    )
    model(torch.randn(2, 1, 32, 32), tok["input_ids"], tok["attention_mask"])["loss"].backward()
    text_grads = [p.grad for p in model.text_encoder.parameters() if p.requires_grad]
    image_grads = [p.grad for p in model.image_encoder.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in text_grads)
    assert model.text_encoder.model.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    assert all(g is not None for g in image_grads)


def test_max_pooling_ignores_padding(tiny_text_path):
    enc = text_encoder(tiny_text_path, pool="max").eval()
    tok = load_tokenizer(tiny_text_path)
    alone = tok(["no effusion."], return_tensors="pt")
    padded = tok(
        ["no effusion.", "there is a large consolidation in the left lower lobe."], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        a = enc(alone["input_ids"], alone["attention_mask"])[0]
        b = enc(padded["input_ids"], padded["attention_mask"])[0]
    assert torch.allclose(a, b, atol=1e-5)


def test_freeze_layers_freezes_embeddings_and_first_layers(tiny_text_path):
    enc = text_encoder(tiny_text_path, freeze_layers=1)
    assert not any(p.requires_grad for p in enc.model.embeddings.parameters())
    assert not any(p.requires_grad for p in enc.model.encoder.layer[0].parameters())


def test_bad_arguments_are_rejected(tiny_text_path):
    with pytest.raises(ValueError, match="unknown image encoder"):
        build_image_encoder("alexnet", None, None, None, False)
    with pytest.raises(ValueError, match="pooling"):
        text_encoder(tiny_text_path, pool="attention")
    with pytest.raises(FileNotFoundError, match="weights"):
        build_image_encoder("resnet18", "/nonexistent/resnet18.pth", None, None, False)


def test_local_image_weights_are_loaded(tmp_path):
    from torchvision.models import resnet18

    torch.manual_seed(1)
    ref = resnet18()
    torch.save(ref.state_dict(), tmp_path / "r18.pth")
    enc = build_image_encoder("resnet18", str(tmp_path / "r18.pth"), None, None, False)
    assert torch.equal(enc.net.conv1.weight, ref.conv1.weight)
