"""AppTest tests of the Neural Network Basics page."""
from tests.conftest import plotly_specs

PAGE = "pages/1_Neural_Network_Basics.py"


def metric(at, label):
    for m in at.metric:
        if m.label == label:
            return m.value
    raise KeyError(label)


def test_page_loads_with_charts_and_no_errors(app_test):
    at = app_test(PAGE)
    at.run()
    assert not at.exception
    assert metric(at, "Epoch") == "0"
    titles = [s["layout"].get("title", {}).get("text", "") for s in plotly_specs(at)]
    assert "Network" in titles and "Loss" in titles and any(t.startswith("Output") for t in titles)
    assert any("Total: 25" in c.value for c in at.code)  # 2->4->2->1 = 12 + 10 + 3


def test_step_advances_the_epoch_and_the_loss_curve(app_test):
    at = app_test(PAGE)
    at.run()
    at.button(key="basics.step").click().run()
    at.button(key="basics.step").click().run()
    assert metric(at, "Epoch") == "2"
    loss = [s for s in plotly_specs(at) if s["layout"].get("title", {}).get("text") == "Loss"][0]
    assert len(loss["data"][0]["x"]) == 3  # epochs 0, 1, 2


def test_changing_a_control_changes_the_run(app_test):
    at = app_test(PAGE)
    at.run()
    at.button(key="basics.step").click().run()
    loss_tanh = metric(at, "Training loss")
    at.selectbox(key="basics.activation").set_value("relu").run()
    assert metric(at, "Epoch") == "0"  # a new network
    at.button(key="basics.step").click().run()
    assert metric(at, "Training loss") != loss_tanh
    assert at.query_params["activation"] in ("relu", ["relu"])
    at.slider(key="basics.layers").set_value(3).run()
    assert any("Total:" in c.value and "Layer 3" in c.value for c in at.code)


def test_learning_rate_change_keeps_training(app_test):
    at = app_test(PAGE)
    at.run()
    at.button(key="basics.step").click().run()
    at.select_slider(key="basics.lr").set_value(0.1).run()
    assert metric(at, "Epoch") == "1"  # not reset, as in TF Playground


def test_url_params_restore_state(app_test):
    at = app_test(PAGE, {"dataset": "cubic", "layers": "2", "n1": "4", "n2": "2", "activation": "relu",
                         "lr": "0.01", "seed": "7", "features": "x1"})
    at.run()
    assert not at.exception
    assert at.selectbox(key="basics.dataset").value == "cubic"
    assert at.selectbox(key="basics.activation").value == "relu"
    assert at.number_input(key="seed").value == 7
    titles = [s["layout"].get("title", {}).get("text", "") for s in plotly_specs(at)]
    assert "Data and fitted curve" in titles
    assert any(t.startswith("Pred vs True") for t in titles)


def test_garbage_in_url_is_ignored_with_a_warning(app_test):
    at = app_test(PAGE, {"dataset": "banana", "lr": "fast", "layers": "99", "bogus": "1"})
    at.run()
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "dataset=banana" in warnings and "lr=fast" in warnings and "layers=99" in warnings and "bogus" in warnings
    assert at.selectbox(key="basics.dataset").value == "circle"


def test_divergence_is_shown_not_raised(app_test):
    at = app_test(PAGE, {"dataset": "plane", "lr": "10", "layers": "2", "n1": "8", "n2": "8", "activation": "relu"})
    at.run()
    for _ in range(10):
        if at.button(key="basics.step").disabled:
            break
        at.button(key="basics.step").click().run()
    assert at.button(key="basics.step").disabled  # training stopped
    assert not at.exception
    assert any("diverged at epoch" in e.value for e in at.error)


def test_pytorch_code_and_gradient_descent_view(app_test):
    at = app_test(PAGE, {"gd_lr": "0.1"})
    at.run()
    code = [c.value for c in at.code if "import torch" in c.value]
    assert code and "class MLP(nn.Module)" in code[0]
    assert any("Diverged" in e.value for e in at.error)


def test_the_training_doctor_speaks_on_the_page(app_test):
    """A healthy run says so; a learning rate far too high gets a diagnosis with one thing to try."""
    at = app_test(PAGE, query={"optimizer": "adam", "lr": "0.03"}).run()
    at.button(key="basics.step").click().run()
    assert not at.exception
    assert any("Healthy so far" in m.value for m in at.markdown)
    at = app_test(PAGE, query={"optimizer": "sgd", "lr": "10", "dataset": "linear", "layers": "3"}).run()
    for _ in range(3):
        if not at.button(key="basics.step").disabled:      # disabled once the run diverged
            at.button(key="basics.step").click().run()
    assert not at.exception
    alerts = [a.value for a in (*at.error, *at.warning)]
    assert any("Try:" in a and "learning rate" in a.lower() for a in alerts), alerts


def test_play_pause_live_in_the_live_view_and_the_test_panel_shows_when_paused(app_test):
    """▶ / ⏸ are drawn inside the live view's fragment (a click redraws the view, not the page),
    and the test-set panel is there only while paused."""
    at = app_test(PAGE)
    at.run()
    assert not at.exception
    assert at.button(key="basics.play").label == "▶ Play"
    assert any(b.key == "basics.test" for b in at.button)           # paused: "Score the test points"
    at.button(key="basics.play").click().run()
    assert not at.exception
    assert at.button(key="basics.pause").label == "⏸ Pause"
    assert not any(b.key == "basics.test" for b in at.button)       # playing: no test panel
    at.button(key="basics.pause").click().run()
    assert at.button(key="basics.play").label == "▶ Play"
    assert any(b.key == "basics.test" for b in at.button)
    epoch = metric(at, "Epoch")
    at.button(key="basics.step").click().run()
    assert int(metric(at, "Epoch")) == int(epoch) + 1
