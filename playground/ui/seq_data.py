"""The Sequence models page's data block: the upload controls and the cached data set.

The data itself is made by ``playground.setups.sequence.make_data``; this module keeps the
uploaded file for the session (private slot ``seq._upload``) and caches the data set per
``data_inputs`` (the data settings, the file's name and content hash)."""
from __future__ import annotations

import streamlit as st

from playground.setups import sequence as S
from playground.ui.state import PageState

UPLOAD_TYPES = ["csv", "tsv", "txt", "fa", "fasta", "faa", "fna", "gz"]
UPLOAD_HELP = ("CSV/TSV: a `sequence` column and a `label` column (classes or numbers), or for per-residue labels "
               "an `ss` column with one letter per residue (e.g. HHHEEECCC; '-' = ignore) and an optional `mask` "
               "column of 1/0. FASTA: `>name label=1` headers.")
UPLOAD_EXAMPLE = ("⬆️ Upload a CSV, TSV or FASTA file of sequences with labels (left), or pick a built-in data set. "
                  "Example CSV:\n\n```\nsequence,label\nMKTAYIAKQRQISFVKSHFSRQ,1\nMSDNELLKEVLEAG,0\n```")


def upload_controls(state: PageState) -> None:
    """The file uploader (the file is kept for the session: 'Forget' drops it) and how the file is read."""
    ss = st.session_state
    K = state.key
    st.file_uploader("CSV / TSV / FASTA", type=UPLOAD_TYPES, key=state.slot("uploader"), help=UPLOAD_HELP)
    up = ss.get(state.slot("uploader"))
    if up is not None:
        ss[state.slot("upload")] = (up.name, up.getvalue())
    elif ss.get(state.slot("upload")) is not None:
        f1, f2 = st.columns([3, 1])
        f1.caption(f"Using **{ss[state.slot('upload')][0]}** (uploaded earlier in this session).")
        f2.button("Forget", key=state.slot("forget"), on_click=lambda: ss.pop(state.slot("upload"), None))
    u1, u2 = st.columns(2)
    u1.radio("Alphabet", ("protein", "dna"), key=K("up_alphabet"), horizontal=True,
             format_func={"protein": "Protein", "dna": "DNA"}.get)
    u2.toggle("Per-residue labels", key=K("up_per_residue"))
    u1.toggle("Map B Z U O → X" if state.get("up_alphabet") == "protein" else "Map U → T", key=K("up_map_rare"),
              help="Rare or ambiguous letters are refused unless this is on.")
    u2.toggle("Truncate long sequences", key=K("up_truncate"))
    st.number_input("Length limit", 10, 5000, step=10, key=K("up_max_len"),
                    help="Longer sequences are an error, or are cut to this length with 'Truncate' on.")


def current_upload(state: PageState):
    """(file name, bytes) of the session's upload when the page uses it, else None."""
    return st.session_state.get(state.slot("upload")) if state.get("dataset") == "upload" else None


@st.cache_data(max_entries=8, show_spinner="Making the data set …")
def _make(inputs: tuple, _values: dict, _upload) -> S.SeqData:   # cached per ``inputs`` only
    return S.make_data(_values, _upload)


def load_data(state: PageState) -> S.SeqData:
    """The page's data set for its current settings (cached; raises like ``make_data``)."""
    values, upload = state.values(), current_upload(state)
    return _make(S.data_inputs(values, upload), values, upload)
