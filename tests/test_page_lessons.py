"""AppTest tests of lessons and classroom mode on the real pages."""
from __future__ import annotations

import pytest

from playground import lessons as L
from playground.ui.state import CLASSROOM_PARAMS as CLASSROOM

BASICS = "pages/1_Neural_Network_Basics.py"
LESSONS, _ = L.load_all()
BY_ID = {x.id: x for x in LESSONS}


def lesson(lesson_id: str) -> L.Lesson:
    return BY_ID[lesson_id]


def metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def sidebar_text(at) -> str:
    return "\n".join(m.value for m in at.sidebar.markdown) + "\n".join(e.value for e in at.sidebar.success)


def css(at) -> str:
    return "\n".join(getattr(el.proto, "body", "") for el in at.get("html"))


@pytest.fixture
def loaded(monkeypatch):
    """Records, for every PageState the page builds, its declared settings and their values
    right after ``load()`` (what a link applied, before the page's own code runs)."""
    from playground.ui.state import PageState

    record = {"params": {}, "values": {}, "schema": {}}
    init, load = PageState.__init__, PageState.load

    def _init(self, page, params=None, with_common=True, private=()):
        init(self, page, params, with_common, private)       # PageState(SCHEMA, private=...) or (page, params)
        record["params"][self.page] = dict(self.params)
        record["schema"][self.page] = self.schema

    def _load(self):
        out = load(self)
        record["values"][self.page] = self.values()
        return out

    monkeypatch.setattr(PageState, "__init__", _init)
    monkeypatch.setattr(PageState, "load", _load)
    return record


def same(a, b) -> bool:
    return a == pytest.approx(b) if isinstance(b, float) else a == b


def assert_step_applied(at, les: L.Lesson, number: int, loaded=None) -> None:
    """The link applied every setting of the page: the step's value, or the page's default where
    the step is silent; the step's own settings are still in place after the page ran."""
    step = les.step(number)
    info = step.page_info
    if loaded is not None:
        applied = loaded["values"][info.state]
        for name, value in L.full_settings(step).items():
            assert same(applied[name], value), (les.id, number, name, applied[name], value)
    for name, value in step.settings.items():
        key = name if name == "seed" else f"{info.state}.{name}"
        assert same(at.session_state[key], value), (les.id, number, name, at.session_state[key], value)
    q = at.query_params
    assert q["lesson"] in (les.id, [les.id])
    for name, value in step.settings.items():
        assert q[name] in (L.encode(value), [L.encode(value)]), (name, q[name])


def test_walking_lesson_2_from_first_to_last_step_changes_the_settings_as_written(app_test, loaded):
    les = lesson("cubic")
    at = app_test(BASICS, L.step_query(les, 1))
    at.run()
    assert not at.exception
    assert_step_applied(at, les, 1, loaded)
    assert at.selectbox(key="basics.dataset").value == "cubic"
    assert at.selectbox(key="basics.activation").value == "linear"
    at.button(key="basics.step").click().run()                # train one epoch on step 1
    assert metric(at, "Epoch") == "1"
    for n in range(2, len(les) + 1):
        at.button(key="lesson.next").click().run()
        assert not at.exception
        assert_step_applied(at, les, n, loaded)
        assert any(f"Step {n} of {len(les)}" in p.proto.text for p in at.sidebar.get("progress"))
        assert metric(at, "Epoch") == "0"                     # each step starts a fresh run
    # the last step: 2 hidden layers of 4 and 2 ReLU neurons
    assert at.slider(key="basics.layers").value == 2
    assert at.number_input(key="basics.n1").value == 4 and at.number_input(key="basics.n2").value == 2
    assert at.selectbox(key="basics.activation").value == "relu"
    assert at.button(key="lesson.next").disabled
    at.button(key="lesson.back").click().run()
    assert_step_applied(at, les, len(les) - 1, loaded)
    assert at.slider(key="basics.layers").value == 1


def test_a_step_link_resets_what_the_step_does_not_set(app_test, loaded):
    """Opened in a session that changed other settings, a step link shows the step exactly."""
    les = lesson("counting_parameters")
    at = app_test(BASICS)
    at.run()
    at.select_slider(key="basics.lr").set_value(0.3).run()
    at.slider(key="basics.noise").set_value(20).run()
    at.query_params = L.step_query(les, 1)
    at.run()
    assert_step_applied(at, les, 1, loaded)
    assert at.session_state["basics.noise"] == 0 and at.session_state["basics.lr"] == pytest.approx(0.03)
    assert any("Total: 13" in c.value for c in at.code)
    assert "✅" in sidebar_text(at) and "parameters = 13" in sidebar_text(at)


def test_the_check_follows_the_run_the_page_trains(app_test):
    les = lesson("overfit_one_batch")
    at = app_test(BASICS, L.step_query(les, 1))
    at.run()
    text = sidebar_text(at)
    assert "⏳ training loss < 0.01 within 200 epochs" in text
    at.session_state["basics._trainer"].run_epochs(30)       # what ▶ Play does, without a browser
    at.run()
    text = sidebar_text(at)
    assert "✅ training loss < 0.01 within 200 epochs" in text
    assert "⏳ the validation loss stays above 0.5" in text          # 'after 200 epochs': not judged yet
    at.session_state["basics._trainer"].run_epochs(170)
    at.run()
    assert "Every check passed" in sidebar_text(at)


def test_teacher_link_locks_and_hides_controls_in_projector_mode(app_test):
    at = app_test(BASICS, {"lr": "0.01", "lock": "lr,activation", "hide": "reg,reg_rate", "projector": "1"})
    at.run()
    assert not at.exception and not at.warning
    style = css(at)
    assert ".st-key-basics-reg { display: none !important; }" in style
    assert ".st-key-basics-reg_rate { display: none !important; }" in style
    assert ".st-key-basics-lr { pointer-events: none !important;" in style
    assert "html { font-size: 20px; }" in style and "stroke-width: 4.5px" in style
    at.select_slider(key="basics.lr").set_value(0.3).run()
    assert at.select_slider(key="basics.lr").value == pytest.approx(0.01)    # locked: the change is undone
    at.selectbox(key="basics.optimizer").set_value("adam").run()            # not locked
    assert at.selectbox(key="basics.optimizer").value == "adam"
    q = at.query_params
    assert q["lock"] in ("lr,activation", ["lr,activation"]) and q["projector"] in ("1", ["1"])
    at.button(key="classroom.unlock").click().run()
    at.select_slider(key="basics.lr").set_value(0.3).run()
    assert at.select_slider(key="basics.lr").value == pytest.approx(0.3)
    assert ".st-key-basics-reg {" not in css(at)


def test_classroom_parameters_stay_out_of_ordinary_links(app_test):
    at = app_test(BASICS)
    at.run()
    assert not any(k in at.query_params for k in ("lesson", "step", "projector", "lock", "hide"))
    assert not css(at)


def test_unknown_lesson_and_step_on_another_page_are_explained(app_test):
    at = app_test(BASICS, {"lesson": "no_such_lesson", "step": "2"})
    at.run()
    assert not at.exception
    assert any("no_such_lesson" in w.value for w in at.sidebar.warning)
    les = lesson("dna_cnn_motif")
    at = app_test(BASICS, {"lesson": les.id, "step": "1"})
    at.run()
    assert not at.exception
    assert any("DNA & CNNs" in i.value for i in at.sidebar.info)


def test_challenge_locks_the_data_and_records_the_best_score(app_test):
    les = lesson("spiral-challenge")
    query = L.step_query(les, 1)
    query.update({k: L.encode(v) for k, v in les.challenge.solution.items()})
    at = app_test(BASICS, query)
    at.run()
    assert not at.exception
    assert ".st-key-basics-dataset { pointer-events: none" in css(at)
    assert "Target:" in sidebar_text(at)
    at.session_state["basics._trainer"].run_epochs(200)
    at.run()
    assert any("Target reached" in s.value and "55 parameters" in s.value for s in at.sidebar.success)
    assert any(m.label == "Your best (this session)" and m.value == "55 parameters" for m in at.sidebar.metric)
    at.selectbox(key="basics.dataset").set_value("circle").run()     # locked: stays the spiral
    assert at.selectbox(key="basics.dataset").value == "spiral"


def test_home_page_lists_every_lesson_with_step_links(app_test):
    at = app_test("app.py")
    at.run()
    assert not at.exception
    links = at.get("page_link")
    starts = [el for el in links if el.proto.label == "Start the lesson"]
    assert len(starts) == len([x for x in LESSONS if x.kind == "lesson"])
    steps = sum(len(x) for x in LESSONS if x.kind == "lesson")
    assert len(links) >= len(starts) + steps


PAGE_STEPS = {}
for _les in LESSONS:
    for _n, _step in enumerate(_les.steps, 1):
        PAGE_STEPS.setdefault(_step.page, []).append((_les.id, _n))


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(PAGE_STEPS))
def test_every_lesson_step_loads_on_its_page_without_error(app_test, loaded, page):
    """The lesson module's copy of the page's settings matches the page's own declaration, and
    every step's link opens the page with no error and no ignored link parameter, its settings in place."""
    info = L.PAGES[page]
    at = app_test(info.path)
    at.run()
    assert not at.exception
    declared = {n: p.default for n, p in loaded["params"][info.state].items() if n not in CLASSROOM}
    drift = {n: (declared.get(n, "missing on the page"), v) for n, v in info.settings.items()
             if n not in declared or declared[n] != v}
    assert not drift, f"{info.path}: page default vs playground.lessons copy: {drift}"
    # both directions: a lesson may set every setting the page declares (but the device)
    assert set(declared) - {"device"} == set(info.settings), set(declared) ^ set(info.settings)
    assert loaded["schema"][info.state] is info.schema      # the page and the lessons read one schema
    for lesson_id, number in PAGE_STEPS[page]:
        les = lesson(lesson_id)
        at.query_params = L.step_query(les, number)
        at.run()
        assert not at.exception, (lesson_id, number, at.exception)
        ignored = [w.value for w in at.warning if "link parameter" in w.value]
        assert not ignored, (lesson_id, number, ignored)
        assert_step_applied(at, les, number, loaded)


def test_lesson_9_compares_the_optimizers_on_one_plot_and_lesson_10_shows_mcc(app_test):
    from tests.conftest import plotly_specs

    les = lesson("optimizers")
    at = app_test(BASICS, {**L.step_query(les, 4), "cmp_epochs": "20"})
    at.run()
    at.button(key="basics.compare_run").click().run()
    assert not at.exception
    fig = next(s for s in plotly_specs(at) if s["layout"].get("title", {}).get("text") == "Validation loss by optimizer")
    assert [t["name"] for t in fig["data"]] == ["SGD", "SGD + momentum", "Adam", "AdamW"]
    assert all(len(t["x"]) == 21 for t in fig["data"])          # epochs 0..20, one curve each
    at.query_params = L.step_query(lesson("mcc_vs_accuracy"), 1)
    at.run()
    at.session_state["basics._trainer"].run_epochs(100)
    at.run()
    assert metric(at, "MCC") == "0.00" and float(metric(at, "Accuracy").rstrip("%")) > 85      # validation tiles
    assert "✅ validation accuracy > 0.85 after 100 epochs" in sidebar_text(at)
