import pytest
import torch

from syncxr.models.build import build_model
from syncxr.models.gloria import PIECE, SKIP, WORD, GLoRIA, merge_word_pieces, word_piece_kinds
from syncxr.models.image_encoder import build_image_encoder
from syncxr.models.text_encoder import load_tokenizer
from tests.helpers import compose_train, model_settings, text_encoder

TEXTS = ["no pleural effusion.", "likely calcified granuloma in the right upper lobe."]


@pytest.fixture(scope="module")
def tokenizer(tiny_text_path):
    return load_tokenizer(tiny_text_path)


@pytest.fixture(scope="module")
def model(tiny_text_path, tokenizer):
    torch.manual_seed(0)
    return GLoRIA(
        build_image_encoder("resnet18", None, None, None, False),
        text_encoder(tiny_text_path),
        **model_settings("gloria", image_size_model=64),
    )


def _batch(tokenizer, texts=TEXTS):
    tok = tokenizer(texts, padding=True, return_tensors="pt")
    return torch.randn(len(texts), 1, 48, 48), tok["input_ids"], tok["attention_mask"]


def test_forward_backward_reaches_both_towers(model, tokenizer):
    model.zero_grad(set_to_none=True)
    out = model(*_batch(tokenizer))
    assert set(out) == {"loss", "global_loss", "local_loss"}
    assert torch.isfinite(out["loss"])
    assert out["loss"].item() == pytest.approx((out["global_loss"] + out["local_loss"]).item(), rel=1e-6)
    out["loss"].backward()
    assert model.text_encoder.model.embeddings.word_embeddings.weight.grad.abs().sum() > 0
    assert model.image_encoder.net.conv1.weight.grad.abs().sum() > 0
    assert model.local_embedder.weight.grad.abs().sum() > 0  # the local loss reaches the regions
    assert model.global_embedder.weight.grad.abs().sum() > 0


def test_encoders_give_unit_vectors(model, tokenizer):
    images, ids, mask = _batch(tokenizer)
    with torch.no_grad():
        img, txt = model.encode_image(images), model.encode_text(ids, mask)
    assert img.shape == txt.shape == (2, model.text_encoder.dim)
    assert torch.allclose(img.norm(dim=1), torch.ones(2)) and torch.allclose(txt.norm(dim=1), torch.ones(2))


def test_token_kinds(tokenizer):
    kinds = word_piece_kinds(tokenizer)
    vocab = tokenizer.get_vocab()
    assert kinds[tokenizer.cls_token_id] == kinds[tokenizer.pad_token_id] == kinds[vocab["."]] == SKIP
    assert kinds[vocab["effusion"]] == WORD
    assert all(kinds[i] == PIECE for t, i in vocab.items() if t.startswith("##") and t[2:].isalnum())


def test_word_split_into_pieces_gives_one_word_feature(tokenizer):
    tok = tokenizer(TEXTS, padding=True, return_tensors="pt")
    pieces = tokenizer.convert_ids_to_tokens(tok["input_ids"][1].tolist())
    assert any(p.startswith("##") for p in pieces), "the test needs a word the tiny vocabulary splits"
    states = torch.randn(*tok["input_ids"].shape, 5)
    words, lengths, word_of_token = merge_word_pieces(
        states, tok["input_ids"], tok["attention_mask"], word_piece_kinds(tokenizer)
    )
    assert lengths.tolist() == [len(t.rstrip(".").split()) for t in TEXTS]  # punctuation is no word
    # Each word feature is the sum of its pieces' states, and some word has several pieces.
    offset = int(lengths[0])
    for k in range(int(lengths[1])):
        assert torch.allclose(words[offset + k], states[1][word_of_token[1] == k].sum(0))
    assert max((word_of_token[1] == k).sum() for k in range(int(lengths[1]))) > 1


def test_word_attention_maps(model, tokenizer):
    images, ids, mask = _batch(tokenizer)
    with torch.no_grad():
        maps, lengths, _ = model.word_attention(images, ids, mask)
    assert maps.shape[:2] == (2, int(lengths.max())) and maps.shape[2:] == (4, 4)  # resnet18 at 64 px
    for i, n in enumerate(lengths.tolist()):
        assert torch.allclose(maps[i, :n].sum((-1, -2)), torch.ones(n, dtype=maps.dtype))
        assert maps[i, n:].abs().sum() == 0


def test_word_similarity_scores_regions_against_the_findings_words_only(model, tokenizer):
    """The grounding map of a prompt: each region's cosine with the (mean) finding word, whatever the
    template's other words; `prompt_tokens` marks the finding's tokens from its character span."""
    from syncxr.eval.grounding import prompt_tokens
    from syncxr.eval.zeroshot import fill_prompts, name_spans

    templates = ["{}.", "there is {}.", "no evidence of {}."]
    tok = prompt_tokens(
        tokenizer, fill_prompts("Pleural effusion", templates), 32, name_spans("Pleural effusion", templates)
    )
    named = [tokenizer.decode(ids[m]).replace(" ##", "") for ids, m in zip(tok["input_ids"], tok["name_mask"])]
    assert named == ["pleural effusion"] * 3
    images = torch.randn(1, 1, 48, 48).expand(3, -1, -1, -1)
    with torch.no_grad():
        maps = model.word_similarity(images, tok["input_ids"], tok["attention_mask"], tok["name_mask"])
        local, _ = model.image_features(images[:1])
        words, _, _, _ = model.text_features(tok["input_ids"][:1], tok["attention_mask"][:1])
        everything = model.word_similarity(images, tok["input_ids"], tok["attention_mask"])
    assert maps.shape == (3, 4, 4) and maps.abs().max() <= 1 + 1e-5
    # "pleural effusion." has only the finding's words: its map is the cosine with their mean.
    query = torch.nn.functional.normalize(torch.nn.functional.normalize(words, dim=-1).sum(0), dim=0)
    assert torch.allclose(
        maps[0], torch.einsum("d,dhw->hw", query, torch.nn.functional.normalize(local[0], dim=0)), atol=1e-5
    )
    assert torch.allclose(everything[0], maps[0], atol=1e-6)  # no other word to leave out
    assert not torch.allclose(everything[2], maps[2], atol=1e-3)  # "no evidence of" is left out
    with pytest.raises(ValueError, match="no token of the class name"):
        prompt_tokens(tokenizer, ["there is effusion."], 3, [(9, 17)])  # truncated before the name


def test_caption_without_words_is_rejected(model, tokenizer):
    with pytest.raises(ValueError, match="no word tokens"):
        model(*_batch(tokenizer, ["no effusion.", "."]))


def test_built_from_config(cache_dir):
    cfg = compose_train(
        [
            "model=gloria",
            "model.image_size_model=32",
            "text_encoder.phantom.hidden_size=32",
            "text_encoder.phantom.num_layers=1",
            "text_encoder.phantom.num_heads=2",
            "text_encoder.phantom.intermediate_size=64",
            "text_encoder.phantom.vocab_size=400",
        ]
    )
    model = build_model(cfg.model, cfg.image_encoder, cfg.text_encoder)
    assert isinstance(model, GLoRIA) and model.image_size_model == 32 and model.temp1 == 4.0
    # The word/piece kinds come from the text tower's own tokenizer.
    assert torch.equal(
        model.token_kinds[: len(model.text_encoder.tokenizer)],
        word_piece_kinds(model.text_encoder.tokenizer)[: len(model.text_encoder.tokenizer)],
    )


def test_paper_preset_composes():
    cfg = compose_train(["experiment=gloria_paper"])
    assert cfg.model.name == "gloria" and cfg.model.image_size_model == 299
    assert cfg.image_encoder.arch == "resnet50" and cfg.text_encoder.max_length == 97
    assert cfg.optimizer.lr == 5e-5 and list(cfg.optimizer.betas) == [0.5, 0.999]
    assert cfg.trainer.grad_clip == 0.25 and cfg.trainer.max_epochs == 50
    assert cfg.scheduler.factor == 0.5 and cfg.scheduler.patience == 5
