"""The foundation: toy data, the MLP spec, the Trainer, the lessons they must support."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from playground import TrainConfig, Trainer
from playground.basics import parameter_lines
from playground.data import toy
from playground.data.split import SplitData
from playground.landscape import descent_path, mse_grid
from playground.models import MLPSpec, build_model, spec_from_dict


def train(dataset, hidden, act, epochs, seed=1, lr=0.03, optimizer="adam", features=("x1",), batch=10, noise=0.0, **kw):
    data = toy.make_split(dataset, 500, noise, 0.5, seed, list(features))
    model = build_model(MLPSpec(data.x_train.shape[1], hidden, act, 1), seed)
    tr = Trainer(model, data, TrainConfig(optimizer=optimizer, lr=lr, batch_size=batch, seed=seed, **kw))
    tr.run_epochs(epochs)
    return tr


def test_library_does_not_import_streamlit():
    code = "import playground, playground.models, playground.data.toy, playground.codegen, playground.plots, sys; " \
           "assert 'streamlit' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", list(toy.GENERATORS))
def test_toy_sets_are_pure_functions_of_n_noise_seed(name):
    a = toy.generate(name, 200, 0.2, 5)
    b = toy.generate(name, 200, 0.2, 5)
    c = toy.generate(name, 200, 0.2, 6)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == (200, toy.TOY_SETS[name].dims)
    if toy.TOY_SETS[name].problem == "classification":
        assert set(np.unique(a[1])) == {0.0, 1.0}


def test_noise_and_ratio_limits_are_enforced():
    with pytest.raises(ValueError):
        toy.generate("circle", 100, 0.6, 0)
    with pytest.raises(ValueError):
        toy.make_split("circle", 100, 0.0, 1.0, 0)
    with pytest.raises(ValueError):
        toy.make_split("circle", 100, 0.0, 0.95, 0, val_fraction=0.1)   # no room left for a test set
    d = toy.make_split("xor", 500, 0.0, 0.3, 0)          # 30 % train, 10 % validation (the default), 60 % test
    assert d.sizes() == (150, 50, 300)
    parts = [set(d.meta[k].tolist()) for k in ("train_idx", "val_idx", "test_idx")]
    assert set.union(*parts) == set(range(500)) and sum(map(len, parts)) == 500     # disjoint, all used
    assert len(d.meta["points_val"]) == 50 and np.array_equal(d.meta["points_val"], d.meta["points"][d.meta["val_idx"]])
    share = float(np.mean(d.meta["labels"]))
    for y in (d.y_train, d.y_val, d.y_test):             # stratified: each part keeps the set's class share
        assert float(y.mean()) == pytest.approx(share, abs=1 / len(y))


def test_features_match_tf_playground():
    X = np.array([[2.0, -3.0]], dtype=np.float32)
    f = toy.featurize(X, ["x1", "x2", "x1_sq", "x2_sq", "x1x2", "sin_x1", "sin_x2"])
    assert np.allclose(f[0], [2, -3, 4, 9, -6, np.sin(2), np.sin(-3)])
    assert toy.valid_features("cubic", ["x2", "x1x2"]) == ["x1"]  # 1-D sets only offer x1 features


def test_cubic_lesson_one_linear_neuron_fails_relu_4_2_fits():
    linear = train("cubic", (1,), "linear", 150)
    relu = train("cubic", (4, 2), "relu", 150)
    assert linear.latest["val_loss"] > 0.015          # a line cannot bend
    assert relu.latest["val_loss"] * 4 < linear.latest["val_loss"]
    # and the held-out test set, scored once at the end, agrees
    lin_test, relu_test = linear.score_test(), relu.score_test()
    assert lin_test["loss"] > 0.015 and relu_test["loss"] * 4 < lin_test["loss"]
    assert lin_test["looks"] == 1 and lin_test["n"] == 200


def test_same_seed_same_history_different_seed_differs():
    a = train("spiral", (6, 4), "tanh", 5, seed=3, features=("x1", "x2"))
    b = train("spiral", (6, 4), "tanh", 5, seed=3, features=("x1", "x2"))
    c = train("spiral", (6, 4), "tanh", 5, seed=4, features=("x1", "x2"))
    key = [(h["train_loss"], h["val_loss"]) for h in a.history]
    assert key == [(h["train_loss"], h["val_loss"]) for h in b.history]
    assert key != [(h["train_loss"], h["val_loss"]) for h in c.history]
    assert a.score_test() == b.score_test()


def test_loss_goes_down_on_circle_with_every_optimizer():
    for opt, lr in (("sgd", 0.3), ("momentum", 0.03), ("adam", 0.03), ("adamw", 0.03)):
        tr = train("circle", (4, 2), "tanh", 30, optimizer=opt, lr=lr, features=("x1", "x2"))
        assert tr.history[-1]["train_loss"] < 0.7 * tr.history[0]["train_loss"], opt


def test_divergent_learning_rate_is_reported_not_raised():
    tr = train("plane", (8, 8), "relu", 50, lr=10.0, optimizer="sgd", features=("x1", "x2"))
    assert tr.diverged is not None and tr.diverged.startswith("diverged at epoch")
    assert tr.done
    before = tr.epoch
    tr.run_epochs(5)  # stays stopped, no exception
    assert tr.epoch == before


def test_learning_rate_changes_mid_training_without_reset():
    tr = train("circle", (4,), "tanh", 3, features=("x1", "x2"))
    w = tr.model.output.weight.detach().clone()
    tr.set_lr(0.001)
    assert tr.optimizer.param_groups[0]["lr"] == 0.001
    assert torch.equal(tr.model.output.weight, w) and tr.epoch == 3


def test_step_run_for_and_batch_sizes():
    data = toy.make_split("xor", 100, 0.0, 0.5, 0)
    tr = Trainer(build_model(MLPSpec(2, (3,), "relu", 1), 0), data, TrainConfig(batch_size=0))
    assert tr.steps_per_epoch == 1
    tr.step(2)
    assert tr.epoch == 2
    tr2 = Trainer(build_model(MLPSpec(2, (3,), "relu", 1), 0), data, TrainConfig(batch_size=1))
    assert tr2.steps_per_epoch == 50
    rec = tr2.run_for(0.05)
    assert rec["steps_done"] > 0 and tr2.steps == rec["steps_done"]


def test_l1_regularisation_shrinks_weights():
    plain = train("gauss", (8, 8), "relu", 40, features=("x1", "x2"))
    l1 = train("gauss", (8, 8), "relu", 40, features=("x1", "x2"), regularization="l1", reg_rate=0.03)
    size = lambda t: sum(p.abs().sum().item() for n, p in t.model.named_parameters() if p.dim() > 1)
    assert size(l1) < 0.6 * size(plain)


def test_warmup_grad_accum_and_early_stopping():
    tr = train("circle", (4,), "tanh", 2, features=("x1", "x2"), warmup_steps=100, grad_accum=5)
    assert tr.optimizer_steps == tr.steps // 5
    assert tr.optimizer.param_groups[0]["lr"] < 0.03  # still warming up
    es = train("gauss", (16, 16), "relu", 400, lr=0.1, features=("x1", "x2"), noise=0.5, early_stopping=5)
    assert es.stopped and "early stopping" in es.stopped and es.epoch < 400
    assert "validation" in es.stopped and es.epoch - es.best_epoch == 5
    # the best epoch's weights are back: the validation loss now is the best one in the history
    best = min(h["val_loss"] for h in es.history)
    assert es.history[es.best_epoch]["val_loss"] == best
    assert es.evaluate()["loss"] == pytest.approx(best, rel=1e-5)


def test_parameter_lines_count_like_the_course():
    lines = parameter_lines(MLPSpec(2, (3,), "relu", 1))
    assert lines == ["Layer 1: 2×3 weights + 3 biases = 9", "Output layer: 3×1 weights + 1 biases = 4", "Total: 13"]
    model = build_model(MLPSpec(2, (3,), "relu", 1))
    assert sum(p.numel() for p in model.parameters()) == 13


def test_spec_round_trip_and_limits():
    spec = MLPSpec(3, (5, 2), "gelu", 1)
    assert spec_from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError):
        MLPSpec(2, (4,) * 7)
    with pytest.raises(ValueError):
        MLPSpec(2, (33,))
    with pytest.raises(ValueError):
        spec_from_dict({"kind": "mlp", "neurons": 3})


def test_gradient_descent_view_learning_rates():
    data = toy.make_split("linear", 200, 0.0, 0.5, 0, ["x1"])
    crawl = descent_path(data, 0.0001, 100, w0=-1.5, b0=1.5)
    good = descent_path(data, 0.003, 100, w0=-1.5, b0=1.5)
    bad = descent_path(data, 0.1, 100, w0=-1.5, b0=1.5)
    assert crawl.loss[-1] > 0.5 * crawl.loss[0]          # barely moves
    assert good.loss[-1] < 0.2 * good.loss[0]            # converges
    assert bad.diverged or bad.loss[-1] > bad.loss[0]    # overshoots
    x, y = data.x_train.numpy().ravel(), data.y_train.numpy()
    g = mse_grid(x, y, np.array([0.3]), np.array([-0.2]))
    assert np.isclose(g[0, 0], np.mean((0.3 * x - 0.2 - y) ** 2), rtol=1e-6)


def test_split_data_validates_task():
    with pytest.raises(ValueError):
        SplitData(torch.zeros(2, 1), torch.zeros(2), torch.zeros(1, 1), torch.zeros(1), "clustering")


def test_output_view_image_puts_points_and_output_where_the_axes_say():
    """The output view is one image on plotly axes: a class-1 point at (4, 4) over an all-class-0
    output shows blue at (4, 4) and orange at the mirror point (4, -4) (plotly draws the image
    upwards from y0, so the bottom row comes first); hover markers only when asked for."""
    import base64
    import io

    from PIL import Image

    from playground.data.toy import RANGE
    from playground.plots.toy import OUTPUT_PX, output_figure

    pts, y = np.array([[4.0, 4.0]]), np.array([1.0])
    fig = output_figure(np.zeros(50 * 50), 50, pts, y, None, None, "classification", hover=True).to_dict()
    image = fig["data"][0]
    assert image["type"] == "image" and image["y0"] < 0 and image["dy"] > 0
    assert any(t.get("marker", {}).get("opacity") == 0 for t in fig["data"][1:])     # hover markers
    raw = base64.b64decode(image["source"].split(",", 1)[1])
    img = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"), dtype=float)
    assert img.shape == (OUTPUT_PX, OUTPUT_PX, 3)

    def pixel(x, y_):
        col = int((x + RANGE) / (2 * RANGE) * OUTPUT_PX)
        row = int((y_ + RANGE) / (2 * RANGE) * OUTPUT_PX)     # row 0 = lowest x2
        return img[row, col]

    blue, orange = pixel(4, 4), pixel(4, -4)
    assert blue[2] > blue[0] + 60, blue              # the point: TF Playground blue
    assert orange[0] > orange[2] + 60, orange        # the output there: orange
    quiet = output_figure(np.zeros(50 * 50), 50, pts, y, None, None, "classification", hover=False).to_dict()
    assert not any(t.get("marker", {}).get("opacity") == 0 for t in quiet["data"][1:])


def test_the_live_output_picture_shows_the_prediction_under_its_axes():
    """While Basics plays, its output view is one JPEG (axes, title and legend drawn in): class 1
    (blue) where the network says 1, class 0 (orange) elsewhere, at the right places."""
    import io

    import numpy as np
    from PIL import Image

    from playground.plots import toy

    xs = np.linspace(-6, 6, 50)
    xx, yy = np.meshgrid(xs, xs)                      # row 0 = lowest x2, as output_on_grid
    pred = ((xx > 0) & (yy > 0)).astype(float)       # class 1 only in the upper-right quadrant
    jpeg = toy.output_picture(pred.ravel(), 50, np.zeros((0, 2)), np.zeros(0), None, None, "classification")
    img = Image.open(io.BytesIO(jpeg)).convert("RGB")
    _, (left, top) = toy._picture_frame("Output", "blue = class 1, orange = class 0", False, toy.PICTURE_PX)
    px = toy.PICTURE_PX
    upper_right = np.asarray(img.getpixel((left + 3 * px // 4, top + px // 4)), float)
    lower_left = np.asarray(img.getpixel((left + px // 4, top + 3 * px // 4)), float)
    assert upper_right[2] > upper_right[0] + 60          # blue
    assert lower_left[0] > lower_left[2] + 60            # orange
    assert img.size[0] > px and img.size[1] > px         # room for the axes
