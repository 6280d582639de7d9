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
    per_batch = [int(y[i:i + 10].sum()) for i in range(0, len(y), 10)]
    assert per_batch == [10] * 12 + [5] + [0] * 12        # lesson 15: 12 class-1 batches, one mixed, 12 class-0


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


# ---- the lessons ------------------------------------------------------------------------------------
def test_the_course_lessons_are_shipped_as_numbers_13_to_19():
    assert [BY_ID[i].number for i in COURSE] == list(range(13, 20))
    for i in COURSE:
        les = BY_ID[i]
        assert sum(bool(s.question) for s in les.steps) >= len(les.steps) - 1, i   # (almost) every step asks
        assert any(s.expect for s in les.steps) or i == "convolution_by_hand", i


def _conv(step):
    """The convolution the '✋ Convolution by hand' tab computes for a step's conv_ settings."""
    from playground.convolution import convolve_by_hand

    v = L.full_settings(step)
    assert v["conv_source"] == "typed" and all(v[f"conv_kind{i}"] == "consensus" for i in (1, 2))
    filters = [v[f"conv_cons{i}"] for i in range(1, int(v["conv_filters"]) + 1)]
    return convolve_by_hand(v["conv_sequence"], filters, bias=[v[f"conv_bias{i}"] for i in range(1, len(filters) + 1)],
                            pool=int(v["conv_pool"]) or None, padding=int(v["conv_padding"]),
                            stride=int(v["conv_stride"]))


def _numbers(text: str) -> list[float]:
    return [float(t) for t in text.split()]


def test_the_convolution_lesson_states_the_numbers_its_tab_computes():
    les = BY_ID["convolution_by_hand"]
    one, two, pooled, padded, quiz, learned = les.steps
    assert "ACCGTCACCTA" == L.full_settings(one)["conv_sequence"]
    r = _conv(one)
    assert r.feature_maps.tolist() == [_numbers("1 3 1 0 1 1 1 2 1")] and "**1 3 1 0 1 1 1 2 1**" in one.text
    assert r.feature_maps[0, 1] == 3 and r.feature_maps[0, 3] == 0 and r.feature_maps[0, 7] == 2   # the answer's windows
    r = _conv(two)
    assert r.feature_maps[1].tolist() == _numbers("0 0 0 1 2 0 0 0 2") and "**0 0 0 1 2 0 0 0 2**" in two.text
    r = _conv(pooled)
    assert r.pooled.tolist() == [_numbers("3 1 1 2"), _numbers("0 1 2 0")]
    assert r.flattened.tolist() == _numbers("3 1 1 2 0 1 2 0") and "**3 1 1 2 0 1 2 0**" in pooled.text
    r = _conv(padded)
    assert r.feature_maps.shape[1] == 11 and "= **11**" in padded.text
    assert _conv(quiz).pooled.shape == (2, 4)
    assert r.torch_difference() < 1e-6                                   # the same numbers as F.conv1d
    v = L.full_settings(learned)
    assert v["conv_kind1"] == "learned" and v["model"] == "course"


def test_the_positional_encoding_lesson_reads_the_heatmaps_numbers():
    from playground.attention import positional_encoding
    from playground.setups import sequence as S

    les = BY_ID["positional_encoding"]
    spec = S.build(L.full_settings(les.step(1))).spec
    pe = positional_encoding(spec, 60)                   # what the 📍 tab draws
    assert pe.shape == (60, 16)
    assert pe[0].tolist() == [0.0, 1.0] * 8               # step 1: 0, 1, 0, 1, ...
    assert pe[3, 0] == pytest.approx(0.14, abs=0.005) and pe[6, 0] == pytest.approx(-0.28, abs=0.005)
    assert 10000 ** (2 / 16) == pytest.approx(3.16, abs=0.01) and 10000 ** (14 / 16) == pytest.approx(3162, abs=1)
    assert pe[:, 14].min() >= 0 and pe[59, 14] == pytest.approx(0.02, abs=0.002) and pe[:, 15].min() > 0.999
    period = np.argmax(np.diff(np.sign(pe[1:, 0])) > 0)   # the first upward zero crossing of sin(pos)
    assert 5 <= period + 1 <= 7                           # ≈ 2π positions
    learned = S.build(L.full_settings(les.step(3))).spec
    assert learned.max_len * learned.d_model == 64 * 16 == 1024


def test_the_rnn_lesson_parameter_difference_is_the_read_out():
    from playground.setups import sequence as S

    les = BY_ID["many_to_one_many_to_many"]
    one, many = (S.build(L.full_settings(s)).make_trainer().model for s in les.steps)
    assert one.spec.output == "pooled" and many.spec.output == "per_position"
    assert (one.head.in_features, one.head.out_features, many.head.out_features) == (64, 1, 3)
    body = lambda m: {k: v.shape for k, v in m.state_dict().items() if not k.startswith("head")}
    assert body(one) == body(many)                         # the same recurrent weights
    assert (3 * 64 + 3) - (64 + 1) == 130


@pytest.mark.parametrize("broken", [{"activation": "linear"}, {"seed": 0}])
def test_the_cubic_two_relu_step_fails_when_the_bend_disappears(broken):
    """Step 2 of the cubic passes only while the two ReLUs bend inside the data: a linear
    activation, or a seed whose hinges both land outside the data, gives a line and fails."""
    step = BY_ID["cubic"].step(2)
    assert step.settings["seed"] == 5
    first = L.check_step(step, broken)[0]
    assert first.status == "fail", first.message


def test_the_cubic_two_relus_bend_twice_inside_the_data():
    step = BY_ID["cubic"].step(2)
    tr = B.build(L.full_settings(step)).make_trainer()
    tr.run_epochs(300)
    layer = tr.model.hidden_layers[0]
    kinks = sorted((-layer.bias / layer.weight[:, 0]).tolist())
    assert -6 < kinks[0] < kinks[1] < 6                  # both hinges bend inside x ∈ [-6, 6]
    assert kinks[0] == pytest.approx(-0.8, abs=0.5) and kinks[1] == pytest.approx(1.9, abs=0.5)   # as the text says


# ---- the widgets on the pages ---------------------------------------------------------------------
def test_the_basics_page_has_the_normalise_and_shuffle_toggles(app_test):
    at = app_test("pages/1_Neural_Network_Basics.py", {"dataset": "cubic", "features": "x1,x1_sq", "layers": "0",
                                                        "normalize": "1", "shuffle": "0"})
    at.run()
    assert not at.exception
    toggles = {t.label: t.value for t in at.toggle}
    assert toggles["Normalise inputs (mean 0, sd 1)"] is True and toggles["Shuffle every epoch"] is False
    assert at.query_params["normalize"] in ("1", ["1"]) and at.query_params["shuffle"] in ("0", ["0"])
    at.toggle(key="basics.shuffle").set_value(True).run()
    assert not at.exception and at.query_params.get("shuffle") in (None, "1", ["1"])


def test_the_dna_page_offers_numericalised_bases_for_the_logistic_regression(app_test):
    at = app_test("pages/2_DNA_CNN.py", {"model": "logreg", "encoding": "integer", "n": "200"})
    at.run()
    assert not at.exception
    radio = next(r for r in at.sidebar.radio if r.label == "Bases as")
    assert radio.value == "integer"
    assert any("50 numbers (A=1 C=2 G=3 T=4)" in m.value for m in at.markdown)


@pytest.mark.parametrize("values", [
    {"dataset": "cubic", "features": ["x1", "x1_sq"], "layers": 1, "n1": 3, "optimizer": "sgd", "lr": 0.03,
     "normalize": True},
    {"dataset": "circle", "features": ["x1", "x2"], "layers": 1, "n1": 4, "optimizer": "sgd", "lr": 0.3,
     "shuffle": False},
])
def test_the_exported_script_trains_as_the_page_does_with_the_new_settings(values, capsys):
    """The 🐍 code of a normalised or unshuffled run prints the trainer's validation losses."""
    import re

    from playground.codegen import toy_script_from_run

    run = B.build(values)
    tr = run.make_trainer()
    tr.run_epochs(5)
    src = toy_script_from_run(run, epochs=5)
    assert ("input_mean" in src) == bool(values.get("normalize"))
    assert ("torch.arange(n_train)" in src) == (values.get("shuffle") is False)
    capsys.readouterr()
    exec(compile(src, "train_mlp.py", "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    printed = {int(e): float(v) for e, v in re.findall(r"epoch +(\d+) +train loss [0-9.]+ +validation loss ([0-9.]+)", out)}
    assert len(printed) >= 3
    for epoch, loss in printed.items():
        assert loss == pytest.approx(tr.history[epoch]["val_loss"], abs=6e-5), epoch
