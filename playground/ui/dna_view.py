"""The DNA page's session caches: its data set, and the slow pictures of a training run (filter
PWMs and motif recovery, filter logos, the saliency logo), recomputed when the weights change
but, while playing, only every second or so (logomaker takes about 0.15 s a logo).

The page (pages/2_DNA_CNN.py) draws; these functions decide when to recompute. Session slots
are the page's declared private ones (``playground.setups.dna.PRIVATE``, via ``state.slot``).
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import streamlit as st

from playground.data import dna
from playground.data.dna import DNADataset
from playground.data.parsing import LENGTH_POLICIES
from playground import motif_chance as MC
from playground.interpret import activation_pwms, information_matrix, jaspar_table, motif_recovery
from playground.plots.dna import figure_png, filter_logos_figure, logo_figure
from playground.setups import dna as setup
from playground.train import Trainer
from playground.ui.layout import show_error
from playground.ui.state import PageState

INTERP_REFRESH_S = 1.0    # while playing, filter PWMs + "motif recovered" are recomputed at most this often
LOGO_REFRESH_S = 1.0      # ... and logos redrawn at most this often, and never more than a third of the time


def throttled(slot: str, want, build: Callable[[], object], *, playing: bool,
              reuse: Callable[[dict], bool] = lambda entry: False) -> dict:
    """``st.session_state[slot]``: the entry built for ``want``, rebuilt when ``want`` changes;
    while playing, an older entry is kept as long as ``reuse(entry)`` says it is recent enough.
    An entry is ``{"want", "value", "done" (perf_counter when built), "cost" (seconds it took)}``."""
    entry = st.session_state.get(slot)
    if entry is not None and (entry["want"] == want or (playing and reuse(entry))):
        return entry
    t0 = time.perf_counter()
    value = build()
    done = time.perf_counter()
    entry = {"want": want, "value": value, "done": done, "cost": done - t0}
    st.session_state[slot] = entry
    return entry


def dataset(state: PageState, values: dict, upload) -> DNADataset:
    """The data set for these values, rebuilt only when what it depends on changed."""
    key = setup.data_key(values, upload)
    cached = st.session_state.get(state.slot("data"))
    if cached is not None and cached[0] == key:
        return cached[1]
    ds = setup.make_dataset(values, upload)
    st.session_state[state.slot("data")] = (key, ds)
    return ds


def data_missing(state: PageState, kind: str, upload) -> bool:
    """Draw what the page shows instead of a run when its data is not here yet (the upload
    prompt with an example file, or a Genomic Benchmarks set to download). True: stop the page."""
    ss = st.session_state
    if kind == "upload" and upload is None:
        st.info("⬆️ Upload a CSV/TSV (a sequence column and a label column) or a FASTA file (labels in the headers, "
                "e.g. `>seq1 label=1`) in the sidebar. Lowercase is fine; N means an unknown base.", icon="📄")
        example = dna.planted_motif("CTCF", n=400, length=50, seed=0).to_frame()[["id", "sequence", "label"]]
        st.download_button("⬇️ Example CSV (400 sequences, planted CTCF)", example.to_csv(index=False),
                           file_name="planted_ctcf.csv", mime="text/csv")
        return True
    name = state.get("gb_name")
    if kind != "genomic" or dna.genomic_benchmark_available(name):
        return False
    st.info(f"**{dna.GENOMIC_BENCHMARKS[name]}** is not on this machine yet. It comes from the Genomic Benchmarks "
            "collection (real human sequences) and needs the internet once.", icon="🌐")
    if st.button("⬇️ Download it now", key=state.slot("gb_download")):
        with st.spinner("Downloading …"):
            try:
                dna.download_genomic_benchmark(name)
                st.rerun()
            except ValueError as e:
                ss[state.slot("gb_error")] = str(e)
    if ss.get(state.slot("gb_error")):
        show_error(ss[state.slot("gb_error")], "Pick a planted-motif data set to keep working offline.")
    return True


def upload_controls(state: PageState) -> None:
    """The sidebar's upload widgets: the file, and how mixed lengths, RNA and labels are read."""
    st.file_uploader("CSV / TSV / FASTA", type=["csv", "tsv", "txt", "fa", "fasta", "fna", "gz"],
                     key=state.slot("upload"), help="CSV/TSV: a sequence column and a label column. FASTA: the "
                                                    "label in the header, e.g. '>seq1 label=1'.")
    st.radio("Mixed lengths", LENGTH_POLICIES, key=state.key("length_policy"), horizontal=True,
             format_func={"pad": "Pad to the longest with N", "truncate": f"Cut at {setup.MAX_UPLOAD_LENGTH:,} bp",
                          "reject": "Reject"}.get)
    st.toggle("Map U → T (RNA)", key=state.key("map_u"))
    st.radio("Labels are", ("auto", "classification", "regression"), key=state.key("label_kind"), horizontal=True,
             format_func={"auto": "Auto", "classification": "Classes", "regression": "Numbers"}.get)


def gb_size_control(state: PageState) -> None:
    """The Genomic Benchmarks size control: up to the whole set, with its published sizes."""
    sizes = dna.genomic_benchmark_sizes(state.get("gb_name"))
    total = sum(sizes.values()) if sizes else None

    def fmt(n: int) -> str:
        return (f"all ({total:,})" if total else "all") if n == 0 else f"{n:,}"

    st.select_slider("Sequences (the published split, in proportion)", setup.GB_N_CHOICES, key=state.key("gb_n"),
                     format_func=fmt)
    if sizes:
        st.caption(f"Published split: {sizes['train']:,} train / {sizes['test']:,} test sequences.")


def epoch_estimate(state: PageState, run, tr: Trainer) -> str:
    """'≈ 5 s per epoch on this machine' for real data sets (cached per run)."""
    slot = state.slot("estimate")
    got = st.session_state.get(slot)
    if not got or got[0] != run.signature:
        n_train, n_val, _ = tr.data.sizes()
        try:
            sec = dna.estimate_epoch_seconds(tr.model, n_train, int(tr.data.x_train.shape[-1]),
                                             tr.batch_size, n_val=n_val)
        except Exception:  # noqa: BLE001 - an estimate is a courtesy
            sec = float("nan")
        got = (run.signature, sec)
        st.session_state[slot] = got
    sec = got[1]
    return f"≈ {sec:.1f} s per epoch on this machine" if np.isfinite(sec) and sec > 0 else ""


def baseline_text(state: PageState, ds: DNADataset) -> str | None:
    """The published baseline of a Genomic Benchmarks set, to read beside the test score."""
    if state.get("dataset") != "genomic":
        return None
    b = dna.genomic_benchmark_baseline(state.get("gb_name"))
    if not b:
        return None
    full = dna.genomic_benchmark_sizes(state.get("gb_name"))
    n = f" on the full {full['train']:,}-sequence training split" if full else ""
    return (f"Published baseline ({b['source']}): {b['metric']} {b['pytorch_cnn']:.1%} (PyTorch CNN), "
            f"{b['tensorflow_cnn']:.1%} (TensorFlow CNN), trained{n}.")


def interpretation(state: PageState, tr: Trainer, ds: DNADataset, playing: bool) -> dict:
    """Filter PWMs + motif recovery for the trainer's current weights: recomputed when the
    weights changed, but while playing at most every INTERP_REFRESH_S seconds. Each new epoch's
    recovery is added to the per-epoch curve."""
    def build() -> dict:
        x = tr.data.x_train[:4000]                                  # what the filters learned from
        pwms = activation_pwms(tr.model, x)
        rec = motif_recovery(pwms, ds.motifs)
        # each score beside the same statistic for untrained networks of this shape (cached per shape)
        chance = MC.recovery_chance(tr.model, x, rec, ds.motifs) if rec else []
        hist = st.session_state.setdefault(state.slot("recovery"), [])
        if rec and (not hist or hist[-1]["epoch"] != tr.epoch):
            hist.append({"epoch": tr.epoch, **{r["motif"]: r["score"] for r in rec}})
        return {"key": key, "id": id(tr), "epoch": tr.epoch, "pwms": pwms, "recovery": rec, "chance": chance,
                "x": x, "table": {}}

    key = (id(tr), tr.steps)
    entry = throttled(state.slot("interp"), key, build, playing=playing,
                      reuse=lambda e: e["value"]["id"] == id(tr) and time.perf_counter() - e["done"] < INTERP_REFRESH_S)
    return entry["value"]


CHANCE_HELP = ("Best column-wise Pearson between a filter's PWM and the planted motif (1 = identical), over all "
               "offsets and both strands. Beside it, its chance level: the same best-of-all-filters score for "
               f"{MC.N_DRAWS} untrained networks of this shape on these data (the band is their 95th percentile, "
               "p the share at least as good). It reads 'recovered' only when p < 0.01 and the score is above the band.")


def recovery_metric(label: str, row: dict, chance, where=st) -> None:
    """One 'Motif recovered' tile: the score, and beside it 'recovered' or 'at chance' with its
    p-value and chance band (``playground.motif_chance``)."""
    if row.get("filter") is None:
        where.metric(label, "–", help=CHANCE_HELP)
        return
    if chance is None:
        where.metric(label, f"{row['score']:.2f}", help=CHANCE_HELP)
        return
    ok = chance.above_chance
    where.metric(label, f"{row['score']:.2f}", delta=f"{chance.verdict} · {chance.p_text} · chance ≤ {chance.band:.2f}",
                 delta_color="normal" if ok else "off", delta_arrow="up" if ok else "off", help=CHANCE_HELP)


def chance_bands(got: dict) -> dict:
    """{motif label: chance band} for the recovery curve."""
    return {r["motif"]: c.band for r, c in zip(got["recovery"], got.get("chance") or [])}


def jaspar_rows(tr: Trainer, got: dict, order: list[int]) -> list[dict]:
    """The JASPAR table of the shown filters, each top hit beside the chance level of a random
    filter's best JASPAR hit (same shape, same data)."""
    rows = jaspar_table(got["pwms"], top=3, filters=order)
    null = MC.jaspar_null(MC.filter_null(tr.model, got["x"]))
    return MC.with_jaspar_chance(rows, null)


def filter_logos(state: PageState, got: dict, order: list[int], kind: str, playing: bool) -> tuple[bytes, int]:
    """PNG of the chosen filters' logos and the epoch it shows. While playing the picture is
    redrawn only after a new epoch, at most every LOGO_REFRESH_S seconds and at most a third of
    the time; the last one is shown meanwhile."""
    def build():
        with st.spinner(f"Drawing {len(order)} logos …"):
            return figure_png(filter_logos_figure(got["pwms"], order, kind)), got["epoch"]

    def reuse(e: dict) -> bool:
        (old_id, _), old_kind, _ = e["want"]
        return old_id == got["id"] and old_kind == kind and (
            e["value"][1] == got["epoch"]
            or time.perf_counter() - e["done"] < max(LOGO_REFRESH_S, min(2.0 * e["cost"], 3.0)))

    want = (got["key"], kind, tuple(order))
    return throttled(state.slot("logos"), want, build, playing=playing, reuse=reuse)["value"]


def saliency_logo(state: PageState, key: tuple, build: Callable[[], bytes], show: bool, playing: bool) -> bytes | None:
    """The saliency logo's PNG for ``key`` (trainer, weights, sequence, class), drawn only when
    paused; while playing the last one for the same key is shown, or none."""
    cache = st.session_state.setdefault(state.slot("sal_logo"), {})
    if not show:
        cache.clear()
    elif key not in cache and not playing:
        cache.clear()
        cache[key] = build()
    return cache.get(key)


@st.cache_data(max_entries=64, show_spinner=False)
def motif_logo_png(label: str, consensus: str, pwm: list) -> bytes:
    fig = logo_figure(information_matrix(np.array(pwm)), f"Planted motif: {label} · consensus {consensus}",
                      ylim=(0, 2), width=7, height=1.8)
    return figure_png(fig)


def next_with_motif(test_idx, ds: DNADataset, after: int = 0) -> int:
    """1-based position of the next sequence of ``test_idx`` (the shown part: validation) after
    ``after`` that carries a planted site."""
    if ds.sites:
        for k in list(range(after, len(test_idx))) + list(range(0, after)):
            if ds.sites[int(test_idx[k])]:
                return k + 1
    return 1


def label_text(ds: DNADataset, y) -> str:
    return f"{float(y):.3f}" if ds.task == "regression" else ds.class_names[int(y)]


def prediction_text(task: str, pred, class_names) -> str:
    """What the model says about one sequence (markdown)."""
    if task == "binary":
        return f"P({class_names[1]}) = **{float(pred):.3f}**"
    if task == "multiclass":
        return "predicted **" + class_names[int(np.argmax(pred))] + f"** ({float(np.max(pred)):.2f})"
    return f"predicted **{float(pred):.3f}**"
