"""The DNA & CNNs page on the settings schema (``playground.setups.dna``).

- the widget keys the page renders are exactly the schema's settings (and its declared private slots);
- a change to a setting of the run rebuilds the trainer, a live or view setting does not;
- gradient clipping (the recipe's worked example: one Param, one widget) reaches the run, the
  trainer, the rebuild signature, the code export and the lessons;
- links saved before the schema (``tests/data/links_dna.json``, recorded with AppTest on commit
  3386e54) and every shipped DNA lesson step link restore the same settings.

Re-record the old links (only ever from the old code) with
``python tests/test_setups_dna.py --record <worktree of 3386e54>``.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = "pages/2_DNA_CNN.py"
LINKS_FILE = Path(__file__).resolve().parent / "data" / "links_dna.json"
TABS = ("📄 Data & one-hot", "📈 Training", "🧩 Filters → logos", "🔬 Explain a sequence", "💾 Save & export")
CSV = "id,sequence,label\n" + "".join(
    f"s{i},{'ACGTTGCA' * 3 if i % 2 else 'TTTTGGGGCCCCAAAATTTTGGGG'}{'ACGT'[i % 4] * 2},{i % 2}\n" for i in range(40))

# A dozen and more varied links (what students and teachers shared): every data set, every model,
# every tab, bad and unknown values (ignored with a warning), lock/hide/projector. The shipped
# DNA lessons' step links are added when recording.
LINKS = [
    {},
    {"lr": "0.01", "seed": "1", "n_logos": "4"},
    {"dataset": "multiclass", "motifs": "CTCF,GATA1", "n": "500", "length": "80", "both_strands": "1",
     "label_noise": "0.1", "tab": TABS[3], "explain_class": "1", "sal_logo": "0"},
    {"dataset": "grammar", "motif_a": "SP1 (GC box)", "motif_b": "CTCF", "spacing": "10", "n": "500", "gc": "0.4",
     "motif_noise": "0.1"},
    {"dataset": "kmer8", "model": "course", "batch": "256", "tab": TABS[1]},
    {"dataset": "planted", "motif_source": "consensus", "consensus": "TTGACAATGC", "from_consensus": "1",
     "n": "200", "length": "30", "train_pct": "60"},
    {"dataset": "planted", "motif_source": "jaspar", "jaspar_id": "MA0047.4", "n": "500", "length": "40",
     "tab": TABS[1], "logo_kind": "weights", "n_logos": "16"},
    {"dataset": "upload", "length_policy": "truncate", "map_u": "1", "label_kind": "regression",
     "seq_col": "seq", "label_col": "y", "model": "logreg"},
    {"dataset": "genomic", "gb_name": "demo_human_or_worm", "gb_n": "500", "seed": "7"},
    {"model": "custom", "conv_layers": "3", "c1": "16", "k1": "9", "c2": "8", "k2": "3", "c3": "4", "k3": "3",
     "padding": "same", "batch_norm": "1", "activation": "gelu", "pool": "adaptive", "pool_output": "3",
     "dropout": "0.2", "dense": "0", "optimizer": "sgd", "lr": "0.1", "early_stop": "5", "n": "500"},
    {"model": "mlp", "mlp_layers": "2", "mlp_neurons": "16", "dropout": "0.3", "n": "200", "batch": "64",
     "optimizer": "adamw", "tab": TABS[3], "seq": "5"},
    {"lr": "abc", "model": "bogus", "gc": "5", "n": "123", "motifs": "CTCF,NOPE", "unknown": "x",
     "both_strands": "maybe", "seq": "-3", "k1": "99", "tab": "nope"},
    {"lock": "lr,model", "hide": "dataset,n", "projector": "1", "device": "cpu", "n": "500", "seed": "3"},
    {"model": "custom", "conv_layers": "1", "c1": "8", "k1": "25", "pool": "none", "dense": "32", "n": "200",
     "tab": TABS[4], "motif": "GATA1"},
]


def open_link(root: Path, query: dict, timeout: int = 120) -> dict:
    """Open the DNA page of the code at ``root`` with ``query`` (one AppTest run). Returns the
    settings the page saved at the end of the run (``_saved.dna`` = the page's values,
    ``_saved._global`` = seed, device and the classroom ones), the URL it wrote back and its warnings."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(root / PAGE), default_timeout=timeout)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    ss = at.session_state
    url = {k: (v[-1] if isinstance(v, list) else v) for k, v in dict(at.query_params).items()}
    return {"query": query, "page_values": ss["_saved.dna"], "global_values": ss["_saved._global"], "url": url,
            "warnings": [w.value for w in at.warning]}


def _record(old_root: Path) -> None:
    """Record LINKS and the old lessons' DNA step links on the old code (old worktree first on sys.path)."""
    from playground import lessons as L

    links = list(LINKS)
    for les in L.load_all()[0]:
        links += [L.step_query(les, i) for i, step in enumerate(les.steps, 1) if step.page == "dna"]
    out = [open_link(old_root, q) for q in links]
    about = ("What the DNA page made of these links BEFORE the settings-schema refactor (commit 3386e54): for each "
             "link (query), the settings it saved after one AppTest run (page_values = _saved.dna, the page-scoped "
             "state.values(); global_values = _saved._global: seed, device, classroom), the URL it wrote back and "
             "its warnings. GENOMIC_BENCHMARKS_CACHE was an empty folder. The last links are the shipped DNA "
             "lessons' step links as lessons.step_query made them. Recorder: tests/test_setups_dna.py --record.")
    body = ",\n".join("  " + json.dumps(r, ensure_ascii=False) for r in out)
    LINKS_FILE.write_text(f'{{"about": {json.dumps(about)},\n "commit": "3386e54",\n "links": [\n{body}\n ]}}\n')
    print(f"recorded {len(out)} links into {LINKS_FILE}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--record":
        import tempfile

        root = Path(sys.argv[2]).resolve()
        sys.path.insert(0, str(root))
        os.chdir(root)
        os.environ["PLAYGROUND_NUM_THREADS"] = "1"
        os.environ["GENOMIC_BENCHMARKS_CACHE"] = tempfile.mkdtemp()
        _record(root)
    else:
        print(__doc__)
    sys.exit(0)


# ---- the tests (the current code) ---------------------------------------------------------------
from playground import lessons as L                  # noqa: E402
from playground.setups import dna as D               # noqa: E402

NO_VALUE = {"button", "download_button", "plotly_chart", "link_button", "page_link", "form_submit_button"}
NEVER_A_WIDGET = {"lesson", "step"}     # set by a lesson's link, never by a control
DESIGN = {p.name for p in D.SCHEMA if p.name.startswith("design_")}   # the 🧪 Designed filters tab (view only)
OLD = json.loads(LINKS_FILE.read_text())["links"]


def widget_keys(at) -> set[str]:
    """Keys of every element that holds a value (not buttons, downloads or charts) on the page."""
    keys = set()

    def walk(node):
        for child in getattr(node, "children", {}).values():
            if getattr(child, "key", None) and getattr(child, "type", None) not in NO_VALUE:
                keys.add(child.key)
            walk(child)

    walk(at._tree)
    return keys


def warned_about(warning: str) -> str:
    """What a warning is about: the link parameter it names (`lr=abc` -> lr), or its text."""
    m = re.search(r"link parameter `([^`=]+)", warning)
    return m.group(1) if m else warning


def setting_key(name: str) -> str:
    return name if D.SCHEMA[name].scope == "global" else f"dna.{name}"


@pytest.fixture
def offline_genomic(monkeypatch, tmp_path):
    monkeypatch.setenv("GENOMIC_BENCHMARKS_CACHE", str(tmp_path))


def test_widget_keys_are_exactly_the_schema(app_test, offline_genomic):
    combos = [
        ({}, None),
        ({"motif_source": "jaspar"}, None),
        ({"motif_source": "consensus", "n": "200", "tab": TABS[1]}, None),
        ({"dataset": "multiclass", "n": "200", "tab": TABS[3]}, None),
        ({"dataset": "grammar", "n": "200", "tab": TABS[2], "n_logos": "4"}, None),
        ({"dataset": "upload", "model": "logreg", "tab": TABS[4]}, ("seqs.csv", CSV.encode(), "text/csv")),
        ({"dataset": "genomic"}, None),
        ({"model": "custom", "conv_layers": "4", "padding": "same", "n": "200", "tab": TABS[1]}, None),
        ({"model": "custom", "pool": "adaptive", "n": "200", "tab": TABS[3]}, None),
        ({"model": "mlp", "n": "200"}, None),
        ({"tab": "🔬 Explain a sequence", "scan_source": "typed", "scan_seq": "ACGTACGTTA", "n": "200"}, None),
        ({"tab": "✋ Convolution by hand", "n": "200"}, None),      # the workshop's typed example, consensus filters
        *[({"tab": "✋ Convolution by hand", "conv_source": "validation", "conv_kind1": a, "conv_kind2": b, "n": "200"},
           None) for a, b in (("jaspar", "learned"), ("learned", "jaspar"), ("grid", "grid"))],
        *[({"tab": "🧪 Designed filters", "design_source": s, "n": "200"}, None) for s in ("jaspar", "consensus", "grid")],
    ]
    by_key = {setting_key(n): n for n in D.SCHEMA.names}
    private = {f"dna._{s}" for s in D.PRIVATE}
    seen: set[str] = set()
    for query, upload in combos:
        at = app_test(PAGE, query=query).run()
        if upload is not None:
            at.file_uploader(key="dna._upload").set_value(upload).run()
        assert not at.exception, (query, [e.message for e in at.exception])
        keys = widget_keys(at)
        # the 🔎 Sweep panel's own form (playground/ui/sweep_view.py): a study's settings live in the study, not in the
        # page's link; its trial links carry page settings
        stray = {k for k in keys - set(by_key) - private if not k.startswith("dna.sweep.")}
        assert not stray, f"{query}: widgets outside the schema and PRIVATE: {sorted(stray)}"
        seen |= {by_key[k] for k in keys if k in by_key}
    missing = set(D.SCHEMA.names) - NEVER_A_WIDGET - seen
    assert not missing, f"settings no control sets: {sorted(missing)}"
    assert "grad_clip" in seen


def test_the_page_uses_only_declared_private_slots():
    src = (ROOT / PAGE).read_text()
    assert '"dna._' not in src and "'dna._" not in src, "private session keys go through state.slot (PRIVATE)"
    assert len(src.splitlines()) <= 400


def test_live_and_view_settings_are_what_the_page_applies_without_a_rebuild():
    """The old hand-written signature held the data set's settings, the spec, the training share,
    optimizer, batch size, seed and device; lr and early stopping were applied to the running
    trainer, the rest only drawn. The derived signature must say the same (plus grad_clip)."""
    assert D.SCHEMA.live_names == ["lr", "early_stop"]
    view = {p.name for p in D.SCHEMA if p.view}
    assert view == {"tab", "seq", "n_logos", "logo_kind", "explain_class", "sal_logo",
                    "scan_source", "scan_seq", "scan_units", "lesson", "step", "projector", "lock", "hide"} \
        | {p.name for p in D.CONV_PARAMS} | DESIGN
    run_names = set(D.SCHEMA.run_names)
    assert {"seed", "device", "dataset", "motif", "n", "length", "model", "k1", "optimizer", "batch", "train_pct",
            "grad_clip", "seq_col", "gb_name"} <= run_names


def test_a_setting_of_the_run_rebuilds_the_trainer_and_live_or_view_ones_do_not(app_test):
    at = app_test(PAGE, query={"n": "200", "n_logos": "4"}).run()
    trainer = at.session_state["dna._trainer"]
    at.button(key="dna.step").click().run()
    assert trainer.epoch == 1
    # every live setting at once: applied to the same trainer
    for name, value in {"lr": 0.03, "early_stop": 7}.items():
        at.session_state[setting_key(name)] = value
    at.run()
    assert at.session_state["dna._trainer"] is trainer
    assert trainer.optimizer.param_groups[0]["lr"] == 0.03 and trainer.config.early_stopping == 7
    # every view setting at once (the classroom ones too): only drawn
    view = {"tab": TABS[1], "seq": 3, "n_logos": 16, "logo_kind": "weights", "explain_class": 1, "sal_logo": False,
            "projector": True, "lock": ["gc"], "hide": ["motif_noise"],
            **{p.name: p.default for p in D.CONV_PARAMS}, "conv_window": 3, "conv_pool": 3, "conv_stride": 2,
            **{n: D.SCHEMA[n].default for n in DESIGN}, "design_epochs": 5, "design_filter": 2,
            "scan_source": "typed", "scan_seq": "ACGTACGTTA", "scan_units": "probability"}
    assert set(view) | NEVER_A_WIDGET | set(D.SCHEMA.live_names) == {p.name for p in D.SCHEMA if not p.in_run}
    for name, value in view.items():
        at.session_state[setting_key(name)] = value
    at.run()
    assert not at.exception and at.session_state["dna._trainer"] is trainer and trainer.epoch == 1
    assert at.session_state["dna.n_logos"] == 16
    # the run: a new trainer, each time
    for widget, value in ((at.select_slider(key="dna.grad_clip"), 2.0), (at.selectbox(key="dna.batch"), 64),
                          (at.slider(key="dna.train_pct"), 60), (at.select_slider(key="dna.length"), 30),
                          (at.selectbox(key="dna.motif"), "GATA1"), (at.number_input(key="seed"), 5)):
        widget.set_value(value).run()
        assert not at.exception
        new = at.session_state["dna._trainer"]
        assert new is not trainer and new.epoch == 0, widget.key
        trainer = new
    assert trainer.config.grad_clip == 2.0 and trainer.config.batch_size == 64
    assert trainer.optimizer.param_groups[0]["lr"] == 0.03        # the live settings carry over
    assert len(trainer.data.x_train) == 120 and trainer.data.x_train.shape[2] == 30 and trainer.config.seed == 5


def _step_size(values: dict) -> float:
    import torch

    tr = D.build(values).make_trainer()
    before = torch.cat([p.detach().flatten().clone() for p in tr.model.parameters()])
    tr.step(1)
    after = torch.cat([p.detach().flatten() for p in tr.model.parameters()])
    return float((after - before).norm())


def test_gradient_clipping_reaches_the_run_and_bounds_each_step():
    base = {"n": 200, "model": "course", "optimizer": "sgd", "lr": 1.0}
    run = D.build({**base, "grad_clip": 0.5})
    assert run.config.grad_clip == 0.5 and run.make_trainer().config.grad_clip == 0.5
    assert run.signature != D.build(base).signature
    assert run.extras["parameters"]["grad_clip"] == 0.5 and "grad_clip" not in D.build(base).extras["parameters"]
    # plain SGD moves the weights by lr × gradient: clipping caps the step at lr × max norm
    free = _step_size(base)
    assert 0.5 < free < 5.0              # the first batch's gradient norm (lr 1: the step is the gradient)
    for clip in D.GRAD_CLIPS[1:]:        # a cap below the norm binds; above it, no effect
        assert _step_size({**base, "grad_clip": clip}) == pytest.approx(min(clip, free), rel=1e-4), clip
    assert _step_size({**base, "lr": 3.0, "grad_clip": 0.5}) == pytest.approx(1.5, rel=1e-4)   # lr × max norm
    # the exported script clips too, and a lesson may set it (validated through the schema)
    from playground.codegen import script_for

    tr = run.make_trainer()
    assert "clip_grad_norm_(model.parameters(), 0.5)" in script_for(run, tr)      # as the page exports it
    assert "clip_grad_norm_" not in script_for(D.build(base), tr)
    assert L.PAGES["dna"].settings["grad_clip"] == 0.0
    from playground.settings import SettingError

    with pytest.raises(SettingError, match="grad_clip"):
        D.SCHEMA.validate({"grad_clip": 0.7}, strict=True)


def test_build_is_the_lessons_run_and_reproducible():
    a = L.start_run(L.PAGES["dna"], {"n": 200, "model": "custom", "c1": 8, "k1": 8})
    b = D.build({"n": 200, "model": "custom", "c1": 8, "k1": 8}).make_trainer()
    a[0].run_epochs(1)
    b.run_epochs(1)
    assert a[0].history[-1]["val_loss"] == b.history[-1]["val_loss"]
    assert 0 < a[1]["motif_recovery"](a[0]) <= 1
    assert set(L.live_extras("dna", {"dataset": "grammar"})) == {"motif_recovery", "motif_p", "motif_above_chance"}
    with pytest.raises(ValueError, match="upload"):
        D.build({"dataset": "upload"})


# settings added since the links were recorded, at their defaults: gradient clipping, then the
# validation share and the learning-rate schedule of the train / validation / test split
ADDED = {"grad_clip": 0.0, "val_pct": 10, "schedule": "plateau", "conv_dropout": 0.0, "encoding": "one_hot"}


def _first_validation_sequence_with_a_motif(values: dict) -> int:
    from playground.ui.dna_view import next_with_motif

    run = D.build(values)
    return next_with_motif(run.make_trainer().data.meta["val_idx"], run.extras["dataset"])


@pytest.mark.parametrize("i", range(len(OLD)), ids=[json.dumps(r["query"], ensure_ascii=False)[:60] for r in OLD])
def test_links_saved_before_the_schema_restore_the_same_settings(offline_genomic, i):
    old = OLD[i]
    new = open_link(ROOT, old["query"])
    expected = dict(old["page_values"])
    # the train / validation / test split changed two things on purpose: the default training share
    # went from 75 % to 80 % (80 / 10 / 10; a link that names its share keeps it), and the sequence
    # views show the validation set, so the sequence a link did not name is the first VALIDATION
    # sequence with a motif (it was the first test sequence with one)
    if "train_pct" not in old["query"]:
        assert expected["train_pct"] == 75
        expected["train_pct"] = 80
    # early stopping is on by default now (patience 5 on the validation loss, measured on the real
    # non-TATA promoters: see the README); a link that names its patience keeps it
    if "early_stop" not in old["query"]:
        assert expected["early_stop"] == 0
        expected["early_stop"] = 5
    if str(expected["seq"]) != old["query"].get("seq") and expected["seq"] != 0:    # not named (or not valid)
        expected["seq"] = _first_validation_sequence_with_a_motif({**new["page_values"], **new["global_values"]})
    for name, value in expected.items():
        assert new["page_values"][name] == value, (name, new["page_values"][name], value)
    added = {n: v for n, v in new["page_values"].items() if n not in old["page_values"]}
    # view settings added since (the new tabs' own: conv_*, design_*, scan_*) are at their defaults
    # and, being left out of the URL at their defaults, change nothing else
    views = {n for n in added if D.SCHEMA[n].view and D.SCHEMA[n].omit_default}
    assert {n: added[n] for n in views} == {n: D.SCHEMA[n].default for n in views}
    assert {n: v for n, v in added.items() if n not in views} == ADDED    # the settings added since, at their defaults
    assert new["global_values"] == old["global_values"]
    changed = {n: L.encode(v) for n, v in expected.items() if v != old["page_values"][n]}
    assert new["url"] == {**old["url"], **changed, **{n: L.encode(v) for n, v in ADDED.items()}}
    # the same link parameters are ignored with a warning (its wording may have improved since)
    assert [warned_about(w) for w in new["warnings"]] == [warned_about(w) for w in old["warnings"]]


DNA_STEPS = [(les, n) for les in L.load_all()[0] for n, step in enumerate(les.steps, 1) if step.page == "dna"]
# lessons 13 on were written after the old links were recorded
OLD_DNA_STEPS = [(les, n) for les, n in DNA_STEPS if les.number <= 12]


def test_the_old_links_cover_every_shipped_dna_lesson_step():
    old_queries = [r["query"] for r in OLD]
    for les, n in OLD_DNA_STEPS:
        assert L.step_query(les, n) in old_queries, (les.id, n)


@pytest.mark.parametrize("les,n", DNA_STEPS, ids=[f"{les.id}-{n}" for les, n in DNA_STEPS])
def test_every_dna_lesson_step_link_restores_its_settings(app_test, monkeypatch, les, n):
    from playground.ui.state import PageState

    applied = {}
    load = PageState.load

    def _load(self):
        out = load(self)
        applied.update(self.values())
        return out

    monkeypatch.setattr(PageState, "load", _load)
    at = app_test(PAGE, query=L.step_query(les, n)).run()
    assert not at.exception
    assert not [w.value for w in at.warning if "link parameter" in w.value]
    step = les.step(n)
    for name, value in L.full_settings(step).items():
        assert applied[name] == value, (name, applied[name], value)
    for name, value in step.settings.items():
        assert at.session_state[setting_key(name)] == value, name
