"""Lessons as data: every shipped lesson loads, every stated expectation is met when the step is
trained for its budget, and a bad lesson file gets an error naming the file and the field."""
from __future__ import annotations

import json
import textwrap
from urllib.parse import parse_qs, urlsplit

import pytest

from playground import lessons as L
from playground.basics import make_trainer

LESSONS, ERRORS = L.load_all()
SLOW_PAGES = {"sequence", "dna"}


def test_every_shipped_lesson_file_loads():
    assert not ERRORS, [str(e) for e in ERRORS]
    assert len(L.lesson_files()) == len(LESSONS)
    regular = [x for x in LESSONS if x.kind == "lesson"]
    numbers = [x.number for x in regular]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)   # in order, one file per number
    assert set(range(1, 20)) <= set(numbers)      # the course's twelve lessons, then the course material (13-19)
    assert any(x.kind == "challenge" for x in LESSONS)
    for les in LESSONS:
        for step in les.steps:
            assert step.page in L.PAGES
            assert set(step.settings) <= set(step.page_info.settings)


def _cases():
    out = []
    for les in LESSONS:
        for n, step in enumerate(les.steps, 1):
            if step.expect:
                marks = [pytest.mark.slow] if step.page in SLOW_PAGES else []
                out.append(pytest.param(les.id, n, marks=marks, id=f"{les.id}-step{n}"))
    return out


@pytest.mark.parametrize("lesson_id,number", _cases())
def test_every_expectation_is_met_when_the_step_is_trained_for_its_budget(lesson_id, number):
    les = next(x for x in LESSONS if x.id == lesson_id)
    results = L.check_step(les.step(number))
    assert results and len(results) == len(les.step(number).expect)
    failed = [r.message for r in results if not r.passed]
    assert not failed, failed


@pytest.mark.parametrize("lesson_id", [x.id for x in LESSONS if x.kind == "challenge"])
def test_each_challenge_has_a_solution_that_reaches_the_target(lesson_id):
    les = next(x for x in LESSONS if x.id == lesson_id)
    (r,) = L.check_challenge(les)
    assert r.passed, r.message
    assert not L.fixed_violations(les, L.full_settings(les.steps[0], les.challenge.solution))


def test_expectations_can_fail():
    """The same check reports a failure when a run does not meet the expectation."""
    les = next(x for x in LESSONS if x.id == "cubic")
    one_line = les.step(1)                          # 1 linear neuron: validation loss stays above 0.02
    broken = L.Step(one_line.title, one_line.text, "basics", one_line.settings,
                    expect=(L.Expectation("val_loss", "<", 0.02, 300),))
    (r,) = L.check_step(broken)
    assert r.status == "fail" and r.value > 0.02 and "❌" in r.message


# ---- a bad lesson file gets a clear error naming the file and the field ----------------------------
GOOD = """
title = "A lesson"
summary = "Short."
page = "basics"

[[steps]]
title = "First"
text = "Do this."
settings = { dataset = "cubic", layers = 1, n1 = 1, lr = 0.03 }

[[steps.expect]]
metric = "val_loss"
op = "<"
value = 0.5
epochs = 3
"""


def write(tmp_path, text: str, name: str = "03_bad.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_a_good_file_loads(tmp_path):
    les = L.load_lesson(write(tmp_path, GOOD, "07_good.toml"))
    assert les.id == "good" and les.number == 7 and les.step(1).settings["lr"] == 0.03
    assert les.step(1).expect[0].describe() == "validation loss < 0.5 after 3 epochs"


@pytest.mark.parametrize("bad,field,words", [
    (GOOD.replace('lr = 0.03', 'lr = "fast"'), "steps[1].settings.lr", "must be a number"),
    (GOOD.replace('layers = 1', 'layerz = 1'), "steps[1].settings.layerz", "has no setting"),
    (GOOD.replace('n1 = 1', 'n1 = 1.5'), "steps[1].settings.n1", "whole number"),
    (GOOD.replace('metric = "val_loss"', 'metric = "val_los"'), "steps[1].expect[1].metric", "unknown metric"),
    # a lesson never reads the held-out test set: an old file's test_loss is refused, naming val_loss
    (GOOD.replace('metric = "val_loss"', 'metric = "test_loss"'), "steps[1].expect[1].metric", "val_loss"),
    (GOOD.replace('op = "<"', 'op = "<<"'), "steps[1].expect[1].op", "unknown comparison"),
    (GOOD.replace('epochs = 3', ''), "steps[1].expect[1].epochs", "how many epochs"),
    (GOOD.replace('title = "A lesson"', ''), "title", "missing"),
    (GOOD.replace('text = "Do this."', 'txt = "Do this."'), "steps[1].txt", "unknown field"),
    (GOOD.replace('page = "basics"', 'page = "basic"'), "page", "unknown page"),
    (GOOD + '\n[[steps]]\ntitle = "Second"\ntext = "x"\nquestion = "Why?"\n', "steps[2].answer", "needs its answer"),
    (GOOD.replace('summary = "Short."', 'summary = "Short."\nhide = ["regularisation"]'), "hide", "unknown setting"),
    # through the page's schema: choices, ranges, list items, another page's setting
    (GOOD.replace('lr = 0.03', 'lr = 0.05'), "steps[1].settings.lr", "must be one of 1e-05, 0.0001"),
    (GOOD.replace('layers = 1', 'layers = 7'), "steps[1].settings.layers", "must be between 0 and 6"),
    (GOOD.replace('n1 = 1', 'n1 = 0'), "steps[1].settings.n1", "must be between 1 and 32"),
    (GOOD.replace('dataset = "cubic"', 'dataset = "sine"'), "steps[1].settings.dataset", "must be one of circle"),
    (GOOD.replace('layers = 1', 'features = ["x1", "x9"]'), "steps[1].settings.features", "unknown item(s) ['x9']"),
    (GOOD.replace('text = "Do this."', 'text = "Do this."\npage = "sequence"'), "steps[1].settings.layers",
     "Neural network basics page, not of Sequence models"),
    (GOOD.replace('text = "Do this."', 'text = "Do this."\nlock = ["t_heads"]'), "steps[1].lock",
     "a setting of the Sequence models & attention page"),
    (GOOD.replace('value = 0.5', 'than = { batch = 3 }'), "steps[1].expect[1].than.batch", "must be one of"),
])
def test_bad_field_error_names_the_file_and_the_field(tmp_path, bad, field, words):
    p = write(tmp_path, bad)
    with pytest.raises(L.LessonError) as e:
        L.load_lesson(p)
    msg = str(e.value)
    assert "03_bad.toml" in msg and f"`{field}`" in msg and words in msg, msg
    assert e.value.field == field


CHALLENGE = """
id = "c"
kind = "challenge"
title = "A challenge"
summary = "Short."
page = "basics"

[[steps]]
title = "Spiral"
text = "Fewest parameters."
settings = { dataset = "spiral" }

[challenge]
fixed = ["dataset"]
target = { metric = "val_loss", op = "<", value = 0.1, epochs = 3 }
solution = { layers = 1, n1 = 6, lr = 0.03 }
"""


@pytest.mark.parametrize("old,new,field,words", [
    ("lr = 0.03 }", "lr = 0.04 }", "challenge.solution.lr", "must be one of"),
    ("n1 = 6", "n1 = 64", "challenge.solution.n1", "must be between 1 and 32"),
    ("n1 = 6", "conv_layers = 2", "challenge.solution.conv_layers", "a setting of the DNA & CNNs page"),
    ('fixed = ["dataset"]', 'fixed = ["dataset", "motif"]', "challenge.fixed", "unknown setting(s) motif"),
    ('settings = { dataset = "spiral" }', 'settings = { dataset = "spiral", device = "cuda" }',
     "steps[1].settings.device", "has no setting `device`"),
])
def test_a_challenge_is_validated_through_the_schema_too(tmp_path, old, new, field, words):
    assert L.load_lesson(write(tmp_path, CHALLENGE, "c_ok.toml")).challenge.solution == {"layers": 1, "n1": 6, "lr": 0.03}
    with pytest.raises(L.LessonError) as e:
        L.load_lesson(write(tmp_path, CHALLENGE.replace(old, new), "c_bad.toml"))
    msg = str(e.value)
    assert "c_bad.toml" in msg and f"`{field}`" in msg and words in msg, msg
    assert e.value.field == field


def test_lesson_settings_come_from_the_pages_schema():
    from playground.setups import basics

    info = L.PAGES["basics"]
    assert info.schema is basics.SCHEMA and info.state == "basics"
    assert info.settings == {n: d for n, d in basics.SCHEMA.defaults().items() if n != "device"}
    les = L.parse_lesson({"title": "t", "summary": "s", "page": "basics",
                          "steps": [{"title": "a", "text": "b", "settings": {"lr": 1, "n1": 3.0}}]})
    assert les.step(1).settings == {"lr": 1.0, "n1": 3} and isinstance(les.step(1).settings["lr"], float)


def test_toml_syntax_error_names_the_file_and_line(tmp_path):
    p = write(tmp_path, GOOD.replace('value = 0.5', 'value = 0.5 0.6'))
    with pytest.raises(L.LessonError) as e:
        L.load_lesson(p)
    assert "03_bad.toml" in str(e.value) and "not valid TOML" in str(e.value) and "line" in str(e.value)


def test_json_lessons_are_read_too(tmp_path):
    import tomllib

    data = tomllib.loads(GOOD)
    data["steps"][0]["settings"]["dataset"] = 5
    p = tmp_path / "09_j.json"
    p.write_text(json.dumps(data))
    with pytest.raises(L.LessonError) as e:
        L.load_lesson(p)
    assert "09_j.json" in str(e.value) and "steps[1].settings.dataset" in str(e.value) and "text" in str(e.value)


def test_one_bad_file_does_not_hide_the_others(tmp_path):
    write(tmp_path, GOOD, "01_good.toml")
    write(tmp_path, GOOD.replace('lr = 0.03', 'lr = "x"'), "02_bad.toml")
    write(tmp_path, GOOD, "03_good.toml").write_text(GOOD.replace('title = "A lesson"', 'id = "good"\ntitle = "B"'))
    lessons, errors = L.load_all(tmp_path)
    assert [x.id for x in lessons] == ["good"]
    assert any("02_bad.toml" in str(e) for e in errors)
    assert any("03_good.toml" in str(e) and "also used by" in str(e) for e in errors)   # duplicate id


def test_lesson_settings_cannot_use_data_that_needs_the_internet_or_an_upload(tmp_path):
    bad = GOOD.replace('page = "basics"', 'page = "dna"').replace(
        'settings = { dataset = "cubic", layers = 1, n1 = 1, lr = 0.03 }', 'settings = { dataset = "genomic" }')
    with pytest.raises(L.LessonError) as e:
        L.load_lesson(write(tmp_path, bad))
    assert "steps[1].settings.dataset" in str(e.value) and "internet" in str(e.value)


# ---- links ---------------------------------------------------------------------------------------
def test_step_links_carry_the_lesson_step_and_settings():
    les = next(x for x in LESSONS if x.id == "cubic")
    q = L.step_query(les, 4)
    assert q["lesson"] == "cubic" and q["step"] == "4" and q["seed"] == "0"
    assert q["layers"] == "2" and q["n1"] == "4" and q["n2"] == "2" and q["features"] == "x1" and q["batch"] == "0"
    assert q["hide"] == "reg,reg_rate,discretize"
    url = L.step_url(les, 4, "http://localhost:8501", projector=True)
    parts = urlsplit(url)
    assert parts.path == "/Neural_Network_Basics"
    assert parse_qs(parts.query)["projector"] == ["1"] and parse_qs(parts.query)["activation"] == ["relu"]


def test_encode_matches_the_pages_url_format():
    assert L.encode(True) == "1" and L.encode(False) == "0"
    assert L.encode(0.0001) == "0.0001" and L.encode(["x1", "x2"]) == "x1,x2" and L.encode(7) == "7"


# ---- judging a run a student trains on the page ---------------------------------------------------
def test_assess_reports_pending_then_pass_or_fail():
    settings = {"dataset": "cubic", "features": ["x1"], "layers": 1, "n1": 4, "activation": "relu",
                "optimizer": "adam", "lr": 0.03, "batch": 0}
    within = L.Expectation("val_loss", "<", 0.01, 300, "within")
    after = L.Expectation("val_loss", "<", 0.0001, 5, "after")
    tr = make_trainer(settings)
    assert L.assess(within, tr, settings, "basics").status == "pending"
    tr.run_epochs(5)
    r = L.assess(after, tr, settings, "basics")
    assert r.status == "fail" and r.epoch == 5          # the budget is spent: judged at epoch 5
    tr.run_epochs(295)
    r = L.assess(within, tr, settings, "basics")
    assert r.status == "pass" and r.epoch <= 300 and r.value < 0.01
    tr.run_epochs(10)                                  # training past the budget does not change the verdict
    assert L.assess(after, tr, settings, "basics").status == "fail"


def test_assess_counts_divergence_and_parameters():
    settings = {"dataset": "linear", "features": ["x1"], "layers": 0, "activation": "linear", "optimizer": "sgd",
                "lr": 0.1}
    tr = make_trainer(settings)
    div = L.Expectation("diverged", "==", 1, 10, "within")
    tr.run_epochs(3)
    assert L.assess(div, tr, settings, "basics").status == "pending"
    tr.run_epochs(20)
    assert tr.diverged and L.assess(div, tr, settings, "basics").status == "pass"
    assert L.assess(L.Expectation("params", "==", 2), tr, settings, "basics").passed


def test_gradient_descent_metrics_follow_the_learning_rate():
    slow = L.gd_metrics({"dataset": "linear", "gd_lr": 0.0001})
    good = L.gd_metrics({"dataset": "linear", "gd_lr": 0.003})
    bad = L.gd_metrics({"dataset": "linear", "gd_lr": 0.1})
    assert slow["gd_progress"] < good["gd_progress"] and not slow["gd_diverged"] and not good["gd_diverged"]
    assert bad["gd_diverged"] == 1.0


def test_page_runners_reproduce_their_pages_runs():
    """The DNA and sequence runners build the same seeded run twice (same data, weights, shuffling)."""
    a = L.dna_run({"n": 200, "model": "logreg"}).trainer
    b = L.dna_run({"n": 200, "model": "logreg"}).trainer
    a.run_epochs(1)
    b.run_epochs(1)
    assert a.history[-1]["val_loss"] == b.history[-1]["val_loss"]
    s = L.seq_run({"n": 200, "family": "cnn", "c_layers": 1, "c_channels": 8}).trainer
    assert s.task == "binary" and s.data.x_train.dtype.is_floating_point is False


def test_the_lesson_library_does_not_import_streamlit():
    import subprocess
    import sys

    code = ("import sys, playground.lessons as L; L.load_all(); L.step_query(L.find('cubic'), 2); "
            "assert 'streamlit' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
