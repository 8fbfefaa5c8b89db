"""Zero-shot classification and grounding as the SynCXR paper's Appendix A.2 states them (recipe=paper):
the input resized to 256, centre-cropped to 224, pixels in [0, 1] (and pre-training in [0, 1] too);
CheXzero's prompt pair; grounding maps from the final convolutional layer for ConVIRT and GLoRIA
alike. The phantom defaults stay as they were."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from safetensors.torch import save_file
from torchvision.transforms.v2 import functional as TF

from syncxr.data.paired_dataset import augment_on_device
from syncxr.data.transforms import eval_transform, jitter_normalise, train_transform
from syncxr.eval.context import Context, EvalSettings
from syncxr.eval.embeddings import local_features
from syncxr.eval.evaluation_job import run_evaluation
from syncxr.eval.grounding import own_maps_used
from syncxr.eval.tasks import zeroshot_transform
from syncxr.eval.zeroshot import fill_prompts
from syncxr.models.build import build_model
from syncxr.models.gloria import GLoRIA
from tests.helpers import TINY, TINY_GLORIA, compose_eval, compose_train

PAPER = ["experiment=syncxr_paper"]


def _context(cfg) -> Context:
    """The parts of a suite's Context the input transforms read."""
    settings = EvalSettings("val", 0, 8, 0, str(cfg.loader.normalize))
    size = int(cfg.evaluation.image_size or cfg.loader.image_size)
    return Context(settings, None, None, None, 8, None, size, None, None)


def _framed(side: int = 256, border: int = 16, value: int = 200) -> torch.Tensor:
    """uint8 1 x side x side: `value` inside, a black frame `border` px wide around it."""
    img = torch.zeros(1, side, side, dtype=torch.uint8)
    img[:, border : side - border, border : side - border] = value
    return img


def test_paper_zeroshot_input_is_resize_256_centre_crop_224_in_unit_range():
    cfg = compose_train(PAPER)
    transform = zeroshot_transform(_context(cfg), cfg.task.zeroshot_cls)
    out = transform(_framed())
    # The centre 224 x 224 of the 256 x 256 image is exactly the frame's inside: no black border left
    # (a direct resize to 224 keeps it), and the pixel values are value / 255, not standardised.
    assert out.shape == (1, 224, 224) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.full((1, 224, 224), 200 / 255))
    # A non-square image: resized to 256 x 256, then the centre crop.
    img = torch.randint(0, 256, (1, 300, 280), dtype=torch.uint8)
    expected = TF.center_crop(TF.resize(img, [256, 256], antialias=True), [224, 224]).float() / 255
    torch.testing.assert_close(transform(img), expected)


def test_phantom_zeroshot_input_is_unchanged_a_direct_resize_standardised():
    cfg = compose_train([])
    assert (cfg.task.zeroshot_cls.resize, cfg.task.zeroshot_cls.center_crop, cfg.loader.normalize) == (
        None,
        None,
        "standard",
    )
    img = _framed()
    out = zeroshot_transform(_context(cfg), cfg.task.zeroshot_cls)(img)
    expected = (TF.resize(img, [96, 96], antialias=True).float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(out, expected)


def test_zeroshot_transform_keys_are_checked_by_name():
    cfg = compose_train([])
    ctx = _context(cfg)
    with pytest.raises(ValueError, match="center_crop needs task.zeroshot_cls.resize"):
        zeroshot_transform(ctx, OmegaConf.create({"resize": None, "center_crop": 64}))
    with pytest.raises(ValueError, match="task.zeroshot_cls.resize=64 is smaller than the 96 px centre crop"):
        zeroshot_transform(ctx, OmegaConf.create({"resize": 64, "center_crop": None}))
    with pytest.raises(ValueError, match="loader.normalize must be one of"):
        eval_transform(32, normalize="imagenet")


def test_paper_prompts_are_exactly_chexzeros_pair_and_phantom_keeps_its_ensemble():
    paper = compose_train(PAPER).task.zeroshot_cls.prompts
    assert list(paper.positive) == ["{}"] and list(paper.negative) == ["no {}"]
    assert fill_prompts("Pleural Effusion", list(paper.positive)) == ["pleural effusion"]
    assert fill_prompts("Pleural Effusion", list(paper.negative)) == ["no pleural effusion"]
    phantom = compose_train([]).task.zeroshot_cls.prompts
    assert list(phantom.positive) == ["{}.", "there is {}.", "{} is present."]
    assert list(phantom.negative) == ["no {}.", "there is no {}.", "no evidence of {}."]


def test_paper_mode_pre_trains_in_the_pixel_range_it_evaluates_in():
    assert compose_train(PAPER).loader.normalize == "unit"
    images = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    batch = {"images": images, "jitter": torch.ones(2, 2)}
    torch.testing.assert_close(augment_on_device(batch, "unit")["images"], images.float() / 255)
    torch.testing.assert_close(augment_on_device(batch)["images"], (images.float() / 255 - 0.5) / 0.25)
    torch.testing.assert_close(jitter_normalise(images, torch.ones(2, 2), "half"), images.float() / 127.5 - 1)
    # Fine-tuning's augmentation feeds the same range (the loader's half and the device's half in one).
    white = torch.full((1, 16, 16), 255, dtype=torch.uint8)
    out = train_transform(8, 1.0, 0.0, "unit")(white, np.random.default_rng(0))
    torch.testing.assert_close(out, torch.ones(1, 8, 8))


def _tiny(overrides):
    cfg = compose_train(overrides)
    torch.manual_seed(0)
    return cfg, build_model(cfg.model, cfg.image_encoder, cfg.text_encoder).eval()


def _last_stage(encoder, x):
    n = encoder.net
    x = n.maxpool(n.relu(n.bn1(n.conv1(x.expand(-1, 3, -1, -1)))))
    return n.layer4(n.layer3(n.layer2(n.layer1(x))))


@torch.no_grad()
def test_convirt_local_features_are_its_final_conv_layer_through_its_projection_head():
    _, model = _tiny(TINY)
    x = torch.rand(2, 1, 64, 64)
    expected = F.normalize(model.image_proj(_last_stage(model.image_encoder, x).permute(0, 2, 3, 1)), dim=-1)
    got = local_features(model, x)
    assert got.shape == (2, 2, 2, 16)  # 64 px / 32: ResNet layer4's grid; the 16-d joint space
    torch.testing.assert_close(got, expected)


@torch.no_grad()
def test_gloria_local_features_are_its_final_conv_layer_at_its_input_size_through_its_global_embedder():
    _, model = _tiny([*TINY_GLORIA, "model.image_size_model=96"])
    assert isinstance(model, GLoRIA)
    x = torch.rand(2, 1, 48, 48)
    big = F.interpolate(x, size=(96, 96), mode="bilinear", align_corners=True)  # as GLoRIA encodes it
    last = _last_stage(model.image_encoder, big)
    expected = F.normalize(model.global_embedder(last.permute(0, 2, 3, 1)), dim=-1)
    got = local_features(model, x)
    assert got.shape[1:3] == (3, 3)  # layer4 at 96 px, not the third stage (6 x 6) GLoRIA's local loss uses
    torch.testing.assert_close(got, expected)
    # The per-location projection averages to the global image feature (the embedder is linear).
    torch.testing.assert_close(model.final_conv_map(x).mean((1, 2)), model.image_features(x)[1])
    assert own_maps_used(model, "positive") and not own_maps_used(model, "final_conv")


@pytest.fixture(scope="module")
def untrained_gloria_run(tmp_path_factory):
    cfg = compose_train([*TINY_GLORIA, "loader.normalize=unit"])
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.image_encoder, cfg.text_encoder)
    out = tmp_path_factory.mktemp("untrained_gloria")
    (out / "resolved_config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / "model.safetensors")
    return out


def test_final_conv_grounding_of_gloria_reads_its_last_stage_not_its_word_maps(
    untrained_gloria_run, tmp_path, monkeypatch
):
    def refuse(*args, **kwargs):
        raise AssertionError("map=final_conv must not use GLoRIA's word-to-region maps")

    monkeypatch.setattr(GLoRIA, "word_similarity", refuse)
    overrides = [
        "task=[zeroshot_grounding]",
        "task.zeroshot_grounding.datasets=[siim]",
        "task.zeroshot_grounding.map=final_conv",
        "task.zeroshot_grounding.upscale=1",
        "embedding_cache=null",
    ]
    m = run_evaluation(compose_eval(untrained_gloria_run, overrides), tmp_path)
    result = json.loads((tmp_path / "evaluation.json").read_text())
    info = result["details"]["zeroshot_grounding"]["siim"]
    # 48 px in (the run's side), ResNet-18's layer4: 2 x 2 (its third stage, GLoRIA's own maps: 3 x 3).
    assert info["map_mode"] == "final_conv" and info["map_shape"] == [2, 2] and info["image_size"] == 48
    assert info["map_source"].startswith("the final convolutional layer")
    assert 0 <= m["zeroshot_grounding/siim/dice"] <= 1
    assert result["normalize"] == "unit"  # evaluate.py feeds the pixels as the checkpoint was pre-trained
