"""The Sequence models page's data block: the upload controls and the cached data set.

The data itself is made by ``playground.setups.sequence.make_data``; this module keeps the
uploaded file for the session (private slot ``seq._upload``) and caches the data set per
``data_inputs`` (the data settings, the file's name and content hash) and the reading options.

How a real file is read (``playground.data.protein_files``) is picked under the uploader and kept in
the page's private slots (:data:`READING_SLOTS`), not in the link (a file is not in the link either):
a table's label column (``seq._label_col``), a NetSurfP / TAPE table's target (``seq._ss_target``)
and mask columns (``seq._ss_masks``), and for a FASTA an optional second file with the labels
(uploader ``seq._labels_uploader``, kept in ``seq._labels_upload``, dropped by ``seq._labels_forget``).
:func:`upload_reading` turns them into the keywords of ``protein.load_protein_file``."""
from __future__ import annotations

import hashlib

import streamlit as st

from playground.data import protein_files as PF
from playground.data.parsing import SequenceFileError
from playground.setups import sequence as S
from playground.ui.state import PageState

UPLOAD_TYPES = ["csv", "tsv", "txt", "fa", "fasta", "faa", "fna", "gz"]
UPLOAD_HELP = ("CSV/TSV: a `sequence` column and a label column (`label`, `solubility`, `score` … or pick it below; "
               "classes or numbers), or for per-residue labels an `ss` column with one letter per residue (e.g. "
               "HHHEEECCC; '-' = ignore) and an optional `mask` column of 1/0. NetSurfP / TAPE tables (`input`, "
               "`dssp3`, `dssp8`, `disorder`, a mask column) are recognised from their header. FASTA: "
               "`>name label=1` headers, or the labels in a second FASTA with the same ids.")
UPLOAD_EXAMPLE = ("⬆️ Upload a CSV, TSV or FASTA file of sequences with labels (left), or pick a built-in data set. "
                  "Example CSV:\n\n```\nsequence,label\nMKTAYIAKQRQISFVKSHFSRQ,1\nMSDNELLKEVLEAG,0\n```\n\n"
                  "Also read: a solubility table whose label column has another name (pick it), a NetSurfP / TAPE "
                  "per-residue table (`input,dssp3,dssp8,disorder,mask`), and a sequences FASTA with its labels in "
                  "a second FASTA (as FLIP ships secondary structure).")
LABELS_HELP = ("A FASTA with the same ids as the sequences: under each `>id` one label letter per residue (e.g. "
               "`CCHHHHEEC`, '-' = ignore) or one label for the protein (`1`, `0.73`, `soluble`). FLIP's "
               "`SET=train|test` and `VALIDATION=True` in the headers are kept as the split.")
MASK_HELP = ("A residue is ignored by the loss and Q3 where any chosen column is 0. `disorder` is 1 for ordered and 0 "
             "for disordered residues (NetSurfP-2.0); choose it to leave disordered residues out.")
# the page's private slots this module uses (setups/sequence.PRIVATE must declare them)
READING_SLOTS = ("labels_uploader", "labels_upload", "labels_forget", "label_col", "ss_target", "ss_masks")
AUTO = "(auto)"


def _has_reading_slots(state: PageState) -> bool:
    return all(n in state.private for n in READING_SLOTS)


@st.cache_data(max_entries=8, show_spinner=False)
def _layout(name: str, digest: str, _data: bytes) -> PF.FileLayout:   # cached per file name and content hash
    return PF.file_layout(_data, name)


def upload_layout(upload) -> PF.FileLayout | None:
    """What the header of ``upload`` = (name, bytes) says (None when it cannot be read: the page
    shows that file's error when it makes the data)."""
    if upload is None:
        return None
    try:
        return _layout(upload[0], hashlib.sha1(upload[1]).hexdigest(), upload[1])
    except SequenceFileError:
        return None


def kept_upload(state: PageState, uploader: str, kept: str, forget: str, label: str, help: str = "",
                used: str = "Using **{}**"):
    """A file uploader whose file is kept for the session (slot ``kept``: (name, bytes)) until its
    'Forget' button drops it; ``used`` says what the kept file is, e.g. 'Using **{}**'. Returns the
    kept (name, bytes) or None."""
    ss = st.session_state
    st.file_uploader(label, type=UPLOAD_TYPES, key=state.slot(uploader), help=help)
    up = ss.get(state.slot(uploader))
    if up is not None:
        ss[state.slot(kept)] = (up.name, up.getvalue())
    elif ss.get(state.slot(kept)) is not None:
        f1, f2 = st.columns([3, 1])
        f1.caption(used.format(ss[state.slot(kept)][0]) + " (uploaded earlier in this session).")
        f2.button("Forget", key=state.slot(forget), on_click=lambda: ss.pop(state.slot(kept), None))
    return ss.get(state.slot(kept))


def upload_controls(state: PageState) -> None:
    """The file uploader (the file is kept for the session: 'Forget' drops it) and how the file is read."""
    K = state.key
    kept_upload(state, "uploader", "upload", "forget", "CSV / TSV / FASTA", UPLOAD_HELP, "Using **{}**")
    if _has_reading_slots(state):
        reading_controls(state)
    u1, u2 = st.columns(2)
    u1.radio("Alphabet", ("protein", "dna"), key=K("up_alphabet"), horizontal=True,
             format_func={"protein": "Protein", "dna": "DNA"}.get)
    u2.toggle("Per-residue labels", key=K("up_per_residue"))
    u1.toggle("Map B Z U O → X" if state.get("up_alphabet") == "protein" else "Map U → T", key=K("up_map_rare"),
              help="Rare or ambiguous letters are refused unless this is on.")
    u2.toggle("Truncate long sequences", key=K("up_truncate"))
    st.number_input("Length limit", 10, 5000, step=10, key=K("up_max_len"),
                    help="Longer sequences are an error, or are cut to this length with 'Truncate' on.")


def _keep_valid(key: str, options: list, default) -> None:
    """Put a picker's kept value back to ``default`` when it is not one of this file's options."""
    ss = st.session_state
    value = ss.get(key)
    if isinstance(default, list):
        if value is None or not set(value) <= set(options):
            ss[key] = list(default)
    elif value not in options:
        ss[key] = default


def reading_controls(state: PageState) -> None:
    """How this file is read: a table's label column; a NetSurfP / TAPE table's target and masks; a
    FASTA's optional labels FASTA (kept for the session like the upload)."""
    ss = st.session_state
    lay = upload_layout(ss.get(state.slot("upload")))
    if lay is None:
        return
    if lay.layout == "table" and lay.columns:
        options = [AUTO] + list(lay.columns)
        _keep_valid(state.slot("label_col"), options, AUTO)
        guess = lay.label_col or "by the parser's rules"
        st.selectbox("Label column", options, key=state.slot("label_col"),
                     format_func=lambda c: f"auto ({guess})" if c == AUTO else c,
                     help="The column with one label per sequence (classes or numbers). Auto finds `label`, "
                          "`solubility`, `score`, `target`, `y`, `value` …")
    elif lay.layout == "per_residue_table":
        st.caption("📐 NetSurfP / TAPE layout: one state per residue (columns "
                   + ", ".join(f"`{c}`" for c in lay.columns) + ").")
        _keep_valid(state.slot("ss_target"), lay.targets, lay.targets[0] if lay.targets else None)
        if lay.targets:
            st.radio("Target", lay.targets, key=state.slot("ss_target"), format_func=PF.TARGETS.get,
                     horizontal=True, help="dssp3 is made from dssp8 (H G I → H, E B → E, T S C → C) when the "
                                           "file has no 3-state column.")
        if lay.mask_options:
            _keep_valid(state.slot("ss_masks"), lay.mask_options, list(lay.default_masks))
            st.multiselect("Ignore residues where this is 0", lay.mask_options, key=state.slot("ss_masks"),
                           help=MASK_HELP)
    elif lay.layout == "fasta":
        kept_upload(state, "labels_uploader", "labels_upload", "labels_forget", "Labels FASTA (same ids, optional)",
                     LABELS_HELP, "Labels from **{}**")


def current_upload(state: PageState):
    """(file name, bytes) of the session's upload when the page uses it, else None."""
    return st.session_state.get(state.slot("upload")) if state.get("dataset") == "upload" else None


def upload_reading(state: PageState) -> dict:
    """The keywords of ``protein.load_protein_file`` that the pickers set for the current upload,
    only those that differ from reading the file on its own (so {} for a plain upload):
    ``label_col`` (a table), ``per_residue_col`` ('dssp8') and ``mask_col`` (a tuple of columns)
    for a NetSurfP / TAPE table, ``labels_file`` = (name, bytes) for a FASTA."""
    upload = current_upload(state)
    if upload is None or not _has_reading_slots(state):
        return {}
    lay = upload_layout(upload)
    if lay is None:
        return {}
    ss = st.session_state
    out: dict = {}
    if lay.layout == "table":
        col = ss.get(state.slot("label_col"))
        if col and col != AUTO and col in lay.columns:
            out["label_col"] = col
    elif lay.layout == "per_residue_table":
        target = ss.get(state.slot("ss_target"))
        if target in lay.targets and target != "dssp3":
            out["per_residue_col"] = target
        masks = ss.get(state.slot("ss_masks"))
        if masks is not None and set(masks) <= set(lay.mask_options) and list(masks) != list(lay.default_masks):
            out["mask_col"] = tuple(masks)
    elif lay.layout == "fasta":
        labels = ss.get(state.slot("labels_upload"))
        if labels is not None:
            out["labels_file"] = tuple(labels)
    return out


@st.cache_data(max_entries=8, show_spinner="Making the data set …")
def _make(inputs: tuple, _values: dict, _upload, _reading: dict) -> S.SeqData:   # cached per ``inputs`` only
    if _reading:          # setups.sequence.make_data(values, upload, reading=...) reads them
        return S.make_data(_values, _upload, reading=_reading)
    return S.make_data(_values, _upload)


def load_data(state: PageState) -> S.SeqData:
    """The page's data set for its current settings and reading options (cached; raises like ``make_data``)."""
    values, upload, reading = state.values(), current_upload(state), upload_reading(state)
    return _make(S.data_inputs(values, upload) + PF.reading_key(reading), values, upload, reading)
