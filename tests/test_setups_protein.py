"""The Protein language model page (ESM-2) on the settings schema (``playground.setups.protein``).

- the widget keys the page renders are exactly the schema's settings;
- the cached heavy results (the head-vs-CNN pair, the fine-tuning inputs, the embeddings) are
  rebuilt when a setting of the run changes and kept when a live or view setting changes;
- links saved before the schema (``tests/data/links_protein.json``, recorded with AppTest on
  commit 3386e54) and every shipped lesson step link restore the same settings.

Offline: the hub cache is an empty temporary folder, downloads are switched off and every
network connection attempt fails. Re-record the old links (only ever from the old code) with
``python tests/test_setups_protein.py --record <worktree of 3386e54>``.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

PAGE = "pages/4_Protein_Language_Model.py"
LINKS_FILE = Path(__file__).resolve().parent / "data" / "links_protein.json"
TABS = ("🎭 Masked amino acids", "🧭 Embeddings", "🏋️ Fine-tuning vs from scratch", "🔍 Attention & contacts",
        "🧬 Mutation scan")

# A dozen varied links (what students and teachers shared): every tab, every kind of setting,
# out-of-range and unknown values (ignored with a warning), lesson/lock/hide/projector.
LINKS = [
    {},
    {"tab": TABS[1], "data": "ss", "layer": "3", "pooling": "per_residue", "proj": "tsne", "long": "window"},
    {"tab": TABS[2], "size": "10", "head": "mlp", "hidden": "32", "unfreeze": "2", "lr": "0.01",
     "split": "cluster", "sweep_epochs": "5", "seed": "7"},
    {"tab": TABS[3], "att_layer": "4", "att_head": "2", "seq": "MKTAYIAKQRQISFVKSHFSRQ"},
    {"seq": "mktayiakqr", "mask": "1-3, 7", "topk": "10"},
    {"topk": "99", "model": "esm2_bogus", "bf16": "maybe", "layer": "x", "size": "33"},
    {"bf16": "1", "cpu_bf16": "0", "seed": "42", "tab": TABS[1], "data": "upload"},
    {"lesson": "esm2", "step": "4", "seed": "0", "tab": TABS[2], "data": "solubility", "size": "10",
     "head": "logistic", "unfreeze": "0", "model": "esm2_t6_8M_UR50D"},
    {"tab": TABS[2], "lock": "size,head", "hide": "bf16,cpu_bf16", "size": "25"},
    {"foo": "bar", "tab": "🙈 no such tab", "att_head": "-1"},
    {"model": "esm2_t12_35M_UR50D", "layer": "12", "tab": TABS[1], "pooling": "mean"},
    {"tab": TABS[3], "att_layer": "50", "att_head": "30", "projector": "1"},
    {"tab": TABS[2], "unfreeze": "3", "layer": "5", "lr": "0.0003", "size": "5", "hidden": "128"},
]


def _last(v):
    return v[-1] if isinstance(v, list) else v


def open_link(root: Path, query: dict, timeout: int = 180) -> dict:
    """Open the page at ``root`` with ``query`` (no weights, offline), then continue with the
    untrained model. Returns the page's settings right after the link was applied ("applied"),
    the link's warnings, the URL the page wrote back ("query"), and the settings at the end of
    the run with the untrained model loaded and the link's tab drawn ("final")."""
    from streamlit.testing.v1 import AppTest

    from playground.ui import state as S

    rec: dict = {}
    load, sync = S.PageState.load, S.PageState.sync

    def _load(self):
        out = load(self)
        if self.page == "esm" and "applied" not in rec:
            rec["applied"], rec["warnings"] = self.values(), sorted(out)
        return out

    def _sync(self):
        if self.page == "esm":
            rec["final"] = self.values()
        return sync(self)

    S.PageState.load, S.PageState.sync = _load, _sync
    try:
        at = AppTest.from_file(str(root / PAGE), default_timeout=timeout)
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
        assert not at.exception, [e.message for e in at.exception]
        rec["query"] = {k: _last(v) for k, v in at.query_params.items()}
        at.button(key="esm.untrained").click().run()
        assert not at.exception, [e.message for e in at.exception]
    finally:
        S.PageState.load, S.PageState.sync = load, sync
    return {"link": query, **rec}



# =====================================================================================================
# the tests (new code)
# =====================================================================================================
INPUTS = ("selectbox", "select_slider", "slider", "number_input", "multiselect", "toggle", "checkbox", "radio",
          "text_input", "text_area", "color_picker", "date_input", "time_input", "file_uploader", "tab_container")
# lesson and step have no widget: they come from a lesson's link (and its Back / Next buttons)
LINK_ONLY = {"lesson", "step"}
# inputs that are this session's own and never part of a link: a path on the server, uploaded files
SESSION_INPUTS = {"esm.path", "esm.ckpt_upload", "esm.reg_upload", "esm.seq_upload",
                  "esm.emb_files"}   # the embeddings-file uploader (files are not settings)


pytestmark = pytest.mark.usefixtures("esm_offline")   # no weights to find, no network (tests/conftest.py)


@pytest.fixture(scope="module")
def tiny(tiny_esm_bytes):
    from playground import esm as E

    return E.load_checkpoint_bytes(tiny_esm_bytes[0], "esm2_tiny.pt", regression=tiny_esm_bytes[1])


def _setup():
    from playground.setups import protein as setup

    return setup


def key_of(name: str) -> str:
    return name if _setup().SCHEMA[name].scope == "global" else f"esm.{name}"


def widget_keys(at) -> set[str]:
    """The keys of every input widget the page rendered (main area and sidebar; buttons left out)."""
    from streamlit.testing.v1.element_tree import Widget

    out = set()

    def walk(node):
        if (isinstance(node, Widget) or getattr(node, "type", "") == "tab_container") and node.type in INPUTS:
            out.add(node.key)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return out


def with_tiny(at, tiny_esm_bytes):
    """Load the tiny checkpoint on the page (an upload), as a student would."""
    ckpt, reg = tiny_esm_bytes
    at.file_uploader(key="esm.reg_upload").upload("esm2_tiny-contact-regression.pt", reg)
    at.file_uploader(key="esm.ckpt_upload").upload("esm2_tiny.pt", ckpt).run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("uploaded checkpoint" in s.value for s in at.success)
    return at


def ok(at):
    assert not at.exception, [e.message for e in at.exception]
    return at


# ---- the schema itself ----------------------------------------------------------------------------
def test_each_setting_is_declared_once_and_lessons_read_the_schema():
    from playground import lessons as L

    setup = _setup()
    names = [p.name for p in setup.PARAMS]
    assert len(names) == len(set(names))
    values, warnings = setup.SCHEMA.validate(setup.SCHEMA.defaults(), strict=True)
    assert not warnings and values == setup.SCHEMA.defaults(classroom=True)
    assert setup.SCHEMA.page == "esm" and "cpu_bf16" in setup.SCHEMA        # the setting the old copy lacked
    assert setup.TABS == TABS                                  # (written here too: the recorder runs on old code)
    info = L.PAGES["protein"]
    assert info.schema is setup.SCHEMA and info.unsupported == setup.UNSUPPORTED
    assert not hasattr(L, "ESM_SETTINGS") and not hasattr(L, "UBIQUITIN")
    from playground.data import protein

    assert setup.SCHEMA["seq"].default == protein.UBIQUITIN


def test_live_and_view_settings_are_marked_as_the_page_uses_them():
    from playground.settings import CLASSROOM_PARAMS

    setup = _setup()
    assert setup.SCHEMA.live_names == ["lr"]                     # SideBySide.set_lr on the running pair
    view = {n for n, p in setup.SCHEMA.params.items() if p.view}
    assert view == {"tab", "seq", "mask", "topk", "pooling", "long", "proj", "cpu_bf16", "sweep_epochs", "att_layer",
                    "att_head", "mutations", "scan_copies", *CLASSROOM_PARAMS}
    # everything the old hand-written signature held (the model's key: model, bf16, device; the
    # proteins: data, seed; split, layer, unfreeze, head, hidden, size) is part of the run
    assert set(setup.SCHEMA.run_names) == {"model", "bf16", "device", "data", "seed", "split", "layer", "unfreeze",
                                           "head", "hidden", "size"}


def alternative(name: str):
    """A valid value other than the default."""
    p = _setup().SCHEMA[name]
    if p.kind == "bool":
        return not p.default
    if p.kind == "list":
        return [c for c in p.choices if c not in p.default][:1]
    if p.choices:
        return next(c for c in p.choices if c != p.default)
    if p.kind == "str":
        return "x"
    return p.default + 1 if p.hi is None or p.default + 1 <= p.hi else p.default - 1


def test_the_signature_follows_exactly_the_run_settings():
    setup = _setup()
    on_gpu = {"device": "cuda"}                          # bf16 is part of the run on a GPU only
    base = setup.signature(on_gpu, "model-key", "data-key")
    for name in setup.SCHEMA.names:
        other = {**on_gpu, name: alternative(name)} if name != "device" else {"device": "cpu"}
        changed = setup.signature(other, "model-key", "data-key") != base
        assert changed == setup.SCHEMA[name].in_run, name
    # what the run does not read does not count: the layer while layers are fine-tuned, bf16 on a CPU
    assert setup.signature({"unfreeze": 1, "layer": 3}, "k", "d") == setup.signature({"unfreeze": 1}, "k", "d")
    assert setup.signature({"bf16": True}, "k", "d") == setup.signature({}, "k", "d")
    # the loaded model and the proteins (an upload changes no setting) are part of it
    assert setup.signature({}, "k2", "d") != setup.signature({}, "k", "d") != setup.signature({}, "k", "d2")
    # the ESM-2 inputs do not depend on the head's own settings
    assert setup.inputs_signature({"size": 10, "head": "mlp", "hidden": 16}, "k", "d") == \
        setup.inputs_signature({}, "k", "d") != setup.inputs_signature({"split": "cluster"}, "k", "d")


def test_build_is_the_seeded_side_by_side_run_of_the_page(tiny):
    setup = _setup()
    values = {"data": "solubility", "size": 25, "seed": 3}
    prots = setup.proteins(values)
    inputs = setup.finetune_inputs(values, tiny, prots)
    run = setup.build(values, tiny, inputs)
    assert run.signature == setup.signature(values, tiny.key, prots.key) and run.config.seed == 3
    assert run.spec.head == "logistic" and run.spec.esm_model == tiny.key and run.spec.layer == tiny.layers
    mlp = setup.build({**values, "head": "mlp", "hidden": 16}, tiny, inputs).spec
    assert mlp.head == "mlp" and mlp.hidden == 16
    n_train = len(inputs.cnn.y_train)
    assert run.extras["n_use"] == round(n_train * 0.25) and run.extras["names"] == ("ESM-2 head (frozen)",
                                                                                      "CNN from scratch")
    a, b = run.make_trainer(), setup.build(values, tiny, inputs).make_trainer()
    for pair in (a, b):
        pair.run_epochs(1)
    for name in run.extras["names"]:                              # same proteins, weights and shuffling
        ta, tb = a.trainers[name], b.trainers[name]
        assert ta.n_train == run.extras["n_use"] and ta.history[-1]["val_loss"] == tb.history[-1]["val_loss"]
    head, cnn = a.trainers.values()
    assert head.data.meta["train_subset"].tolist() == cnn.data.meta["train_subset"].tolist()
    # both models are judged on the same validation proteins; the test proteins are held out
    assert len(head.data.y_val) == len(cnn.data.y_val) == len(inputs.cnn.y_val) > 0
    assert bool((head.data.y_val == cnn.data.y_val).all()) and head.test_looks == cnn.test_looks == 0
    # the proteins the code export embeds are the ones the head trained on
    train_seqs, _, val_seqs, _, test_seqs, _ = setup.script_proteins(run, head, prots.ps)
    assert len(train_seqs) == run.extras["n_use"] and len(test_seqs) == len(inputs.cnn.y_test)
    assert len(val_seqs) == len(inputs.cnn.y_val) and not set(val_seqs) & set(test_seqs) - set(train_seqs)
    assert train_seqs[0] == prots.seqs[inputs.cnn.meta["train_idx"][head.data.meta["train_subset"][0]]]


def test_the_pair_gives_its_memory_back_like_one_trainer(tiny):
    """LiveTraining releases an idle run (``release_memory``) and rebuilds it when ``released``."""
    setup = _setup()
    values = {"data": "ss", "size": 10}
    prots = setup.proteins(values)
    pair = setup.build(values, tiny, setup.finetune_inputs(values, tiny, prots)).make_trainer()
    pair.run_epochs(1)
    assert pair.released is None
    pair.release_memory("idle")
    assert pair.released == "idle" and all(t.released == "idle" and len(t.data.x_train) == 0
                                           for t in pair.trainers.values())
    assert pair.epoch == 1 and [r["epochs"] for r in pair.table()] == [1, 1]      # still listed and saved


def test_an_uploaded_file_is_read_with_its_labels_and_its_content_is_the_data_key():
    setup = _setup()
    fasta = "".join(f">p{i} label={'ab'[i % 2]}\nMKTAYIAKQRQ{'DE' * i}\n" for i in range(6)).encode()
    d = setup.proteins({"data": "upload"}, ("a.fasta", fasta))
    assert d.ids == [f"p{i}" for i in range(6)] and d.labels == ["a", "b"] * 3 and d.ps.task == "binary"
    assert setup.proteins({"data": "upload"}) is None                      # no file yet
    same = setup.proteins({"data": "upload"}, ("renamed.fasta", fasta))
    relabelled = setup.proteins({"data": "upload"}, ("a.fasta", fasta.replace(b"label=a", b"label=b")
                                                     .replace(b"p1 label=b", b"p1 label=a")))
    assert same.key == d.key and relabelled.key != d.key


# ---- (a) the widgets the page renders are its schema's settings ----------------------------------
def test_the_page_renders_a_widget_for_every_setting_and_no_other(app_test, tiny_esm_bytes):
    setup = _setup()
    expected = {key_of(n) for n in setup.SCHEMA.names if n not in LINK_ONLY}
    seen = set()

    def look(at, where):
        keys = widget_keys(ok(at)) - SESSION_INPUTS
        assert keys <= expected, (where, keys - expected)          # no widget outside the schema
        seen.update(keys)

    look(app_test(PAGE).run(), "no model loaded")
    for tab, button in zip(TABS, (None, "esm.embed_btn", "esm.prep_btn", None, "esm.scan_btn")):
        at = with_tiny(app_test(PAGE, {"tab": tab}).run(), tiny_esm_bytes)
        look(at, tab)
        if button:                                       # the projection, the learning rate and the sweep
            at.button(key=button).click().run()
            look(at, tab + " computed")
    assert seen == expected, expected - seen


# ---- (b) the trained pair is rebuilt when a run setting changes, never on a live or view one ------
def test_the_pair_is_rebuilt_on_a_run_setting_and_kept_on_a_live_or_view_setting(app_test, tiny_esm_bytes):
    at = with_tiny(app_test(PAGE, {"tab": TABS[2], "size": "50"}).run(), tiny_esm_bytes)
    ok(at.button(key="esm.prep_btn").click().run())
    ok(at.button(key="esm.step").click().run())
    pair, prep = at.session_state["esm._trainer"], at.session_state["esm._ft"]
    assert pair.epoch == 1

    def change(name, value):
        at.session_state[key_of(name)] = value
        ok(at.run())
        assert at.session_state[key_of(name)] == value, name
        return at.session_state["esm._trainer"]

    # live: the learning rate reaches both running trainers; the same run goes on
    assert change("lr", 0.01) is pair and pair.epoch == 1
    assert all(g["lr"] == 0.01 for t in pair.trainers.values() for g in t.optimizer.param_groups)
    # view: the sweep's epochs, another tab and back
    assert change("sweep_epochs", 3) is pair
    change("tab", TABS[0])
    assert change("tab", TABS[2]) is pair and pair.epoch == 1 and at.session_state["esm._ft"] is prep
    # run, the head's own settings: a new pair on the same ESM-2 inputs (not recomputed)
    for name, value in (("size", 25), ("head", "mlp"), ("hidden", 32)):
        new = change(name, value)
        assert new is not pair and new.epoch == 0 and at.session_state["esm._ft"] is prep, name
        pair = new
    # run, the inputs' settings: the inputs are stale until computed again, then a new pair
    change("split", "cluster")
    assert at.session_state["esm._ft"] is prep and any(b.key == "esm.prep_btn" for b in at.button)
    ok(at.button(key="esm.prep_btn").click().run())
    assert at.session_state["esm._ft"] is not prep and at.session_state["esm._trainer"] is not pair
    assert at.session_state["esm._trainer"].epoch == 0


def test_the_embeddings_are_recomputed_for_a_new_layer_and_kept_for_a_new_projection(app_test, tiny_esm_bytes):
    at = with_tiny(app_test(PAGE, {"tab": TABS[1]}).run(), tiny_esm_bytes)
    ok(at.button(key="esm.embed_btn").click().run())
    got = at.session_state["esm._emb"]
    assert ok(at.run()).button(key="esm.embed_btn").disabled             # fresh: nothing to do
    assert at.session_state["esm._emb"] is got
    at.radio(key="esm.proj").set_value("tsne")
    ok(at.run())
    assert at.session_state["esm._emb"] is got and at.button(key="esm.embed_btn").disabled
    at.selectbox(key="esm.layer").set_value(1)
    ok(at.run())
    assert not at.button(key="esm.embed_btn").disabled                   # stale: embed again
    ok(at.button(key="esm.embed_btn").click().run())
    assert at.session_state["esm._emb"] is not got and at.session_state["esm._emb"]["res"].layer == 1


# ---- (c) links saved before the refactor, and the lesson's links, restore the same settings -------
RECORDED = json.loads(LINKS_FILE.read_text())["links"] if LINKS_FILE.exists() else []


def test_the_recorded_links_are_the_links_of_this_file():
    assert [r["link"] for r in RECORDED] == LINKS


# settings added since the links were recorded (view settings, left out of the URL at their defaults):
# the mutation-scan tab's typed mutations and its masked copies per pass
ADDED = {"mutations": "I44A, K48R, K63R, L8A", "scan_copies": 0}


@pytest.mark.parametrize("i", range(len(RECORDED)), ids=[f"link{i}" for i in range(len(RECORDED))])
def test_links_saved_before_the_schema_refactor_restore_the_same_settings(i):
    old = RECORDED[i]
    new = open_link(Path(__file__).resolve().parents[1], old["link"])
    for part in ("applied", "warnings", "query", "final"):
        got = new[part]
        if part in ("applied", "final"):
            assert {k: got.get(k) for k in ADDED} == ADDED, part
            got = {k: v for k, v in got.items() if k not in ADDED}
        if part == "warnings":                                 # the tab list a bad tab's warning names grew
            got = [w.replace(", 🧬 Mutation scan", "") for w in got]
        assert got == old[part], part


def _esm_steps():
    from playground import lessons as L

    lessons, _ = L.load_all()
    return [pytest.param(les, n, id=f"{les.id}-{n}") for les in lessons for n, step in enumerate(les.steps, 1)
            if step.page == "protein"]


@pytest.mark.parametrize("les,number", _esm_steps())
def test_every_esm_lesson_step_link_restores_its_settings_on_the_page(les, number):
    from playground import lessons as L

    step = les.step(number)
    got = open_link(Path(__file__).resolve().parents[1], L.step_query(les, number))
    assert not got["warnings"]
    full = L.full_settings(step)
    assert {k: got["applied"][k] for k in full} == full                  # the step's values, defaults elsewhere
    assert {k: got["final"][k] for k in step.settings} == step.settings  # still in place after the page ran
    assert got["query"]["lesson"] == les.id and all(got["query"][k] == L.encode(v) for k, v in step.settings.items())


def _record(old_root: Path) -> None:
    """Record LINKS on the old code (run from this file, with the old worktree first on sys.path)."""
    out = [open_link(old_root, q) for q in LINKS]
    LINKS_FILE.parent.mkdir(parents=True, exist_ok=True)
    LINKS_FILE.write_text(json.dumps({"commit": "3386e54", "page": PAGE, "links": out}, indent=1,
                                     ensure_ascii=False) + "\n")
    print(f"recorded {len(out)} links into {LINKS_FILE}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--record":
        root = Path(sys.argv[2]).resolve()
        sys.path.insert(0, str(root))
        os.chdir(root)
        import tempfile

        os.environ["PLAYGROUND_OFFLINE"] = "1"
        os.environ["PLAYGROUND_NUM_THREADS"] = "1"
        os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="torch_home_")
        _record(root)
    else:
        print(__doc__)
