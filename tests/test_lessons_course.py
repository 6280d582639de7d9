"""The course-material lessons (13-19) and the page settings they added: the Basics page's
``normalize`` and ``shuffle``, the DNA page's ``encoding`` (numericalised A=1 C=2 G=3 T=4).

Every lesson step's expectation is trained and checked by tests/test_lessons.py (it runs over
every shipped lesson); here: the settings do what they say, the numbers the question steps state
are the numbers the pages compute, and the cubic's two-ReLU step fails when the bend disappears."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from playground import lessons as L
from playground.setups import basics as B
from playground.setups import dna as D

LESSONS, _ = L.load_all()
BY_ID = {x.id: x for x in LESSONS}
COURSE = ("one_hot_vs_numbers", "logistic_regression_dna", "normalise_shuffle_batch", "under_over_fit",
          "convolution_by_hand", "many_to_one_many_to_many", "positional_encoding")


# ---- the settings the lessons added ---------------------------------------------------------------
def test_shuffle_off_feeds_the_training_points_in_their_stored_order():
    values = {"dataset": "circle", "features": ["x1", "x2"], "layers": 0, "batch": 10, "shuffle": False}
    tr = B.build(values).make_trainer()
    seen = []
    real = tr.model.forward

    def spy(x):
        seen.append(x.detach().clone())
        return real(x)

    tr.model.forward = spy
    tr.run_epochs(2)
    fed = [b for b in seen if len(b) == 10][: 2 * tr.steps_per_epoch]
    order = torch.cat(fed[: tr.steps_per_epoch])
    assert torch.equal(order, tr.data.x_train[: len(order)])           # batch 1 = points 1-10, and so on
    assert torch.equal(torch.cat(fed[tr.steps_per_epoch:]), order)      # the same order every epoch
    on = B.build({**values, "shuffle": True}).make_trainer()
    assert on.config.shuffle and not tr.config.shuffle
    # the circle stores its class-1 points first: without shuffling each epoch ends on class 0 only
    y = tr.data.y_train
    assert (y[: len(y) // 3] == 1).all() and (y[-len(y) // 3:] == 0).all()


def test_normalize_standardises_the_inputs_with_the_training_set():
    values = {"dataset": "cubic", "features": ["x1", "x1_sq"], "layers": 0, "normalize": True}
    run = B.build(values)
    x = run.data.x_train
    assert run.spec.input_mean == pytest.approx(x.double().mean(0).tolist(), rel=1e-6)
    assert run.spec.input_std == pytest.approx(x.double().std(0, unbiased=False).tolist(), rel=1e-6)
    model = run.make_trainer().model
    z = (x - model.input_mean) / model.input_std
    assert z.mean(0).abs().max() < 1e-4 and (z.std(0, unbiased=False) - 1).abs().max() < 1e-4
    raw = B.build({**values, "normalize": False}).make_trainer().model
    assert not raw.standardise and not hasattr(raw, "input_mean")
    # same initial weights: the only difference is the standardisation in front of them
    assert torch.equal(raw.output.weight, model.output.weight)
    assert torch.allclose(model(x), raw(z), atol=1e-6)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in raw.parameters())


def test_normalised_network_is_exported_and_bundled_with_its_scaling(tmp_path):
    from playground.codegen import mlp_class_code
    from playground.models.base import spec_from_dict

    spec = B.build({"dataset": "cubic", "features": ["x1", "x1_sq"], "layers": 1, "n1": 3,
                    "normalize": True}).spec
    back = spec_from_dict(spec.to_dict())
    assert back.input_mean == spec.input_mean and back.input_std == spec.input_std
    code = mlp_class_code(spec)
    ns: dict = {"torch": torch, "nn": torch.nn}
    exec(code, ns)
    net = ns["MLP"]()
    torch.manual_seed(0)
    ours = spec.build()
    net.load_state_dict(ours.state_dict())
    x = torch.randn(5, 2) * 6
    assert torch.allclose(net(x), ours(x), atol=1e-6)


def test_integer_encoding_numericalises_a_one_hot_sequence():
    from playground.encoding import DNA, one_hot
    from playground.models.cnn import numericalise

    x = one_hot(["ACGTNA"], DNA, 6)                    # (1, 4, 6)
    n = numericalise(x)
    assert n.shape == (1, 1, 6)
    assert n[0, 0].tolist() == [1, 2, 3, 4, 0, 1]        # A=1 C=2 G=3 T=4, N (no base) = 0
    values = {"dataset": "planted", "n": 200, "length": 50, "model": "logreg"}
    one_hot_run, int_run = D.build(values), D.build({**values, "encoding": "integer"})
    assert one_hot_run.spec.encoding == "one_hot" and int_run.spec.encoding == "integer"
    m = int_run.make_trainer().model
    assert sum(p.numel() for p in m.parameters()) == 50 + 1           # one weight per position
    assert sum(p.numel() for p in one_hot_run.make_trainer().model.parameters()) == 4 * 50 + 1
    xb = int_run.make_trainer().data.x_val[:3]
    assert torch.allclose(m(xb), m.linear(numericalise(xb).flatten(1)))
    with pytest.raises(ValueError, match="encoding"):
        type(int_run.spec)(encoding="binary")


def test_the_numericalised_model_exports_a_runnable_script():
    from playground.codegen import model_source

    spec = D.build({"dataset": "planted", "n": 200, "model": "logreg", "encoding": "integer"}).spec
    imports, code = model_source(spec)
    ns: dict = {}
    exec(imports + "\n" + code, ns)
    net = ns["LogisticRegressionSpec"](**{k: v for k, v in spec.to_dict().items() if k != "kind"}).build()
    assert net.encoding == "integer" and net.linear.in_features == 50
