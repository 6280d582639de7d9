"""AppTest: the Language models page (pages/7_Language_Models.py): the corpus, tokens and model
controls, live training (Step), the reference lines, every view, the n-gram's count table, the
pretrain -> fine-tune tab and the bundle download (which loads back safely)."""
import pytest

from playground.bundle import load_bundle
from tests.conftest import plotly_specs
from tests.test_page_predict import downloads  # noqa: F401 - fixture: files handed to st.download_button

PAGE = "pages/7_Language_Models.py"
SMALL = {"n": "200", "length": "30", "seed": "1", "d_model": "32", "ff": "64"}


def no_exception(at):
    assert not at.exception, [e.message for e in at.exception]


def titles(at) -> list[str]:
    return [((s.get("layout") or {}).get("title") or {}).get("text", "") for s in plotly_specs(at)]


def spec_titled(at, title: str) -> dict:
    return next(s for s in plotly_specs(at) if ((s.get("layout") or {}).get("title") or {}).get("text") == title)


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def button(at, label: str):
    return next(b for b in at.button if b.label.startswith(label))


def widget_settings(at) -> set[str]:
    """The page's settings that have a widget now (keys 'lm.<name>' that are schema settings); a
    keyed widget that is neither a setting nor a library or page button fails the test."""
    from playground.setups import lm as S
    from playground.ui.state import LIBRARY_WIDGETS

    def walk(node):
        for child in getattr(node, "children", {}).values():
            yield child
            yield from walk(child)

    names = {el.key[3:] for el in walk(at._tree) if str(getattr(el, "key", None) or "").startswith("lm.")
             and type(el).__name__ != "UnknownElement"}
    stray = names - set(S.SCHEMA.names) - set(LIBRARY_WIDGETS) - {"ft_take", "ft_sweep"}
    assert not stray, f"widgets without a setting: {stray}"
    return names & set(S.SCHEMA.names)


def test_masked_lm_trains_live_with_reference_lines_views_and_a_safe_bundle(app_test, downloads):  # noqa: F811
    at = app_test(PAGE, query=SMALL).run()
    no_exception(at)
    assert at.selectbox(key="lm.corpus").value == "dna" and at.selectbox(key="lm.model").value == "masked"
    caps = " ".join(c.value for c in at.caption)
    assert "Vocabulary: 4 tokens" in caps and "uniform guess: **2.00 bits**" in caps
    assert "160 training and 40 validation sequences" in caps
    assert metric(at, "Epoch") == "0"
    assert {"corpus", "n", "length", "motif", "tokens", "k", "model", "d_model", "heads", "layers", "mask_rate",
            "mask_pct", "random_pct", "lr", "batch", "early_stop", "blanks", "temperature", "top_k", "ft_n"} <= \
        widget_settings(at)
    button(at, "⏭ Step").click().run()
    no_exception(at)
    assert metric(at, "Epoch") == "1"
    bits = float(metric(at, "Bits / token"))
    assert 0.5 < bits < 3.5 and float(metric(at, "Perplexity")) == pytest.approx(2 ** bits, rel=0.01)
    assert at.query_params["model"] == "masked" and at.query_params["n"] == "200"
    # the curves: bits per token with the uniform baseline (2 bits) and the best n-gram as dashed lines
    fig = spec_titled(at, "Bits per token (cross-entropy / ln 2)")
    lines = {round(s["y0"], 3) for s in fig["layout"]["shapes"]}
    assert 2.0 in lines and len(lines) == 2
    assert any(a["text"].startswith("best n-gram (n=") for a in fig["layout"]["annotations"])
    assert "Validation perplexity (2^bits)" in titles(at)
    # every view renders
    t = titles(at)
    for title in ("Surprise: −log₂ P(token) along the sequence", "Attention: every layer and head",
                  "Token embeddings (PCA)"):
        assert title in t, title
    # pick blanks by clicking tokens: one bar chart per blank, the hidden token outlined
    at.pills(key="lm.blanks").set_value([3, 7]).run()
    no_exception(at)
    assert at.query_params["blanks"] == "3,7"
    fill = next(s for s in plotly_specs(at) if any(a.get("text", "").startswith("blank ")
                                                   for a in s["layout"].get("annotations", [])))
    heads = [a["text"] for a in fill["layout"]["annotations"] if a["text"].startswith("blank ")]
    assert len(heads) == 2 and heads[0].endswith("3") and heads[1].endswith("7")
    assert all(abs(sum(d["x"]) - 1.0) < 0.5 for d in fill["data"])   # top guesses carry most of the probability
    # continue the sequence: a sample of the right length, only DNA letters
    code = next(c.value for c in at.code if len(c.value) > 30)
    assert set(code) <= set("ACGT") and len(code) >= 40
    # the bundle: an LM with its tokenizer, loaded back through the safe loader
    name = next(n for n in downloads if n.endswith(".pt"))
    b = load_bundle(downloads[name])
    assert b.kind == "lm" and b.task == "lm_masked" and b.input.kind == "lm_tokens"
    assert b.input.tokenizer == {"alphabet": "dna", "kind": "char", "k": 1}
    b.build_model()
    # the PyTorch code: the same model, tokens and BERT masking, as a standalone script
    src = downloads["train_lm.py"].decode()
    compile(src, "train_lm.py", "exec")
    assert "def mask_tokens" in src and "MASKING = dict(rate=0.15, mask_frac=0.8, random_frac=0.1" in src


def test_ngram_count_table_lecture_example_and_kmer_tokens(app_test):
    at = app_test(PAGE, query={**SMALL, "model": "ngram", "order": "3", "smoothing": "add_k", "add_k": "0",
                               "context": "AC"}).run()
    no_exception(at)
    md = " ".join(m.value for m in at.markdown)
    assert "**P(" in md and "| A C) = " in md and " / " in md          # written out as the lecture writes it
    assert "P(books | students opened their) = 400 / 1,000 = 0.4" in md
    assert "Order n" in [m.label for m in at.metric]
    shown = widget_settings(at)
    assert {"order", "smoothing", "add_k", "context"} <= shown and not shown & {"d_model", "mask_rate", "lr"}
    assert "P(next token | A C)" in titles(at)
    # overlapping 3-mers: 64 tokens; the n-gram reads k-mers
    at.selectbox(key="lm.tokens").set_value("kmer_overlap").run()
    no_exception(at)
    assert any("Vocabulary: 64 tokens" in c.value for c in at.caption)
    # a masked split that adds up to more than 100 % is a friendly error
    at2 = app_test(PAGE, query={**SMALL, "mask_pct": "80", "random_pct": "30"}).run()
    no_exception(at2)
    assert any("more than 100 %" in e.value for e in at2.error)


def test_pretrain_then_finetune_against_scratch_on_the_same_split(app_test):
    at = app_test(PAGE, query={**SMALL, "ft_n": "50", "ft_epochs": "2"}).run()
    no_exception(at)
    button(at, "⏭ Step").click().run()
    button(at, "🎯 Fine-tune from the language model").click().run()
    no_exception(at)
    steps = [b for b in at.button if b.label == "⏭ Step"]
    assert len(steps) == 2                       # the language model's and the fine-tune pair's
    steps[1].click().run()
    no_exception(at)
    fig = spec_titled(at, "Fine-tuning: validation accuracy per epoch")
    names = [d["name"] for d in fig["data"]]
    assert names == ["pretrained + new head", "from scratch"]
    assert all(len(d["x"]) == 2 for d in fig["data"])           # epoch 0 and 1, both runs
    live = at.session_state["_runs.live"]
    assert {"lm_ft.pretrained", "lm_ft.scratch"} <= set(live)   # on the Predict page's list
    assert any("50** of the" in c.value for c in at.caption)
    # the second (last) epoch: both runs are over, so each held-out test set is scored once, by itself
    [b for b in at.button if b.label == "⏭ Step"][1].click().run()
    no_exception(at)
    scored = [c.value for c in at.caption if "never used in training, scored at epoch 2" in c.value]
    assert len(scored) == 2
    # both fine-tuned classifiers are on the Predict page (the bare language model is not) and predict there
    pr = app_test("pages/5_Predict.py")
    for k in ("_runs.records", "_runs.live", "_runs.models"):
        if k in at.session_state:
            pr.session_state[k] = at.session_state[k]
    pr.run()
    no_exception(pr)
    options = pr.selectbox[0].options
    assert [o.split(": ", 1)[1].split(" ·")[0] for o in options] == ["LM classifier (pretrained + new head)",
                                                                     "LM classifier (from scratch)"]
    next(b for b in pr.button if "Example" in b.label).click().run()
    next(b for b in pr.button if b.label == "🔮 Predict").click().run()
    no_exception(pr)
    table = pr.dataframe[0].value
    assert len(table) == 12 and {"P(no motif)", "P(motif)"} <= set(table.columns)
