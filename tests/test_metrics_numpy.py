"""The per-epoch metrics (numpy, no sklearn call) agree with sklearn's, ties and edge cases included."""
import numpy as np
import pytest
from sklearn import metrics as skm

from playground import metrics as M


@pytest.mark.parametrize("seed", range(40))
def test_auroc_mcc_f1_equal_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    y = rng.integers(0, 2, n)
    scores = np.round(rng.normal(size=n) + y, int(rng.integers(0, 3)))    # rounding makes ties
    pred = (scores > 0.5).astype(int)
    if len(np.unique(y)) == 2:
        assert M.auroc(y, scores) == pytest.approx(skm.roc_auc_score(y, scores), abs=1e-12)
    else:
        assert np.isnan(M.auroc(y, scores))
    if len(np.unique(np.r_[y, pred])) > 1:
        assert M.mcc(y, pred) == pytest.approx(skm.matthews_corrcoef(y, pred), abs=1e-12)
    assert M.f1(y.astype(np.float32), pred) == pytest.approx(skm.f1_score(y, pred, zero_division=0), abs=1e-12)
    k = int(rng.integers(3, 6))
    ym = rng.integers(0, k, n)
    pm = np.where(rng.random(n) < 0.6, ym, rng.integers(0, k + 1, n))      # a label only predicted, too
    assert M.mcc(ym, pm) == pytest.approx(skm.matthews_corrcoef(ym, pm), abs=1e-12)
    assert M.f1(ym, pm, "macro") == pytest.approx(skm.f1_score(ym, pm, average="macro", zero_division=0), abs=1e-12)


def test_edge_cases():
    assert M.auroc([1, 1, 1], [0.2, 0.5, 0.9]) != M.auroc([1, 1, 1], [0.2, 0.5, 0.9])     # nan: one class
    assert M.auroc([0, 1, 0, 1], [0.5] * 4) == 0.5                                        # all tied
    assert M.auroc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert M.mcc([1, 1, 1], [1, 1, 1]) == 0.0 and M.mcc([0, 1, 0, 1], [1, 1, 1, 1]) == 0.0
    assert M.f1([0, 0], [0, 0]) == 0.0 and M.f1([1, 0], [1, 0]) == 1.0
    with pytest.raises(ValueError):
        M.f1([0, 1], [0, 1], average="micro")
