import pytest
import torch

from syncxr.models.gloria_loss import LocalLossSettings, Workspace, global_loss, local_loss, local_loss_packed
from syncxr.models.gloria_loss_reference import local_loss_reference

LENGTHS = [3, 7, 1, 5, 2]  # varied caption lengths; the longest fills all T = 7 word columns


def _inputs(seed=0, b=5, d=12, h=3, w=4, t=7, scale=1.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    regions = (scale * torch.randn(b, d, h, w, generator=g, dtype=dtype)).requires_grad_()
    words = (scale * torch.randn(b, d, t, generator=g, dtype=dtype)).requires_grad_()
    return regions, words


def _assert_close(a, b, rel=1e-5):
    diff, scale = (a - b).abs().max(), b.abs().max()
    assert diff <= rel * scale, f"max |difference| {diff:.3g} against max |value| {scale:.3g}"


@pytest.mark.parametrize("gram", [True, False], ids=["gram", "contexts"])
@pytest.mark.parametrize("divide_by_temp2", [True, False], ids=["paper", "released_code"])
def test_matches_the_per_caption_loop(gram, divide_by_temp2):
    regions, words = _inputs()
    for direction in (0, 1):  # each directional loss and its gradients on their own
        ours = local_loss(regions, words, LENGTHS, LocalLossSettings(divide_by_temp2=divide_by_temp2), gram=gram)
        ref = local_loss_reference(regions, words, LENGTHS, divide_by_temp2=divide_by_temp2)
        _assert_close(ours[direction], ref[direction])
        g_ours = torch.autograd.grad(ours[direction], (regions, words))
        g_ref = torch.autograd.grad(ref[direction], (regions, words))
        _assert_close(g_ours[0], g_ref[0])
        _assert_close(g_ours[1], g_ref[1])
    for i, n in enumerate(LENGTHS):
        _assert_close(ours[2][i, :n].detach(), ref[2][i].detach())
        assert ours[2][i, n:].abs().sum() == 0


def test_padded_words_are_never_read():
    regions, words = _inputs()
    garbage = words.detach().clone()
    for i, n in enumerate(LENGTHS):
        garbage[i, :, n:] = float("nan")
    garbage.requires_grad_()
    clean = local_loss(regions, words, LENGTHS)
    dirty = local_loss(regions, garbage, LENGTHS)
    assert torch.equal(clean[0], dirty[0]) and torch.equal(clean[1], dirty[1])
    g_clean = torch.autograd.grad(clean[0] + clean[1], (regions, words))
    g_dirty = torch.autograd.grad(dirty[0] + dirty[1], (regions, garbage))
    assert torch.equal(g_clean[0], g_dirty[0]) and torch.equal(g_clean[1], g_dirty[1])


def test_hand_written_backward_matches_finite_differences():
    # Independent of the reference loop: the directional derivative along a random direction.
    regions, words = _inputs(seed=1, b=3, d=4, h=2, w=2, t=3)
    g = torch.Generator().manual_seed(5)
    u_r = torch.randn(regions.shape, generator=g, dtype=regions.dtype)
    u_w = torch.randn(words.shape, generator=g, dtype=words.dtype)
    for gram in (True, False):

        def f(r, w):
            l0, l1, _ = local_loss(r, w, [2, 3, 1], gram=gram)  # noqa: B023 (used in this iteration)
            return l0 + 0.5 * l1

        grads = torch.autograd.grad(f(regions, words), (regions, words))
        analytic = (grads[0] * u_r).sum() + (grads[1] * u_w).sum()
        eps = 1e-6
        with torch.no_grad():
            up, down = f(regions + eps * u_r, words + eps * u_w), f(regions - eps * u_r, words - eps * u_w)
            numeric = (up - down) / (2 * eps)
        assert analytic.item() == pytest.approx(numeric.item(), rel=1e-6)


def test_large_features_stay_finite_in_float32():
    # Raw dot products in the hundreds: the word softmax must be shifted caption by caption.
    regions, words = _inputs(seed=2, scale=6.0, dtype=torch.float32)
    ours = local_loss(regions, words, LENGTHS)
    ref = local_loss_reference(regions, words, LENGTHS)
    assert torch.isfinite(ours[0]) and torch.isfinite(ours[1])
    assert ours[0].item() == pytest.approx(ref[0].item(), rel=1e-4)
    grads = torch.autograd.grad(ours[0] + ours[1], (regions, words))
    assert all(torch.isfinite(g).all() for g in grads)


def test_a_shared_workspace_never_changes_results():
    regions, words = _inputs()

    def loss_and_grads(r, w, lengths, workspace=None):
        l0, l1, _ = local_loss(r, w, lengths, workspace=workspace)
        return (l0 + l1).detach(), torch.autograd.grad(l0 + l1, (r, w))

    expected = loss_and_grads(regions, words, LENGTHS)
    ws = Workspace()
    loss_and_grads(regions, words, LENGTHS, ws)
    loss_and_grads(regions[:2], words[:2], LENGTHS[:2], ws)  # a smaller call in between
    again = loss_and_grads(regions, words, LENGTHS, ws)
    assert torch.equal(again[0], expected[0]) and all(map(torch.equal, again[1], expected[1]))
    # Two forwards before either backward: the second finds the workspace lent out.
    a, b = local_loss(regions, words, LENGTHS, workspace=ws), local_loss(regions, words, LENGTHS, workspace=ws)
    grads = torch.autograd.grad(a[0] + a[1] + b[0] + b[1], (regions, words))
    assert all(torch.allclose(g, 2 * e) for g, e in zip(grads, expected[1]))


def test_backward_runs_once():
    regions, words = _inputs()
    l0, l1, _ = local_loss(regions, words, LENGTHS)
    (l0 + l1).backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="only once"):
        (l0 + l1).backward()


def test_bad_lengths_are_rejected():
    regions, words = _inputs()
    with pytest.raises(ValueError, match="at least one word"):
        local_loss(regions, words, [3, 0, 1, 5, 2])
    with pytest.raises(ValueError, match="exceed"):
        local_loss(regions, words, [3, 8, 1, 5, 2])
    with pytest.raises(ValueError, match="do not fit"):
        local_loss_packed(regions, torch.randn(4, 12, dtype=torch.float64), torch.tensor([1, 1, 1, 1, 1]))


def test_global_loss_is_the_scaled_cosine_cross_entropy():
    torch.manual_seed(0)
    img, txt = torch.randn(6, 8), torch.randn(6, 8)
    i2t, t2i = global_loss(img, txt, temp3=10.0)
    cos = torch.nn.functional.normalize(img, dim=1) @ torch.nn.functional.normalize(txt, dim=1).t()
    logp = (10 * cos).log_softmax(1)
    assert i2t.item() == pytest.approx(-logp.diag().mean().item(), rel=1e-5)
    assert t2i.item() == pytest.approx(-(10 * cos).t().log_softmax(1).diag().mean().item(), rel=1e-5)
