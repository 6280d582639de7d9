"""AppTest tests of the DNA & CNNs page."""
from __future__ import annotations

import urllib.error

import pytest

from playground.setups.dna import TABS   # the page's tabs, in order (the tests open them by index)
from tests.conftest import plotly_specs

PAGE = "pages/2_DNA_CNN.py"


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def no_exceptions(at):
    assert not at.exception, [e.message for e in at.exception]


def open_tab(at, label: str):
    at.session_state["dna.tab"] = label
    return at.run()


def step(at, n: int = 1):
    for _ in range(n):
        at.button(key="dna.step").click().run()
    return at


def test_default_page_shows_the_one_hot_matrix_and_url_state(app_test):
    at = app_test(PAGE).run()
    no_exceptions(at)
    m = metrics(at)
    assert m["Epoch"] == "0" and "Validation accuracy" in m and "Validation AUROC" in m and "Motif recovered" in m
    onehot = next(s for s in plotly_specs(at) if "One-hot" in s["layout"]["title"]["text"])
    z = onehot["data"][0]["z"]
    assert len(z) == 50 and all(len(r) == 4 and sum(r) == 1 for r in z)   # one 1 per position
    assert onehot["data"][0]["x"] == ["A", "C", "G", "T"]
    qp = dict(at.query_params)
    assert qp["dataset"] == ["planted"] or qp["dataset"] == "planted"
    assert at.get("image"), "the planted motif's logo"


def test_step_trains_and_filters_tab_shows_logos_jaspar_hits_and_exports(app_test):
    at = app_test(PAGE, query={"lr": "0.01", "seed": "1", "n_logos": "4"}).run()
    step(at, 4)
    no_exceptions(at)
    m = metrics(at)
    assert m["Epoch"] == "4" and float(m["Validation accuracy"]) > 0.8
    at = open_tab(at, TABS[3])
    no_exceptions(at)
    assert at.get("image"), "the filter logos"
    m = metrics(at)
    assert float(m["Motif recovered: CTCF (MA0139.1)"]) > 0.8
    table = at.dataframe[0].value
    assert table.iloc[0]["hit 1"].startswith("CTCF")       # the best-ranked filter is CTCF in JASPAR
    labels = [b.label for b in at.get("download_button")]
    assert any("MEME" in label for label in labels) and any("JASPAR" in label for label in labels)
    # raw weights instead of activation PWMs
    at.radio(key="dna.logo_kind").set_value("weights").run()
    no_exceptions(at)
    assert at.get("image")
    # save & export: the model bundle, history, code, filters; "Keep" puts the model on the Predict page
    at = open_tab(at, TABS[6])
    labels = [b.label for b in at.get("download_button")]
    assert {"⬇️ Model (.pt)", "⬇️ PyTorch code (.py)", "⬇️ Filters (MEME)"} <= set(labels)
    at.button(key="dna.keep").click().run()
    no_exceptions(at)
    assert any("Predict" in s.value for s in at.success)


def test_training_tab_roc_confusion_and_explain_tab_marks_the_planted_site(app_test):
    at = app_test(PAGE, query={"lr": "0.01"}).run()
    step(at, 2)
    at = open_tab(at, TABS[2])
    titles = [s["layout"]["title"]["text"] for s in plotly_specs(at)]
    assert "Loss" in titles and "Confusion matrix" in titles and "ROC curve" in titles
    at = open_tab(at, TABS[5])
    no_exceptions(at)
    # a negative first, then "Next with a motif" jumps to a sequence that carries one
    at.number_input(key="dna.seq").set_value(1).run()
    at.button(key="dna.next_motif.explain").click().run()
    no_exceptions(at)
    assert any("planted **CTCF** at" in md.value for md in at.markdown)
    specs = plotly_specs(at)
    ism = next(s for s in specs if "mutagenesis" in s["layout"]["title"]["text"])
    sal = next(s for s in specs if "Saliency" in s["layout"]["title"]["text"])
    assert len(ism["data"][0]["z"]) == 4 and len(ism["data"][0]["z"][0]) == 50
    box = ism["layout"]["shapes"][0]
    assert box["x1"] - box["x0"] == 19          # CTCF is 19 bp: the true site is boxed
    assert any(s.get("type") == "rect" for s in sal["layout"].get("shapes", []))
    assert at.get("image"), "the saliency logo"


CSV = "id,sequence,label\n" + "".join(
    f"s{i},{'ACGTTGCA' * 3 if i % 2 else 'TTTTGGGGCCCCAAAATTTTGGGG'}{'ACGT'[i % 4] * 2},{i % 2}\n" for i in range(40))


def test_upload_csv_trains_and_bad_upload_shows_line_and_character(app_test):
    at = app_test(PAGE, query={"dataset": "upload", "lr": "0.03", "model": "course"}).run()
    no_exceptions(at)
    assert any("Upload a CSV" in i.value for i in at.info)
    at.file_uploader(key="dna._upload").set_value(("seqs.csv", CSV.encode(), "text/csv")).run()
    no_exceptions(at)
    assert not at.error
    assert any("seqs.csv" in md.value for md in at.markdown)
    step(at, 2)
    assert metrics(at)["Epoch"] == "2"
    # a broken file: a friendly error naming the line and the character; settings are kept
    bad = CSV.replace("s5,ACGTTGCA", "s5,ACGXTGCA")
    at.file_uploader(key="dna._upload").set_value(("bad.csv", bad.encode(), "text/csv")).run()
    no_exceptions(at)
    msg = at.error[0].value
    assert "Line 7, position 4" in msg and "'X'" in msg and "replace it with N" in msg
    assert at.session_state["dna.lr"] == 0.03 and at.session_state["dna.model"] == "course"
    qp = dict(at.query_params)
    assert "course" in str(qp.get("model")) and "0.03" in str(qp.get("lr"))


def test_fasta_upload_with_labels_in_headers(app_test):
    fasta = "".join(f">r{i} label={i % 2}\n{('GATAAGGATA' if i % 2 else 'CCCCTTTTCC') + 'ACGT'[i % 4] * 3}\n"
                    for i in range(30))
    at = app_test(PAGE, query={"dataset": "upload", "model": "logreg"}).run()
    at.file_uploader(key="dna._upload").set_value(("x.fasta", fasta.encode(), "text/plain")).run()
    no_exceptions(at)
    assert not at.error
    at = open_tab(at, TABS[3])
    assert any("no convolution filters" in i.value for i in at.info)


def test_kmer_regression_shows_pearson_and_parity(app_test):
    at = app_test(PAGE, query={"dataset": "kmer8", "model": "course", "batch": "256", "tab": TABS[2]}).run()
    no_exceptions(at)
    m = metrics(at)
    assert "Validation Pearson r" in m and "Motif recovered" not in m
    step(at, 1)
    assert float(metrics(at)["Validation Pearson r"]) > 0.5
    titles = [s["layout"]["title"]["text"] for s in plotly_specs(at)]
    assert any(t.startswith("Predicted vs true") for t in titles)


def test_impossible_model_is_a_friendly_error(app_test):
    q = {"model": "custom", "conv_layers": "4", "k1": "25", "k2": "25", "k3": "25", "k4": "25", "length": "50",
         "pool": "max", "pool_size": "4"}
    at = app_test(PAGE, query=q).run()
    no_exceptions(at)
    assert at.error and "cannot be built" in at.error[0].value
    assert at.session_state["dna.k1"] == 25


def test_genomic_benchmarks_offline_and_from_cache(app_test, tmp_path, monkeypatch):
    monkeypatch.setenv("GENOMIC_BENCHMARKS_CACHE", str(tmp_path))
    import genomic_benchmarks.loc2seq as loc2seq

    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(loc2seq, "download_dataset", offline)
    at = app_test(PAGE, query={"dataset": "genomic", "gb_name": "demo_human_or_worm"}).run()
    no_exceptions(at)
    assert any("not on this machine yet" in i.value for i in at.info)
    at.button(key="dna._gb_download").click().run()
    no_exceptions(at)
    assert at.error and "offline" in at.error[0].value
    # pre-seed the cache in the package's layout: the page trains on it
    for split in ("train", "test"):
        for cls, base in (("human", "GC"), ("worm", "AT")):
            d = tmp_path / "demo_human_or_worm" / split / cls
            d.mkdir(parents=True)
            for i in range(12):
                (d / f"{i}.txt").write_text((base * 15)[i:] + "ACGT"[i % 4] * (i + 1))
    at.run()
    no_exceptions(at)
    assert not at.error
    step(at, 1)
    assert metrics(at)["Epoch"] == "1"


@pytest.mark.parametrize("dataset", ["multiclass", "grammar"])
def test_other_generated_sets_run(app_test, dataset):
    at = app_test(PAGE, query={"dataset": dataset, "n": "500", "sal_logo": "0"}).run()
    no_exceptions(at)
    step(at, 1)
    at = open_tab(at, TABS[5])
    no_exceptions(at)
    if dataset == "multiclass":
        assert at.selectbox(key="dna.explain_class").options


def test_a_251_bp_upload_stays_251_bp_trains_on_validation_and_scores_test_once(app_test):
    """Issue #12: a real-length upload keeps its length; the curves read validation; the test set is
    scored only when asked, labelled as held out, with its chance level, and every look is counted."""
    from playground.data import dna

    csv = dna.planted_motif("GATA1", n=600, length=251, seed=3).to_frame()[["sequence", "label"]].to_csv(index=False)
    at = app_test(PAGE, query={"dataset": "upload", "model": "course", "lr": "0.003"}).run()
    at.file_uploader(key="dna._upload").set_value(("real.csv", csv.encode(), "text/csv")).run()
    no_exceptions(at)
    body = " ".join(m.value for m in at.markdown)
    assert "600 sequences × 251 bp" in body and "s per epoch" in body
    at = open_tab(at, TABS[2])
    captions = " ".join(c.value for c in at.caption)
    assert "Split: 80 % train · 10 % validation · 10 % test" in captions
    assert "the test set is never used while training" in captions.lower()
    step(at, 2)
    no_exceptions(at)
    m = metrics(at)
    assert m["Epoch"] == "2" and "Validation accuracy" in m and "Test accuracy" not in m
    score = next(b for b in at.button if b.label.startswith("Score the 60 test sequences"))
    at = score.click().run()
    no_exceptions(at)
    body = " ".join(m.value for m in at.markdown)
    assert "Test (held out, scored once)" in body and "accuracy **" in body and "chance 0.5" in body
    step(at, 1)
    again = next(b for b in at.button if b.label.startswith("Score again"))
    at = again.click().run()
    assert "Looked at 2 times" in " ".join(c.value for c in at.caption)


def test_schedule_and_early_stopping_controls_reach_the_trainer(app_test):
    at = app_test(PAGE, query={"schedule": "step", "early_stop": "2", "n": "500"}).run()
    no_exceptions(at)
    assert at.selectbox(key="dna.schedule").value == "step"
    step(at, 1)
    no_exceptions(at)
    tr = at.session_state["dna._trainer"]
    assert tr.config.schedule == "step" and tr.config.early_stopping == 2 and tr.epoch == 1
    assert "Validation loss" in metrics(at)
