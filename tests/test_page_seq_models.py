"""AppTest: the sequence-models page (pages/3_Sequence_Models.py)."""
import pytest
import torch

from playground.bundle import load_bundle
from tests.conftest import plotly_specs
from tests.test_page_predict import downloads  # noqa: F401 - fixture: files handed to st.download_button
from tests.conftest import run_history

PAGE = "pages/3_Sequence_Models.py"
SMALL = {"n": "200", "length": "40", "seed": "1"}


def titles(at) -> list[str]:
    return [((s.get("layout") or {}).get("title") or {}).get("text", "") for s in plotly_specs(at)]


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def runs_table(at):
    return next((d.value for d in at.dataframe if "parameters" in d.value.columns and "model" in d.value.columns),
                None)


def no_exception(at):
    assert not at.exception, [e.message for e in at.exception]


def test_default_page_trains_the_hybrid_on_the_motif_grammar_and_keeps_state_in_the_url(app_test):
    at = app_test(PAGE, query=SMALL).run()
    no_exception(at)
    assert at.selectbox(key="seq.dataset").value == "dna_grammar"
    assert at.selectbox(key="seq.family").value == "hybrid"
    assert metric(at, "Epoch") == "0"
    assert any("parameters" in c.value and "Hybrid" in c.value for c in at.caption)
    button(at, "⏭ Step").click().run()
    no_exception(at)
    assert metric(at, "Epoch") == "1" and "Val. loss" in [m.label for m in at.metric]
    for label in ("Accuracy", "MCC", "F1", "AUROC"):          # validation tiles (compact: four metrics)
        assert 0.0 <= float(metric(at, label)) <= 1.0
    assert "Attention: every layer and head" in titles(at)
    assert at.query_params["dataset"] == "dna_grammar" and at.query_params["family"] == "hybrid"
    # the exact-course preset button sets the notes' sizes (and the parameter count follows)
    button(at, "Course sizes").click().run()
    no_exception(at)
    assert at.query_params["h_conv2_channels"] == "256" and at.query_params["h_heads"] == "8"
    assert any("1,284,545 parameters" in c.value for c in at.caption), [c.value for c in at.caption][:4]
    # (1,284,674 with two output classes; binary tasks use Linear(128 -> 1))


def test_transformer_attention_maps_walkthrough_and_positional_encoding(app_test):
    at = app_test(PAGE, query={**SMALL, "family": "transformer", "t_d": "16", "t_heads": "2", "seq_idx": "3"}).run()
    no_exception(at)
    button(at, "⏭ Step").click().run()
    no_exception(at)
    specs = plotly_specs(at)
    grid = next(s for s in specs if s["layout"]["title"]["text"] == "Attention: every layer and head")
    heat = [t for t in grid["data"] if t["type"] == "heatmap"]
    assert len(heat) == 2 * 3                                   # 2 layers x (2 heads + average)
    ticks = grid["layout"]["xaxis"]["ticktext"]
    assert ticks[0][0] in "ACGT" and ticks[0][1:] == "1"        # bases on the axes
    t = titles(at)
    assert "Layer 1, average of the 2 heads" in t
    for name in ("Q", "K", "V", "QKᵀ / √8", "softmax", "softmax(QKᵀ/√d_k) · V"):
        assert name in t, name
    check = next(c.value for c in at.caption if c.value.startswith("Check: recomputed by hand"))
    assert float(check.split("within ")[1].rstrip(".")) < 1e-5
    assert "Positional encoding (position × dimension)" in t
    # a typed tiny example with a foreign letter is a friendly error, not a traceback
    at.text_input(key="seq.wt_seq").set_value("ACGZ").run()
    no_exception(at)
    assert any("Cannot use 'ACGZ'" in e.value for e in at.error)
    at.text_input(key="seq.wt_seq").set_value("TTGACA").run()
    no_exception(at)
    assert not at.error


def test_motif_pair_is_outlined_and_its_attention_measured(app_test):
    from playground.data import protein as P

    ps = P.builtin_set("dna_grammar", 200, 40, 1)
    data = P.to_split(ps, "random", 0.8, 1)
    idx = next(i for i, j in enumerate(data.meta["val_idx"]) if ps.y[j] == 1)     # the views show validation
    at = app_test(PAGE, query={**SMALL, "family": "transformer", "seq_idx": str(idx)}).run()
    no_exception(at)
    big = next(s for s in plotly_specs(at) if s["layout"]["title"]["text"].startswith("Layer 1, average"))
    assert len(big["layout"]["shapes"]) == 2                     # GATA1 -> AP-1 and back
    assert any(md.value.startswith("**GATA1 → FOS::JUN**") for md in at.markdown)
    assert any("of GATA1's attention lands on FOS::JUN" in c.value for c in at.caption)


def test_protein_labelling_with_a_bidirectional_lstm_reports_q3(app_test):
    at = app_test(PAGE, query={**SMALL, "dataset": "protein_ss", "family": "rnn", "r_cell": "gru",
                               "lr": "0.01"}).run()
    no_exception(at)
    button(at, "⏭ Step").click().run()
    no_exception(at)
    assert 0.0 < float(metric(at, "Validation Q3")) <= 1.0
    assert "Validation accuracy" not in [m.label for m in at.metric]
    assert any(s.startswith("Per-residue labels: true vs predicted") for s in titles(at))
    assert any("no attention layers" in i.value for i in at.info)
    # the hybrid cannot label residues: a clear message, settings kept
    at.selectbox(key="seq.family").set_value("hybrid").run()
    no_exception(at)
    assert any("cannot label every residue" in e.value for e in at.error)
    assert at.selectbox(key="seq.dataset").value == "protein_ss"


def test_upload_errors_name_line_and_letter_and_mapping_fixes_them(app_test):
    at = app_test(PAGE, query={"dataset": "upload", "family": "cnn"}).run()
    no_exception(at)
    assert any("Upload a CSV" in i.value for i in at.info)
    bad = "sequence,label\nMKTAYIAKQR,1\nMKVLBAGIVG,0\nMSDNELLKEV,1\nMQQRRSTTAA,0\nMKKLLPTAAA,1\n"
    at.file_uploader(key="seq._uploader").set_value(("prot.csv", bad.encode(), "text/csv")).run()
    no_exception(at)
    err = " ".join(e.value for e in at.error)
    assert "Line 3, position 5" in err and "'B'" in err and "What to do" in err
    at.toggle(key="seq.up_map_rare").set_value(True).run()
    no_exception(at)
    assert not at.error
    assert metric(at, "Epoch") == "0"
    button(at, "⏭ Step").click().run()
    no_exception(at)
    assert metric(at, "Epoch") == "1"


def test_upload_per_residue_labels_with_a_mask(app_test):
    rows = ["sequence,ss,mask"] + [f"{s},{l},{'1' * len(s)}" for s, l in (
        ("MKTAYIAKQRAELMK", "CCHHHHHHHHHHHCC"), ("VIYFWTGGVIYFWTG", "EEEEEECCEEEEEEC"),
        ("GPNDSHCGPNDSHCG", "CCCCCCCCCCCCCCC"), ("AELMQKRVIYFWTGP", "HHHHHHHEEEEECCC"),
        ("MSDNELLKEVAAVIY", "CCCHHHHHHHHHEEE"), ("GGGAELMQKRGGGGG", "CCCHHHHHHHCCCCC"))]
    at = app_test(PAGE, query={"dataset": "upload", "family": "transformer", "up_per_residue": "1"}).run()
    at.file_uploader(key="seq._uploader").set_value(("ss.csv", "\n".join(rows).encode(), "text/csv")).run()
    no_exception(at)
    assert not at.error
    assert "Validation Q3" in [m.label for m in at.metric]


def test_run_comparison_fills_a_table_that_persists(app_test):
    at = app_test(PAGE, query={**SMALL, "family": "cnn", "cmp_models": "cnn,gru", "cmp_epochs": "1"}).run()
    no_exception(at)
    assert any("No runs yet" in c.value for c in at.caption)
    button(at, "🏁 Run comparison").click().run()
    for _ in range(40):                      # AppTest runs the fragment once per run()
        if runs_table(at) is not None and "seq._cmp" not in at.session_state:
            break
        at.run()
    no_exception(at)
    table = runs_table(at)
    assert list(table["model"]) == ["CNN", "GRU"]
    assert (table["parameters"] > 0).all() and (table["epochs"] == 1).all()
    assert "best validation accuracy" in table.columns
    assert "Validation accuracy per epoch" in titles(at)
    # the runs stay while other settings change
    at.selectbox(key="seq.family").set_value("transformer").run()
    no_exception(at)
    assert list(runs_table(at)["model"]) == ["CNN", "GRU"]
    # both comparison runs are in the session's run list (Run history page) too
    records = list(at.session_state["_runs.records"].values())
    assert [r.model for r in records] == ["CNN (comparison)", "GRU (comparison)"]
    assert all(r.page == "seq" and r.epochs == 1 and r.n_params > 0 and r.note == "" for r in records)


def test_step_then_save_and_export_offers_the_model_and_lists_the_run(app_test, downloads):  # noqa: F811
    at = app_test(PAGE, query={**SMALL, "family": "cnn"}).run()
    no_exception(at)
    assert any(c.value.startswith("Train first") for c in at.caption)
    button(at, "⏭ Step").click().run()
    no_exception(at)
    labels = {b.label for b in at.get("download_button")}
    assert {"⬇️ Model (.pt)", "⬇️ History (CSV)", "⬇️ PyTorch code (.py)"} <= labels
    # the downloaded bundle is this run's model: same predictions as the page's trainer
    b = load_bundle(downloads[next(n for n in downloads if n.endswith(".pt"))])
    assert b.kind == "token_cnn" and b.page == "seq" and b.training["epochs"] == 1
    tr = at.session_state["seq._trainer"]
    assert b.input.kind == "tokens" and b.input.alphabet == "dna" and b.label_names == list(tr.data.class_names)
    x = tr.data.x_test[:8]
    with torch.no_grad():
        assert torch.allclose(b.build_model().eval()(x), tr.outputs(x), atol=1e-5)
    code = next(v for n, v in downloads.items() if n.endswith(".py")).decode()
    compile(code, "train.py", "exec")
    # the run is in the session's run list
    df = run_history(at, app_test)
    assert len(df) == 1 and df["page"].iloc[0] == "Sequence models" and df["epochs"].iloc[0] == 1
    assert "family=cnn" in df["parameters"].iloc[0] and df["status"].iloc[0] == "training"
    # while playing, the panel (drawn outside the live fragment) asks for a pause instead of offering stale files
    button(at, "▶ Play").click().run()
    no_exception(at)
    assert any(c.value.startswith("💾 Pause training to save") for c in at.caption)
    assert "seq.dl_bundle" not in {b.key for b in at.get("download_button")}


def test_bad_link_parameters_fall_back_to_defaults_with_a_warning(app_test):
    at = app_test(PAGE, query={**SMALL, "family": "lstm9", "t_heads": "3"}).run()
    no_exception(at)
    warn = " ".join(w.value for w in at.warning)
    assert "family=lstm9" in warn and "t_heads=3" in warn
    assert at.selectbox(key="seq.family").value == "hybrid"


@pytest.mark.parametrize("dataset", ["dna_planted", "protein_solubility", "protein_score"])
def test_other_built_in_sets_run(app_test, dataset):
    at = app_test(PAGE, query={**SMALL, "dataset": dataset, "family": "cnn", "split": "cluster"}).run()
    no_exception(at)
    button(at, "⏭ Step").click().run()
    no_exception(at)
    assert metric(at, "Epoch") == "1"
    if dataset == "protein_score":
        assert "Validation Pearson r" in [m.label for m in at.metric]
