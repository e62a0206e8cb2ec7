import pytest
import torch

from robustbench_labelaug import UserError, label_aug_targets


def test_targets_match_formula_and_sum_to_one():
    y = torch.tensor([0, 3, 9, 3])
    op = torch.tensor([0, 1, 0, 1])
    t = label_aug_targets(y, num_classes=10, op=op, num_ops=2, delta=0.2)
    assert t.shape == (4, 12)
    torch.testing.assert_close(t.sum(1), torch.ones(4))
    expected = torch.zeros(4, 12)
    for i, (c, j) in enumerate(zip(y.tolist(), op.tolist())):
        expected[i, c] = 0.8
        expected[i, 10 + j] = 0.2
    torch.testing.assert_close(t, expected)


def test_clean_targets_put_no_mass_on_transformation_labels():
    t = label_aug_targets(torch.tensor([2, 5]), 10, op=None, num_ops=1, delta=0.03)
    assert t.shape == (2, 11)
    assert t[:, 10].eq(0).all() and t[0, 2] == 1 and t[1, 5] == 1


def test_zero_ops_gives_plain_one_hot():
    t = label_aug_targets(torch.tensor([1, 0]), 3, op=0, num_ops=0, delta=0.5)
    torch.testing.assert_close(t, torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))


def test_paper_default_delta():
    t = label_aug_targets(torch.tensor([4]), 10, op=0)
    assert t[0, 4].item() == pytest.approx(0.97) and t[0, 10].item() == pytest.approx(0.03)


@pytest.mark.parametrize("delta", [-0.1, 1.0, 1.5])
def test_bad_delta(delta):
    with pytest.raises(UserError, match="delta"):
        label_aug_targets(torch.tensor([0]), 10, op=0, delta=delta)


def test_bad_indices():
    with pytest.raises(UserError, match="labels"):
        label_aug_targets(torch.tensor([10]), 10, op=0)
    with pytest.raises(UserError, match="transformation"):
        label_aug_targets(torch.tensor([1]), 10, op=1, num_ops=1)
