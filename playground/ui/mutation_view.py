"""The DNA page's '🔬 Explain a sequence' tab: a validation sequence or one the student types,
its saliency (a bar chart and a logo) and the full position × base mutation scan
(:mod:`playground.mutation`) in the model's output units, with a CSV of the scan."""
from __future__ import annotations

from typing import Callable

import streamlit as st

from playground.data.parsing import SequenceFileError
from playground.encoding import DNA, one_hot
from playground.interpret import saliency
from playground.mutation import ism, read_dna, scan_csv, units_label
from playground.plots.dna import figure_png, logo_figure, saliency_figure
from playground.plots.mutation import dna_scan_figure
from playground.ui import dna_view as V
from playground.ui.layout import show_error
from playground.ui.runs import png_config


def _typed_example(tr, dataset, state) -> None:
    """Fill the typed-sequence box with a validation sequence that carries a motif (to edit)."""
    val_idx = tr.data.meta["val_idx"]
    state.set("scan_seq", dataset.seqs[int(val_idx[V.next_with_motif(val_idx, dataset) - 1])])


def _typed_input(tr, dataset, state, model_input, L: int):
    """The typed sequence's (seq, one-hot (4, L)), or None (nothing typed, or an error shown)."""
    K = state.key
    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    c1.text_area(f"DNA sequence (A C G T, N = unknown; the model reads {L} bases: shorter ones are padded)",
                 key=K("scan_seq"), height=90, placeholder="ACGT… (a FASTA header line is fine)")
    c2.button("Start from a validation sequence", key="dna.scan_example", on_click=_typed_example,
              args=(tr, dataset, state),
              help="Copies a validation sequence (one with a planted motif, if any) into the box to edit.")
    if not str(state.get("scan_seq")).strip():
        st.info(f"Type or paste a DNA sequence of up to {L} bases to see what every single-base change does "
                "to the model's output.", icon="✏️")
        return None
    try:
        seq, notes = read_dna(state.get("scan_seq"), length=L)
    except SequenceFileError as e:
        show_error(e.message, e.hint)
        return None
    for n in notes:
        st.caption("ℹ️ " + n)
    return seq, one_hot([seq], DNA, L, n_value=float(getattr(model_input, "n_value", 0.0) or 0.0))[0]


def class_picker(state, names: list[str], label: str = "Explain the score of class", where=st) -> int:
    """The class (index) whose score a saliency or a mutation scan explains (setting ``explain_class``,
    reset to the first class when the model has fewer)."""
    if state.get("explain_class") >= len(names):
        state.set("explain_class", 0)
    where.selectbox(label, list(range(len(names))), key=state.key("explain_class"), format_func=lambda k: names[k])
    return int(state.get("explain_class"))


def scan_target_controls(state, task: str, class_names: list[str], label: str = "Explain the score of class"):
    """(target class or None, its name or None, units) of a mutation scan: the class picker for several
    classes and 'Scan in' logit or probability for classifiers (setting ``scan_units``)."""
    target, class_name = None, (class_names[1] if task == "binary" and class_names else None)
    c1, c2 = st.columns(2)
    if task == "multiclass":
        target = class_picker(state, class_names, label, c1)
        class_name = class_names[target]
    units = "output"
    if task in ("binary", "multiclass"):
        c2.radio("Scan in", ("output", "probability"), key=state.key("scan_units"), horizontal=True,
                 format_func={"output": "logit (the model's output)", "probability": "probability"}.get)
        units = state.get("scan_units")
    return target, class_name, units


def render_explain(tr, dataset, state, sequence_picker: Callable, model_input, playing: bool) -> None:
    K = state.key
    st.radio("Sequence", ("validation", "typed"), key=K("scan_source"), horizontal=True,
             format_func={"validation": "A validation sequence", "typed": "✏️ Type your own sequence"}.get)
    typed = state.get("scan_source") == "typed"
    if typed:
        got = _typed_input(tr, dataset, state, model_input, int(tr.data.x_val.shape[2]))
        if got is None:
            return
        (seq, x), sites, key_of, name, truth = got, [], got[0], "your sequence", ""
    else:
        i, j = sequence_picker(tr, "explain")
        seq, x = dataset.seqs[j], tr.data.x_val[i]
        sites = dataset.sites[j] if dataset.sites else []
        key_of, name = i, f"validation sequence {i + 1}"
        truth = f" · true label **{V.label_text(dataset, dataset.y[j])}**"
    target, class_name, units = scan_target_controls(state, tr.task, list(dataset.class_names))
    ptxt = V.prediction_text(tr.task, tr.predict(x[None])[0], dataset.class_names)
    st.markdown(f"Model says about {name}: {ptxt}{truth}")
    n = len(seq)
    sal = saliency(tr.model, x, target)[:, :n]
    delta = ism(tr.model, x, target, units, positions=n)[:n]
    label = units_label(tr.task, units, class_name)
    st.plotly_chart(saliency_figure(sal, seq, sites), key="dna.saliency", config=png_config("dna_saliency"))
    st.plotly_chart(dna_scan_figure(delta, seq, label, sites, title=f"In-silico mutagenesis of {name} ({label})"),
                    key="dna.ism", config=png_config("dna_ism"))
    st.toggle("Saliency as a logo (slower to draw)", key=K("sal_logo"))
    png = V.saliency_logo(state, ("saliency_logo", id(tr), tr.steps, key_of, target), lambda: figure_png(logo_figure(
        sal, "Saliency as a logo: letter height = gradient × input", "grad × input", sites=sites, width=13,
        height=2.6)), state.get("sal_logo"), playing)
    if png is not None:
        st.image(png)
    st.download_button("⬇️ Mutation scan (CSV)", scan_csv(seq, delta, label.replace(",", " ")),
                       file_name="dna_mutation_scan.csv", mime="text/csv", key="dna.scan_csv", on_click="ignore")
    st.caption("**Saliency**: the gradient of the output with respect to each input number, times the input "
               "(only the base that is there counts). **In-silico mutagenesis**: change each base to each other base "
               f"({int((x[:, :n] <= 0.5).sum())} variants, run in batches) and measure how much the output moves, in **{label}**: red raises "
               "it, blue lowers it." + (" The planted motif's true position is boxed." if sites else ""))


__all__ = ["render_explain"]
