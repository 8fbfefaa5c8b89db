import numpy as np
import pytest
import torch

from syncxr.eval.metrics import best_f1_threshold, classification_metrics
from syncxr.eval.zeroshot import class_prompts, prompt_scores


def test_metrics_match_hand_computed_values():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    s = np.array([[0.9, 0.2], [0.3, 0.4], [0.6, 0.8], [0.7, 0.5]])
    m = classification_metrics(y, s, np.array([0.5, 0.5]), ["a", "b"])
    # class a: positives 0.9, 0.6; negatives 0.3, 0.7 -> 3 of 4 pairs ordered -> AUC 0.75
    assert m["a/auc"] == pytest.approx(0.75)
    # predictions a: 1,0,1,1 -> TP 2, FP 1, FN 0 -> F1 0.8, ACC 0.75
    assert m["a/f1"] == pytest.approx(0.8) and m["a/acc"] == pytest.approx(0.75)
    # class b: positives 0.4, 0.8; negatives 0.2, 0.5 -> 3 of 4 -> 0.75; preds 0,0,1,1 -> F1 0.5
    assert m["b/auc"] == pytest.approx(0.75)
    assert m["b/f1"] == pytest.approx(0.5) and m["b/acc"] == pytest.approx(0.5)
    assert m["auc"] == pytest.approx(0.75) and m["f1"] == pytest.approx(0.65)


def test_single_class_labels_fail_clearly():
    with pytest.raises(ValueError, match="only negative"):
        classification_metrics(np.zeros((3, 1)), np.random.rand(3, 1), np.array([0.5]), ["edema"])


def test_best_f1_threshold_separates_a_separable_set():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    t = best_f1_threshold(y, s)
    assert 0.3 < t <= 0.8


def test_prompt_scores_prefer_the_closer_prompt():
    pos = torch.tensor([[1.0, 0.0]])
    neg = torch.tensor([[0.0, 1.0]])
    imgs = torch.tensor([[0.9, 0.1], [0.1, 0.9]])
    imgs = imgs / imgs.norm(dim=1, keepdim=True)
    p = prompt_scores(imgs, pos, neg)
    assert p.shape == (2, 1) and p[0, 0] > 0.5 > p[1, 0]


def test_class_prompts_fill_the_lower_case_name():
    pos, neg = class_prompts("Pleural Effusion", ["{}.", "there is {}."], ["no {}."])
    assert pos == ["pleural effusion.", "there is pleural effusion."] and neg == ["no pleural effusion."]


from syncxr.eval.metrics import auc_metrics, iou_dice, recall_at_k  # noqa: E402


def test_iou_and_dice_match_hand_computed_values():
    pred = np.zeros((4, 4), bool)
    pred[0:2, 0:2] = True  # 4 pixels
    target = np.zeros((4, 4), bool)
    target[1:3, 1:3] = True  # 4 pixels, 1 shared
    iou, dice = iou_dice(pred, target)
    assert iou == pytest.approx(1 / 7)  # 1 / (4 + 4 - 1)
    assert dice == pytest.approx(2 * 1 / 8)
    batch = np.stack([pred, target, np.zeros((4, 4), bool)])
    ious, dices = iou_dice(batch, np.stack([target, target, np.zeros((4, 4), bool)]))
    assert ious.tolist() == pytest.approx([1 / 7, 1.0, 1.0])  # both empty: a perfect match
    assert dices.tolist() == pytest.approx([0.25, 1.0, 1.0])
    assert iou_dice(pred, np.zeros((4, 4), bool)) == (0.0, 0.0)
    with pytest.raises(ValueError, match="differ in shape"):
        iou_dice(pred, np.zeros((3, 4), bool))


def test_recall_at_k_matches_hand_computed_values():
    sim = np.array(
        [
            [0.9, 0.1, 0.0, 0.2],  # query 0: match ranked 1st
            [0.8, 0.5, 0.7, 0.0],  # query 1: 0.8 and 0.7 above the match -> rank 3
            [0.0, 0.9, 0.1, 0.0],  # query 2: 0.9 above the match -> rank 2
            [0.4, 0.4, 0.4, 0.4],
        ]
    )  # query 3: ties count against the match -> rank 4
    r = recall_at_k(sim, (1, 2, 3, 4))
    assert r == {1: 0.25, 2: 0.5, 3: 0.75, 4: 1.0}
    assert recall_at_k(sim.T, (1,))[1] == 0.5  # text->image (columns): texts 0 and 3 rank their image first
    with pytest.raises(ValueError, match="square"):
        recall_at_k(np.zeros((2, 3)))


def test_auc_metrics_per_class_and_mean():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    s = np.array([[0.9, 0.2], [0.3, 0.4], [0.6, 0.8], [0.7, 0.5]])
    m = auc_metrics(y, s, ["a", "b"])
    assert m == pytest.approx({"a/auc": 0.75, "b/auc": 0.75, "auc": 0.75})


def test_metric_keys_follow_the_project_scheme():
    from syncxr.eval.metrics import prefix_metrics

    got = prefix_metrics("zeroshot_cls", "chexpert", {"Pleural Effusion/auc": 0.9, "auc": 0.8}, suffix="_10pct")
    assert got == {"zeroshot_cls/chexpert/pleural_effusion/auc_10pct": 0.9, "zeroshot_cls/chexpert/auc_10pct": 0.8}
