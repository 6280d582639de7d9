"""The Neural Network Basics page on its schema (playground/setups/basics.py):
(a) the widgets it renders are exactly its schema's settings,
(b) a change of a setting that defines the run rebuilds the trainer, a live or view one does not,
(c) links saved before the schema refactor (tests/data/links_basics.json, recorded on commit
    3386e54) and every shipped lesson step link restore the same settings."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from playground import lessons as L
from playground.settings import CLASSROOM_PARAMS
from playground.setups import Run
from playground.setups import basics as B

PAGE = "pages/1_Neural_Network_Basics.py"
LINKS = json.loads((Path(__file__).parent / "data" / "links_basics.json").read_text())
INPUTS = ("selectbox", "select_slider", "slider", "number_input", "multiselect", "toggle", "checkbox", "radio",
          "text_input", "text_area", "color_picker", "date_input", "time_input", "file_uploader")
# lesson and step have no widget: they come from a lesson's link (and its Back / Next buttons)
LINK_ONLY = {"lesson", "step"}
# settings added since the links were recorded (the train / validation / test split), at their defaults:
# an old link keeps its training share; 10 % of the points are for validation, the rest is the test set
ADDED = {"val_pct": 10, "schedule": "off", "normalize": False, "shuffle": True}   # (+ the course lessons' two)


def widget_keys(at) -> set[str]:
    """The keys of every input widget the page rendered (main area and sidebar; buttons left out)."""
    from streamlit.testing.v1.element_tree import Widget

    out = set()

    def walk(node):
        if isinstance(node, Widget) and node.type in INPUTS:
            out.add(node.key)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return out


def key_of(name: str) -> str:
    return name if B.SCHEMA[name].scope == "global" else f"basics.{name}"


# ---- the schema itself ----------------------------------------------------------------------------
def test_each_setting_is_declared_once_with_a_valid_default():
    names = [p.name for p in B.PARAMS]
    assert len(names) == len(set(names))
    values, warnings = B.SCHEMA.validate(B.SCHEMA.defaults(), strict=True)
    assert not warnings and values == B.SCHEMA.defaults(classroom=True)


def test_live_and_view_settings_are_marked_as_the_page_uses_them():
    # the page applies these to the running trainer (trainer.set_lr / set_regularization)
    assert set(B.SCHEMA.live_names) == {"lr", "reg", "reg_rate"}
    view = {n for n, p in B.SCHEMA.params.items() if p.view}
    assert view == {"log_y", "show_test", "discretize", "gd_lr", "gd_steps", "cmp_epochs", *CLASSROOM_PARAMS}
    # everything the page's old hand-written signature held is part of the run
    old_signature = {"dataset", "noise", "train_pct", "features", "layers", "n1", "n2", "n3", "n4", "n5", "n6",
                     "activation", "optimizer", "batch", "seed", "device", "balance", "overfit", "warmup", "accum"}
    assert set(B.SCHEMA.run_names) == old_signature | set(ADDED)     # plus the validation split's settings


def test_build_is_the_seeded_run_of_the_page():
    run = B.build({"dataset": "xor", "layers": 3, "n3": 5, "features": ["x1", "x2", "x1x2"], "seed": 4})
    assert isinstance(run, Run) and run.signature == B.SCHEMA.signature(
        {**B.SCHEMA.defaults(), "dataset": "xor", "layers": 3, "n3": 5, "features": ["x1", "x2", "x1x2"], "seed": 4})
    assert run.spec.hidden == (4, 2, 5) and run.spec.n_inputs == 3 and run.config.seed == 4
    assert run.extras["features"] == ["x1", "x2", "x1x2"] and run.extras["toy"].key == "xor"
    a, b = run.make_trainer(), B.build({"dataset": "xor", "layers": 3, "n3": 5, "features": ["x1", "x2", "x1x2"],
                                        "seed": 4}).make_trainer()
    a.run_epochs(2)
    b.run_epochs(2)
    assert a.history[-1]["val_loss"] == b.history[-1]["val_loss"]             # same data, weights, shuffling
    assert B.build({"dataset": "cubic"}).extras["features"] == ["x1"]         # 1-D data: only 1-D features
    overfit = B.build({"overfit": True, "batch": 0}).data
    assert len(overfit.y_train) == B.OVERFIT_DEFAULT_BATCH
    # the page's split: 50 % train / 10 % validation / 40 % test of the 500 points (one batch of
    # training points when overfitting; validation and test stay whole)
    assert B.build({}).data.sizes() == (250, 50, 200) and overfit.sizes()[1:] == (50, 200)
    assert B.build({"train_pct": 70, "val_pct": 20}).data.sizes() == (350, 100, 50)
    assert B.build({"schedule": "cosine"}).make_trainer().config.schedule == "cosine"


def test_live_settings_do_not_change_the_signature_and_run_settings_do():
    base = B.build({}).signature
    for name in B.SCHEMA.names:
        p = B.SCHEMA[name]
        other = alternative(name)
        assert (B.build({name: other}).signature != base) == p.in_run, name


def alternative(name: str):
    """A valid value other than the default."""
    p = B.SCHEMA[name]
    if p.kind == "bool":
        return not p.default
    if p.kind == "list":
        pool = [c for c in p.choices or ("x1_sq", "x1") if c not in p.default] if name != "features" else ["x1"]
        return pool[:1] if name in ("lock", "hide") else pool
    if p.choices:
        return next(c for c in p.choices if c != p.default)
    if p.kind == "str":
        return "cubic" if name == "lesson" else "x"
    return p.default + 1 if p.hi is None or p.default + 1 <= p.hi else p.default - 1


def test_private_session_slots_are_declared_and_cannot_take_the_librarys():
    from playground.settings import Param
    from playground.ui.state import PageState

    state = PageState(B.SCHEMA, private=B.PRIVATE)
    assert state.slot("compare") == "basics._compare"          # the key the page has always used
    with pytest.raises(KeyError, match="undeclared private session slot 'comparison'"):
        state.slot("comparison")
    with pytest.raises(ValueError, match="trainer"):
        PageState(B.SCHEMA, private=("trainer",))                # LiveTraining's basics._trainer
    with pytest.raises(ValueError, match="reset"):
        PageState("demo", [Param("reset", False, "bool")])      # LiveTraining's demo.reset button


# ---- (a) the widgets the page renders are its schema's settings ----------------------------------
def test_the_page_renders_a_widget_for_every_setting_and_no_other(app_test):
    expected = {key_of(n) for n in B.SCHEMA.names if n not in LINK_ONLY}
    seen = set()
    # defaults, then every hidden layer (n1..n6), then a 1-D data set with no hidden layer
    for query in ({}, {"layers": "6"}, {"dataset": "cubic", "layers": "0", "reg": "l2"}):
        at = app_test(PAGE, query)
        at.run()
        assert not at.exception
        # (the 🔎 Sweep panel's own form, basics.sweep.*, is not a page setting: a study keeps its settings)
        keys = {k for k in widget_keys(at) if not k.startswith("basics.sweep.")}
        assert keys <= expected, (query, keys - expected)       # no widget outside the schema
        seen |= keys
    assert seen == expected, expected - seen


# ---- (b) rebuild exactly when a setting of the run changes ---------------------------------------
def test_changing_a_run_setting_rebuilds_the_trainer_and_a_live_or_view_one_does_not(app_test):
    at = app_test(PAGE, {"layers": "6"})
    at.run()
    at.button(key="basics.step").click().run()
    assert not at.exception
    skip = {"device", *LINK_ONLY}          # no GPU here (the page falls back to the CPU); a lesson restarts its run
    names = [n for n in B.SCHEMA.names if n not in skip and n != "layers"] + ["layers"]   # n1..n6 stay on the page
    for name in names:
        before = at.session_state["basics._trainer"]
        value = alternative(name)
        if name == "features":
            value = ["x1", "x2", "x1_sq"]
        at.session_state[key_of(name)] = value
        at.run()
        assert not at.exception, (name, at.exception)
        assert at.session_state[key_of(name)] == value, name
        after = at.session_state["basics._trainer"]
        rebuilt = after is not before
        assert rebuilt == B.SCHEMA[name].in_run, (name, "rebuilt" if rebuilt else "kept")
        if not rebuilt:
            assert after.epoch == before.epoch >= 1, name        # the same run, still trained
        else:
            assert after.epoch == 0, name
            at.button(key="basics.step").click().run()


# ---- (c) links saved before the refactor restore the same settings -------------------------------
def _links():
    """The hand-made links, then the lesson steps' links (slow: the lesson page test opens them too)."""
    return [pytest.param(link, id=f"link{i}", marks=[pytest.mark.slow] if "lesson" in link["query"] else [])
            for i, link in enumerate(LINKS["links"])]


@pytest.mark.parametrize("link", _links())
def test_links_saved_before_the_schema_refactor_restore_the_same_settings(app_test, link):
    at = app_test(PAGE, link["query"])
    at.run()
    assert not at.exception
    assert at.session_state["_saved.basics"] == {**link["page_values"], **ADDED}
    glob = at.session_state["_saved._global"]
    assert {k: glob[k] for k in link["global_values"]} == link["global_values"]
    url = {k: (v[-1] if isinstance(v, list) else v) for k, v in at.query_params.items()}
    assert url == {**link["url"], **{k: L.encode(v) for k, v in ADDED.items()}}
    assert [w.value for w in at.warning] == link["warnings"]


# lesson steps changed on purpose since: the cubic's two-ReLU step picks a seed whose two hinges bend inside the data
CHANGED_SINCE = {("cubic", 2): {"seed": "5"}}


def test_the_recorded_links_cover_every_shipped_basics_lesson_step():
    recorded = [link["query"] for link in LINKS["links"]]
    lessons, errors = L.load_all()
    assert not errors
    for les in lessons:
        if les.number > 12:          # lessons 13 on were written after the links were recorded
            continue
        for n, step in enumerate(les.steps, 1):
            if step.page == "basics":
                q = L.step_query(les, n)
                for name, value in CHANGED_SINCE.get((les.id, n), {}).items():
                    assert q[name] == value
                    q[name] = "0"
                assert q in recorded, (les.id, n)     # lesson links unchanged


def _steps():
    lessons, _ = L.load_all()
    return [pytest.param(les, n, id=f"{les.id}-{n}") for les in lessons for n in range(1, len(les) + 1)]


@pytest.mark.parametrize("les,number", _steps())
def test_every_shipped_lesson_step_link_restores_its_settings(les, number):
    """For every page: the step's link, read back through the page's schema (as PageState.load
    does), gives the step's settings, its locks and hides, with no warning."""
    step = les.step(number)
    schema = step.page_info.schema
    decoded, warnings = schema.decode_query(L.step_query(les, number))
    assert not warnings, warnings
    for name, value in step.settings.items():
        assert decoded[name] == pytest.approx(value) if isinstance(value, float) else decoded[name] == value, name
    assert decoded["lesson"] == les.id and decoded["step"] == number
    assert decoded.get("lock", []) == list(les.locked(number)) and decoded.get("hide", []) == list(les.hidden(number))
    values, _ = schema.validate({**step.page_info.settings, **decoded}, strict=True)   # a complete, valid state
    assert {k: values[k] for k in step.settings} == step.settings
