"""The Sequence models page's settings schema (playground/setups/sequence.py) against the page:
the widgets it draws are exactly the schema's settings, the trainer is rebuilt exactly when a
setting of the run changes, and links saved before the schema (tests/data/links_sequence.json,
recorded on commit 3386e54) and the shipped lesson links restore the same settings."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from playground import lessons as L
from playground.compare import make_spec
from playground.setups import Run, sequence as S

PAGE = "pages/3_Sequence_Models.py"
SMALL = {"n": "200", "length": "40", "seed": "1"}
LINKS = json.loads((Path(__file__).parent / "data" / "links_sequence.json").read_text())["links"]
GLOBAL_KEYS = ("seed", "device", "lesson", "step", "projector")
NO_WIDGET = {"lesson", "step"}          # set by the lesson panel's Back/Next buttons and by links
UPLOAD_CSV = ("prot.csv", b"sequence,label\nMKTAYIAKQR,1\nMKVLAAGIVG,0\nMSDNELLKEV,1\nMQQRRSTTAA,0\nMKKLLPTAAA,1\n"
              b"MKTAYIAKQA,1\nMKVLAAGIVA,0\nMSDNELLKEA,1\nMQQRRSTTAD,0\nMKKLLPTAAD,1\n")


def no_exception(at):
    assert not at.exception, [e.message for e in at.exception]


def widget_keys(at) -> dict[str, str]:
    """key -> element type of every keyed widget on the page (main area and sidebar)."""
    def walk(node):
        for child in getattr(node, "children", {}).values():
            yield child
            yield from walk(child)

    return {el.key: type(el).__name__ for el in walk(at._tree)
            if getattr(el, "key", None) is not None and type(el).__name__ != "UnknownElement"}


def setting_name(key: str) -> str | None:
    """The schema name a widget key stands for (None for other keys)."""
    if key in GLOBAL_KEYS:
        return key
    if key.startswith("seq.") and not key.startswith("seq._"):
        return key[4:]
    return None


def session_values(at) -> dict:
    return {n: at.session_state[n if n in GLOBAL_KEYS else f"seq.{n}"] for n in S.SCHEMA.names}


def trainer_id(at) -> int:
    return id(at.session_state["seq._trainer"])


# ---- (a) the widgets are the schema ---------------------------------------------------------------
RENDERS = [
    ("hybrid on DNA", {**SMALL}, None),
    ("transformer, 80 positions (zoom window)", {**SMALL, "length": "80", "family": "transformer"}, None),
    ("rnn on proteins", {**SMALL, "dataset": "protein_solubility", "family": "rnn"}, None),
    ("cnn", {**SMALL, "family": "cnn"}, None),
    ("upload", {"dataset": "upload", "family": "cnn"}, UPLOAD_CSV),
]


def test_the_widgets_the_page_draws_are_exactly_the_schemas_settings(app_test):
    drawn: set[str] = set()
    private: set[str] = set()
    for what, query, upload in RENDERS:
        at = app_test(PAGE, query).run()
        if upload is not None:
            at.file_uploader(key="seq._uploader").set_value((*upload, "text/csv")).run()
        no_exception(at)
        assert not at.error, (what, [e.value for e in at.error])
        keys = widget_keys(at)
        settings = {k for k, kind in keys.items() if kind not in ("Button", "DownloadButton")}
        # (the 🔎 Sweep panel's own form, seq.sweep.*, is not a page setting: a study keeps its settings)
        stray = [k for k in settings if setting_name(k) not in S.SCHEMA and not k.startswith(("seq._", "seq.sweep."))]
        assert not stray, (what, stray)
        drawn |= {setting_name(k) for k in settings if setting_name(k) in S.SCHEMA}
        private |= {k for k in keys if k.startswith("seq._")}
    assert drawn == set(S.SCHEMA.names) - NO_WIDGET, (sorted(set(S.SCHEMA.names) - NO_WIDGET - drawn),
                                                      sorted(drawn - set(S.SCHEMA.names)))
    # the page's private widget keys are declared slots
    assert private <= {f"seq._{name}" for name in S.PRIVATE}, private
    assert "seq._uploader" in private


# ---- (b) rebuild exactly when the run changes -------------------------------------------------------
def test_a_setting_of_the_run_rebuilds_the_trainer_and_a_live_or_view_one_does_not(app_test):
    at = app_test(PAGE, {**SMALL, "family": "transformer", "t_d": "16", "t_heads": "2"}).run()
    no_exception(at)
    first = trainer_id(at)
    at.button(key="seq.step").click().run()               # trained one epoch: a rebuild would lose it
    assert at.session_state["seq._trainer"].epoch == 1
    at.select_slider(key="seq.lr").set_value(0.01).run()                  # live
    no_exception(at)
    assert trainer_id(at) == first and at.session_state["seq._trainer"].epoch == 1
    assert at.session_state["seq._trainer"].config.lr == pytest.approx(0.01)    # ... and applied
    at.number_input(key="seq.early_stop").set_value(4).run()              # live too: patience on validation
    no_exception(at)
    assert trainer_id(at) == first and at.session_state["seq._trainer"].config.early_stopping == 4
    at.number_input(key="seq.seq_idx").set_value(3).run()                 # view
    at.number_input(key="seq.layer").set_value(2).run()
    at.text_input(key="seq.wt_seq").set_value("ACGT").run()
    at.number_input(key="seq.cmp_epochs").set_value(2).run()
    at.multiselect(key="seq.cmp_models").set_value(["cnn"]).run()
    no_exception(at)
    assert trainer_id(at) == first and at.session_state["seq._trainer"].epoch == 1
    at.select_slider(key="seq.batch").set_value(64).run()                 # the run: rebuilt
    no_exception(at)
    second = trainer_id(at)
    assert second != first and at.session_state["seq._trainer"].epoch == 0
    assert at.session_state["seq._trainer"].config.batch_size == 64
    at.select_slider(key="seq.length").set_value(60).run()                # data (not in the old signature)
    no_exception(at)
    assert trainer_id(at) != second and at.session_state["seq._trainer"].data.x_train.shape[1] == 60


def _other(p):
    """A valid value of Param ``p`` other than its default."""
    if p.kind == "bool":
        return not p.default
    if p.kind == "list":
        return [c for c in p.choices if c not in p.default][:1] or p.default[:-1]
    if p.choices is not None:
        return next(c for c in p.choices if c != p.default)
    if p.kind == "str":
        return p.default + "A"
    return p.default + 1 if p.hi is None or p.default + 1 <= p.hi else p.default - 1


def _where_read(name: str) -> dict:
    """Settings under which the run reads ``name`` (its family, its kind of data set)."""
    for family, prefix in S.FAMILY_PREFIX.items():
        if name.startswith(prefix):
            return {"family": family}
    return {"dataset": "upload"} if name in S.UPLOAD_KEYS else {}


@pytest.mark.parametrize("name", [n for n in S.SCHEMA.names])
def test_the_signature_follows_exactly_the_settings_of_the_run(name):
    p = S.SCHEMA[name]
    base = {**_where_read(name)}
    upload = UPLOAD_CSV if base.get("dataset") == "upload" else None
    changed = S.signature({**base, name: _other(p)}, upload) != S.signature(base, upload)
    assert changed == p.in_run, (name, "live" if p.live else "view" if p.view else "run")


def test_what_each_setting_is():
    assert S.SCHEMA.live_names == ["lr", "early_stop"]       # both applied to the running trainer
    view = {n for n, p in S.SCHEMA.params.items() if p.view}
    assert view == {"seq_idx", "layer", "win_start", "wt_seq", "wt_layer", "wt_head", "cmp_models", "cmp_epochs",
                    "lesson", "step", "projector", "lock", "hide"}
    # what the page's hand-written signature held (data set, split, share, seed, upload options, the
    # model spec, optimizer, batch size, device) is all still in it, with the validation share and the schedule
    for name in ("dataset", "n", "length", "split", "train_pct", "val_pct", "schedule", "seed", "device", "family",
                 "optimizer", "batch",
                 *S.UPLOAD_KEYS, *(n for n in S.SCHEMA.names if n[:2] in ("t_", "r_", "c_", "h_"))):
        assert name in S.SCHEMA.run_names, name


def test_settings_the_run_does_not_read_and_the_uploaded_file():
    # another family's model settings, the upload options of a built-in set, n for an upload: no rebuild
    assert S.signature({"family": "cnn", "t_d": 64}) == S.signature({"family": "cnn"})
    assert S.signature({"up_alphabet": "dna"}) == S.signature({})
    up = {"dataset": "upload"}
    assert S.signature({**up, "n": 400}, UPLOAD_CSV) == S.signature(up, UPLOAD_CSV)
    # another file, or the same file under another name, is another run
    other = (UPLOAD_CSV[0], UPLOAD_CSV[1].replace(b"MKTAYIAKQR", b"MKTAYIAKQK"))
    assert S.signature(up, other) != S.signature(up, UPLOAD_CSV)
    assert S.signature(up, ("b.csv", UPLOAD_CSV[1])) != S.signature(up, UPLOAD_CSV)


def test_build_is_the_pages_run():
    values = {"n": 200, "length": 40, "seed": 1, "family": "transformer", "t_d": 16, "t_heads": 2, "lr": 0.003,
              "batch": 16, "optimizer": "sgd"}
    run = S.build(values)
    assert isinstance(run, Run) and run.signature == S.signature(values)
    assert run.spec.to_dict() == make_spec("transformer", "dna", run.data, S.hyperparameters(values)).to_dict()
    assert (run.spec.d_model, run.spec.heads, run.spec.max_len) == (16, 2, 64)
    assert (run.config.lr, run.config.batch_size, run.config.optimizer, run.config.seed) == (0.003, 16, "sgd", 1)
    assert run.extras["alphabet"] == "dna" and run.extras["task"] == "binary"
    assert run.extras["label"].startswith("DNA") and "n=200" in run.extras["label"]
    a = run.make_trainer()
    a.run_epochs(1)
    b = S.build(values).make_trainer()     # (dropout draws from torch's global generator: one after the other)
    b.run_epochs(1)
    assert a.history[-1]["val_loss"] == b.history[-1]["val_loss"]      # seeded: the same run
    # the code export reads the same run: its model, optimizer and learning rate
    from playground.codegen import script_for

    src = script_for(run)
    compile(src, "train.py", "exec")
    assert "LR = 0.003" in src and "torch.optim.SGD" in src and run.extras["input"].alphabet == "dna"
    # the lessons' runner is this build
    assert L.PAGES["sequence"].schema is S.SCHEMA
    tr = L.seq_run(values).trainer
    assert tr.model.state_dict().keys() == a.model.state_dict().keys()
    # a model that does not fit the data: a clear ValueError (the page shows it)
    with pytest.raises(ValueError, match="cannot label every residue"):
        S.build({"dataset": "protein_ss", "n": 200, "length": 40, "family": "hybrid"})
    with pytest.raises(ValueError, match="needs a file"):
        S.build({"dataset": "upload"})


def test_the_comparison_reads_its_own_settings_when_it_starts():
    values = {"n": 200, "length": 40, "seed": 2, "family": "cnn", "lr": 0.01,
              "cmp_models": ["gru", "transformer", "hybrid"], "cmp_epochs": 3}
    run = S.build(values)
    cmp = S.comparison(values, run)
    assert list(cmp.specs) == ["GRU", "Transformer", "Hybrid CNN+Transformer"] and cmp.epochs == 3 and cmp.seed == 2
    assert cmp.config.lr == 0.01 and cmp.data is run.data and cmp.data_key == run.extras["label"]
    # per residue: the hybrid is left out
    ss = {**values, "dataset": "protein_ss"}
    assert list(S.comparison(ss, S.build(ss)).specs) == ["GRU", "Transformer"]


# ---- (c) links ------------------------------------------------------------------------------------
@pytest.fixture
def after_load(monkeypatch):
    """The page's values right after ``PageState.load()`` (what the link applied)."""
    from playground.ui.state import PageState

    seen = {}
    load = PageState.load

    def _load(self):
        out = load(self)
        seen[self.page] = self.values()
        return out

    monkeypatch.setattr(PageState, "load", _load)
    return seen


# settings added since the links were recorded (the train / validation / test split), at their
# defaults: an old link keeps its training share; 10 % is for validation, the rest is the test set
ADDED = {"val_pct": 10, "early_stop": 5, "schedule": "off"}


@pytest.mark.parametrize("link", LINKS, ids=[f"link{i}" for i in range(len(LINKS))])
def test_links_saved_before_the_schema_restore_the_same_settings(app_test, after_load, link):
    at = app_test(PAGE, link["query"]).run()
    no_exception(at)
    assert after_load["seq"] == {**link["after_load"], **ADDED}
    assert session_values(at) == {**link["after_run"], **ADDED}
    assert [w.value for w in at.warning if "link parameter" in w.value] == link["warnings"]


SEQ_STEPS = [(les.id, n) for les in L.load_all()[0] for n, step in enumerate(les.steps, 1) if step.page == "sequence"]


@pytest.mark.parametrize("lesson_id,number", SEQ_STEPS)
def test_every_sequence_lesson_step_link_restores_its_settings(app_test, after_load, lesson_id, number):
    les = L.find(lesson_id)
    step = les.step(number)
    at = app_test(PAGE, L.step_query(les, number)).run()
    no_exception(at)
    assert not [w.value for w in at.warning if "link parameter" in w.value]
    applied = after_load["seq"]
    for name, value in L.full_settings(step).items():
        assert applied[name] == value, (name, applied[name], value)
    for name, value in step.settings.items():
        assert session_values(at)[name] == value, name
        assert at.query_params[name] in (L.encode(value), [L.encode(value)])
