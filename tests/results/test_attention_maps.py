import numpy as np
import torch
from PIL import Image

from syncxr.models.gloria import GLoRIA
from syncxr.models.image_encoder import build_image_encoder
from syncxr.models.text_encoder import load_tokenizer
from syncxr.results.attention_maps import caption_words, finding_map, save_attention_grid
from tests.helpers import model_settings, text_encoder


def test_grid_png_is_written(tiny_text_path, tmp_path):
    torch.manual_seed(0)
    tok = load_tokenizer(tiny_text_path)
    model = GLoRIA(
        build_image_encoder("resnet18", None, None, None, False),
        text_encoder(tiny_text_path),
        **model_settings("gloria", image_size_model=64),
    )
    captions = ["small left pleural effusion.", "large right upper lobe consolidation."]
    masks = [np.zeros((48, 48), bool), np.ones((32, 32), bool)]
    path = save_attention_grid(
        model,
        tok,
        torch.randn(2, 1, 48, 48),
        captions,
        masks,
        ["pleural effusion", "consolidation"],
        tmp_path / "attn.png",
    )
    assert model.training  # left as it was found
    with Image.open(path) as im:
        assert im.size[0] > 300 and im.size[1] > 300


def test_finding_words_are_found(tiny_text_path):
    tok = load_tokenizer(tiny_text_path)
    enc = tok(["small left pleural effusion."], return_tensors="pt")
    model = GLoRIA(
        build_image_encoder("resnet18", None, None, None, False),
        text_encoder(tiny_text_path),
        **model_settings("gloria", image_size_model=None),
    )
    with torch.no_grad():
        maps, lengths, word_of_token = model.word_attention(
            torch.randn(1, 1, 64, 64), enc["input_ids"], enc["attention_mask"]
        )
    words = caption_words(tok, enc["input_ids"][0].tolist(), word_of_token[0].tolist())
    assert words == ["small", "left", "pleural", "effusion"]
    amap, used = finding_map(maps[0], words, "Pleural Effusion")
    assert used == "pleural effusion" and torch.allclose(amap, maps[0, 2:4].mean(0))
    assert finding_map(maps[0], words, "pneumothorax")[1] == "(all words)"
