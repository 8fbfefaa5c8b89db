import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from syncxr.phantom.renderer import DRAWERS, render
from syncxr.phantom.scene import Appearance, sample_scene
from syncxr.phantom.vocabulary import FINDING_KEYS, SEVERITIES


def _clean(scene):
    """Same scene without noise or blur, so differences come from the finding alone."""
    from dataclasses import replace

    return replace(
        scene, appearance=Appearance(noise_sigma=0.0, blur_sigma=0.0, texture_seed=scene.appearance.texture_seed)
    )


@pytest.mark.parametrize("key", FINDING_KEYS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_finding_changes_pixels_inside_its_mask_and_not_far_outside(key, seed):
    other = "nasogastric_tube" if key not in ("nasogastric_tube", "hernia") else "nodule"
    scene = _clean(sample_scene(np.random.default_rng(seed), [key, other]))
    with_f, masks = render(scene, 128)
    without, _ = render(scene.without(key), 128)
    mask = masks[key]
    assert mask.sum() > 0
    diff = np.abs(with_f.astype(int) - without.astype(int)) > 2
    # The finding is visible: a good part of its mask changed.
    assert diff[mask].mean() > 0.3, f"{key}: only {diff[mask].mean():.2f} of the mask changed"
    # ... and nothing changed far from it.
    near = binary_dilation(mask, iterations=3)
    assert diff[~near].sum() == 0, f"{key}: {diff[~near].sum()} pixels changed outside its mask"


def test_render_is_deterministic_and_scene_dependent():
    a = sample_scene(np.random.default_rng(5), ["edema"])
    b = sample_scene(np.random.default_rng(6), ["edema"])
    assert np.array_equal(render(a)[0], render(a)[0])
    assert not np.array_equal(render(a)[0], render(b)[0])


def test_appearance_varies_intensity_statistics():
    imgs = [render(sample_scene(np.random.default_rng(s), []))[0] for s in range(12)]
    means = [im.mean() for im in imgs]
    assert np.std(means) > 2.0  # exposure/contrast differ between images


def test_low_quality_and_lateral_images_differ_from_a_normal_frontal():
    rng = np.random.default_rng(0)
    normal = render(sample_scene(rng, []))[0].astype(float)
    lateral = render(sample_scene(np.random.default_rng(0), [], view="LATERAL"))[0].astype(float)
    assert np.abs(normal - lateral).mean() > 10
    # In a frontal image the spine sits at the centre; in the lateral one it is at the back.
    col = lambda im, x: im[40:90, int(x * 128)].mean()  # noqa: E731
    assert col(lateral, 0.78) > col(lateral, 0.5)


def test_unknown_view_is_rejected():
    scene = sample_scene(np.random.default_rng(0), [], view="AP-supine")
    with pytest.raises(ValueError, match="unknown view"):
        render(scene)


def test_masks_lie_in_plausible_anatomy():
    rng = np.random.default_rng(11)
    for _ in range(5):
        scene = sample_scene(rng, ["pleural_effusion", "pneumothorax", "cardiomegaly"])
        _, masks = render(scene, 128)
        ys_eff = np.nonzero(masks["pleural_effusion"])[0]
        ys_ptx = np.nonzero(masks["pneumothorax"])[0]
        # Fluid lies at the bases, free air at the apices.
        assert ys_eff.mean() > ys_ptx.mean() + 20
        ys_heart, xs_heart = np.nonzero(masks["cardiomegaly"])
        assert 50 < xs_heart.mean() < 85


def _signatures(seed: int):
    """Per finding, drawn alone and large on one clean chest: its mask and what it changed."""
    from dataclasses import replace

    base = _clean(sample_scene(np.random.default_rng(seed), []))
    normal = render(base, 96)[0].astype(float)
    out = {}
    for i, key in enumerate(FINDING_KEYS):
        f = sample_scene(np.random.default_rng([seed, i]), [key]).findings[0]
        img, masks = render(replace(base, findings=(replace(f, severity="large"),)), 96)
        out[key] = (masks[key], img.astype(float) - normal)
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_every_finding_is_drawn_distinguishably(seed):
    """Each finding changes a normal chest where its mask is, and no two findings leave the same
    trace: their masks differ, or what they do to the pixels there differs."""
    assert set(DRAWERS) | {"cardiomegaly"} == set(FINDING_KEYS) and len(FINDING_KEYS) >= 30
    sig = _signatures(seed)
    for key, (mask, diff) in sig.items():
        assert mask.any() and np.abs(diff[mask]).mean() > 8, key  # pixel statistics differ from normal
    for i, a in enumerate(FINDING_KEYS):
        for b in FINDING_KEYS[i + 1 :]:
            (ma, da), (mb, db) = sig[a], sig[b]
            iou = (ma & mb).sum() / (ma | mb).sum()
            corr = np.corrcoef(da.ravel(), db.ravel())[0, 1]
            assert iou < 0.5 or corr < 0.8, (a, b, iou, corr)


def test_severity_grows_what_is_drawn():
    from dataclasses import replace

    scene = _clean(sample_scene(np.random.default_rng(4), ["pleural_effusion", "mass", "cavity", "pacemaker"]))
    area = {
        s: render(replace(scene, findings=tuple(replace(f, severity=s) for f in scene.findings)), 96)[1]
        for s in SEVERITIES
    }
    for key in ("pleural_effusion", "mass", "cavity", "pacemaker"):  # a pacemaker's leads: one to three
        sizes = [area[s][key].sum() for s in SEVERITIES]
        assert sizes[0] < sizes[1] < sizes[2], (key, sizes)
