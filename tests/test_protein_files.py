"""Real protein files as people have them (playground/data/protein_files.py, through
protein.load_protein_file): solubility tables with any label column, NetSurfP / TAPE per-residue
tables, and a sequences FASTA with its labels in a second FASTA. Every test writes its own
small files."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from playground.data import parsing as PS
from playground.data import protein as P
from playground.data import protein_files as PF
from playground.data.parsing import SequenceFileError

PROTS = ["MKTAYIAKQR", "MSDNELLKEV", "MQQRRSTTAA", "MKKLLPTAAA", "MGSSHHHHHH", "MAEGEITTFT"]


def targets(ps):
    """The loss's per-residue targets (-100 = ignored) for a per-residue ProteinSet."""
    return P.per_residue_targets(ps.y, ps.class_names, max(len(s) for s in ps.seqs), ps.mask)


# ---- 1. one label per protein: the label column by name, or picked --------------------------------------
def test_solubility_column_is_found_by_name_among_other_numeric_columns():
    rows = ["id,sequence,length,solubility"] + [f"p{i},{s},{len(s)},{0.1 * i:.1f}" for i, s in enumerate(PROTS)]
    ps = P.load_protein_file("\n".join(rows).encode(), "sol.csv")
    assert ps.task == "regression"
    np.testing.assert_allclose(ps.y, [0.1 * i for i in range(6)], atol=1e-6)
    assert ps.seqs == PROTS and ps.ids == [f"p{i}" for i in range(6)]
    assert PF.guess_label_column(["id", "sequence", "length", "solubility"]) == "solubility"


def test_score_column_is_found_and_any_column_can_be_picked():
    rows = ["name\tsequence\tlength\tscore\tmy_assay"] + [f"p{i}\t{s}\t{10 + i}\t{i % 2}\t{2.5 * i}"
                                                        for i, s in enumerate(PROTS)]
    data = "\n".join(rows).encode()
    assert PF.protein_file_columns(data, "s.tsv") == ["name", "sequence", "length", "score", "my_assay"]
    ps = P.load_protein_file(data, "s.tsv")                       # 'score' (0/1): classes
    assert ps.task == "binary" and list(ps.y) == [0, 1, 0, 1, 0, 1]
    ps = P.load_protein_file(data, "s.tsv", label_col="my_assay")  # an arbitrary name
    assert ps.task == "regression" and list(ps.y) == [2.5 * i for i in range(6)]
    ps = P.load_protein_file(data, "s.tsv", label_col="length", label_kind="regression")
    assert list(ps.y) == [10 + i for i in range(6)]
    with pytest.raises(SequenceFileError, match="no column 'nope'.*columns: name, sequence"):
        P.load_protein_file(data, "s.tsv", label_col="nope")


def test_columns_of_a_headerless_file_a_gzipped_file_and_a_fasta():
    data = "\n".join(f"{s},{i % 2}" for i, s in enumerate(PROTS)).encode()
    assert PF.protein_file_columns(data, "x.csv") == ["column 1", "column 2"]
    ps = P.load_protein_file(data, "x.csv", label_col="column 2")
    assert list(ps.y) == [0, 1, 0, 1, 0, 1]
    gz = gzip.compress(b"sequence,solubility\n" + b"\n".join(f"{s},{i}".encode() for i, s in enumerate(PROTS)))
    assert PF.protein_file_columns(gz, "x.csv.gz") == ["sequence", "solubility"]
    assert PF.protein_file_columns(b">a\nMKTA\n", "x.fasta") == []
    assert PF.file_layout(b">a\nMKTA\n", "x.fasta").layout == "fasta"
    lay = PF.file_layout(b"id,sequence,length,solubility\np,MKTAYIAKQR,10,1\n", "s.csv")
    assert (lay.layout, lay.label_col) == ("table", "solubility")


def test_a_bad_line_in_a_solubility_table_names_line_and_position():
    rows = ["id,sequence,length,solubility"] + [f"p{i},{s},{len(s)},{i}" for i, s in enumerate(PROTS)]
    rows[4] = "p3,MKKLL1TAAA,10,3"
    with pytest.raises(SequenceFileError) as e:
        P.load_protein_file("\n".join(rows).encode(), "sol.csv")
    assert e.value.line == 5 and "Line 5, position 6" in e.value.message and "'1'" in e.value.message


# ---- 2. NetSurfP / TAPE per-residue tables ---------------------------------------------------------------
TAPE = ("input,dssp3,dssp8,disorder,evaluation_mask\n"
        "M K T A Y I,C C H H H C,C C H G H S,1 1 1 1 1 0,0 1 1 1 1 1\n"
        "M S D N E L L K,C E E E C C H H,C E B E T S H H,1 1 1 1 1 1 1 1,1 1 1 1 1 1 1 1\n"
        "MQQRRSTT,CCHHHHCC,CCIIIITC,11111111,11111100\n")


def test_tape_layout_is_found_from_the_header_and_joins_space_separated_values():
    lay = PF.file_layout(TAPE.encode(), "ss.csv")
    assert lay.layout == "per_residue_table" and lay.targets == ["dssp3", "dssp8"]
    assert lay.mask_options == ["evaluation_mask", "disorder"] and lay.default_masks == ["evaluation_mask"]
    ps = P.load_protein_file(TAPE.encode(), "ss.csv")            # no per_residue flag needed
    assert ps.task == "per_residue" and ps.class_names == ["H", "E", "C"]
    assert ps.seqs == ["MKTAYI", "MSDNELLK", "MQQRRSTT"]
    assert ps.y == ["CCHHHC", "CEEECCHH", "CCHHHHCC"]
    assert ps.mask == ["011111", "11111111", "11111100"]
    t = targets(ps)                                               # the mask -> ignored residues
    assert t[0, 0] == -100 and t[0, 1] == 2 and t[0, 2] == 0      # C = 2, H = 0
    assert list(t[2, 6:]) == [-100, -100]
    assert (t[0, 6:] == -100).all()                               # padding
    assert int((t >= 0).sum()) == 6 + 8 + 8 - 1 - 2
    assert any("3 of 22 residues are ignored" in w for w in ps.warnings)


def test_tape_dssp8_target_and_disorder_as_a_mask():
    ps = P.load_protein_file(TAPE.encode(), "ss.csv", per_residue_col="dssp8", mask_col=("evaluation_mask", "disorder"))
    assert ps.class_names == PF.DSSP8 and ps.y[1] == "CEBETSHH" and ps.y[2] == "CCIIIITC"
    assert ps.mask[0] == "011110"                                 # eval mask AND disorder (0 = disordered)
    t = targets(ps)
    assert t[1, 2] == PF.DSSP8.index("B") and t[0, 5] == -100
    ps = P.load_protein_file(TAPE.encode(), "ss.csv", mask_col=())   # no mask at all
    assert ps.mask is None and int((targets(ps) >= 0).sum()) == 22


def test_tape_three_states_are_made_from_dssp8_when_there_is_no_dssp3_column():
    tsv = "id\tinput\tdssp8\tseq_mask\nA\tM K T A Y I\tG H I E B T\t1 1 1 1 1 1\nB\tM S D N\tC S E E\t1 1 1 0\n"
    ps = P.load_protein_file(tsv.encode(), "ss.tsv")
    assert ps.y == ["HHHEEC", "CCEE"] and ps.ids == ["A", "B"] and ps.mask == ["111111", "1110"]
    assert "turned into 3 states" in ps.description
    assert PF.file_layout(tsv.encode(), "ss.tsv").targets == ["dssp3", "dssp8"]


def test_tape_float_masks_truncation_and_a_split_column():
    rows = ["input,dssp3,mask,split",
            "M K T A Y I,C C H H H C,1.0 1.0 0.0 1.0 1.0 1.0,train",
            "M S D N E L,C E E E C C,1.0 1.0 1.0 1.0 1.0 1.0,validation",
            "M Q Q R R S,C C H H H H,1 1 1 1 1 1,test"]
    data = "\n".join(rows).encode()
    with pytest.raises(SequenceFileError, match="Line 2: this protein has 6 residues, more than the limit of 4"):
        P.load_protein_file(data, "ss.csv", max_length=4)
    ps = P.load_protein_file(data, "ss.csv", max_length=4, truncate=True)
    assert ps.seqs == ["MKTA", "MSDN", "MQQR"] and ps.y[0] == "CCHH" and ps.mask[0] == "1101"
    assert list(ps.split_labels) == ["train", "valid", "test"]
    d = P.to_split(ps, seed=0)                                    # the file's own split is kept
    assert list(d.meta["train_idx"]) == [0] and list(d.meta["val_idx"]) == [1] and list(d.meta["test_idx"]) == [2]


@pytest.mark.parametrize("row, where", [
    ("M K T A,C C Q H,1 1 1 1", "Line 3, position 3 of 'dssp3': 'Q' is not a DSSP letter"),
    ("M K T A,C C H,1 1 1 1", "Line 3: 'input' has 4 residues but 'dssp3' has 3 states"),
    ("M K T A,C C H H,1 1 2 1", "Line 3, position 3 of 'mask': '2' is not 0 or 1"),
    ("M K J A,C C H H,1 1 1 1", "Line 3, position 3 of 'input': 'J' is an ambiguous or rare letter"),
    ("M KT A,C C H H,1 1 1 1", "Line 3, position 2 of 'input': 'KT' is 2 letters, not one residue"),
    ("M K T A,CC HH,1 1 1 1", "Line 3, position 1 of 'dssp3': 'CC' is not a DSSP letter"),
    (",C C H H,1 1 1 1", "Line 3: 'input' is empty"),
])
def test_a_bad_line_in_a_tape_table_names_the_line_and_the_position(row, where):
    data = f"input,dssp3,mask\nM S D N,C H H C,1 1 1 1\n{row}\n".encode()
    with pytest.raises(SequenceFileError) as e:
        P.load_protein_file(data, "ss.csv")
    assert where in e.value.message and e.value.line == 3 and e.value.hint


def test_tape_table_errors_for_targets_and_masks_the_file_does_not_have():
    data = b"input,dssp3\nM S D N,C H H C\nM K T A,C C E E\n"
    with pytest.raises(SequenceFileError, match="no 8-state column"):
        P.load_protein_file(data, "ss.csv", per_residue_col="dssp8")
    with pytest.raises(SequenceFileError, match="no column 'mask'"):
        P.load_protein_file(data, "ss.csv", mask_col="mask")
    with pytest.raises(SequenceFileError, match="Every residue is ignored"):
        P.load_protein_file(b"input,dssp3,mask\nM S,C H,0 0\nM K,C E,0 0\n", "ss.csv")


# ---- 3. a sequences FASTA plus a labels FASTA (FLIP) -----------------------------------------------------
SEQS = b">P1 first protein\nMKTAYIAKQR\n>P2\nMSDNELLKEV\nAA\n>P3\nMQQRRSTTAA\n>P4\nMKKLLPTAAA\n"
SS = (b">P1 SET=train VALIDATION=False\nCCHHHHHEEC\n>P2 SET=train VALIDATION=True\nCCHHHH\nHHEEEE\n"
      b">P4 SET=test VALIDATION=False\nCCCCC-HHHH\n>P3 SET=train VALIDATION=False\nCCCCCCHHHH\n")


def test_fasta_with_per_residue_labels_in_a_second_fasta_matched_by_id():
    ps = P.load_protein_file(SEQS, "sequences.fasta", labels_file=("sampled.fasta", SS))
    assert ps.task == "per_residue" and ps.ids == ["P1", "P2", "P3", "P4"]
    assert ps.seqs[1] == "MSDNELLKEVAA" and ps.y[1] == "CCHHHHHHEEEE"   # wrapped lines joined
    assert ps.y[3] == "CCCCC-HHHH" and ps.class_names == ["H", "E", "C"]
    assert targets(ps)[3, 5] == -100
    assert list(ps.split_labels) == ["train", "valid", "train", "test"]  # FLIP's SET= / VALIDATION=


def test_fasta_with_one_label_per_protein_in_a_second_fasta():
    labels = b">P3\nsoluble\n>P1\ninsoluble\n>P2\nsoluble\n>P4\ninsoluble\n"
    ps = P.load_protein_file(SEQS, "s.fasta", labels_file=("l.fasta", labels))
    assert ps.task == "binary" and ps.class_names == ["insoluble", "soluble"] and list(ps.y) == [0, 1, 1, 0]
    values = b">P1\n0.25\n>P2\n-1.5\n>P3\n3\n>P4\n0.75\n"
    ps = P.load_protein_file(SEQS, "s.fasta", labels_file=("l.fasta", values))
    assert ps.task == "regression" and list(ps.y) == [0.25, -1.5, 3.0, 0.75]


@pytest.mark.parametrize("labels, where", [
    (SS.replace(b"HHEEEE", b"HHE*EE"), "Line 5 of 'l.fasta', position 10 of '>P2': '*' is not a label letter"),
    (SS.replace(b">P3 SET", b">P9 SET"), "'l.fasta' has no labels for 'P3' (line 6 of 's.fasta')"),
    (SS + b">P7\nCCCC\n", "Line 10 of 'l.fasta': '>P7' matches no sequence in 's.fasta'"),
    (SS.replace(b"CCCCCCHHHH", b"CCCCCCHHH"),
     "Line 8 of 'l.fasta': '>P3' has 9 labels but its sequence (line 6 of 's.fasta') has 10 residues"),
    (SS + b">P1\nCCCC\n", "Line 10 of 'l.fasta': the id 'P1' is there twice (also line 1)"),
    (b"id,label\nP1,1\n", "'l.fasta' is not a FASTA file: line 1 should be a '>id' header"),
    (SS.replace(b"SET=test", b"SET=holdout"), "Line 6: SET= of '>P4' in 'l.fasta' is 'holdout'"),
])
def test_a_bad_labels_fasta_names_the_file_the_line_and_the_id(labels, where):
    with pytest.raises(SequenceFileError) as e:
        P.load_protein_file(SEQS, "s.fasta", labels_file=("l.fasta", labels))
    assert where in e.value.message and e.value.hint


def test_a_bad_sequences_fasta_is_named_and_a_table_needs_no_labels_fasta():
    with pytest.raises(SequenceFileError, match=r"^'s.fasta': Line 4, position 3"):
        P.load_protein_file(SEQS.replace(b"MSDNELLKEV", b"MS1NELLKEV"), "s.fasta", labels_file=("l.fasta", SS))
    with pytest.raises(SequenceFileError, match="'s.fasta': the id 'P1' is there twice|Line 9 of 's.fasta': the id"):
        P.load_protein_file(SEQS + b">P1\nMKVLAAGIVG\n", "s.fasta", labels_file=("l.fasta", SS))
    with pytest.raises(SequenceFileError, match="goes with a sequences FASTA"):
        P.load_protein_file(b"sequence,label\nMKTAYIAKQR,1\n", "t.csv", labels_file=("l.fasta", SS))


def test_uploads_stay_within_the_size_limit(monkeypatch):
    monkeypatch.setattr(PS, "MAX_BYTES", 200)
    with pytest.raises(SequenceFileError, match="the limit is 200 bytes"):
        P.load_protein_file(SEQS, "s.fasta", labels_file=("l.fasta", SS + b">P5\n" + b"C" * 300 + b"\n"))
    with pytest.raises(SequenceFileError, match="the limit is 200 bytes"):
        P.load_protein_file(TAPE.encode(), "ss.csv")
    bomb = gzip.compress(b"input,dssp3\n" + b"M,C\n" * 1000)
    with pytest.raises(SequenceFileError, match="Unpacked, the file is over"):
        P.load_protein_file(bomb, "ss.csv.gz")


def test_reading_key_is_hashable_and_follows_the_labels_file_content():
    a = PF.reading_key({"labels_file": ("l.fasta", SS), "label_col": None, "mask_col": ["mask"]})
    b = PF.reading_key({"mask_col": ["mask"], "label_col": None, "labels_file": ("l.fasta", SS)})
    c = PF.reading_key({"labels_file": ("l.fasta", SS + b">P5\nC\n"), "label_col": None, "mask_col": ["mask"]})
    assert a == b and a != c and hash(a) and PF.reading_key(None) == ()


# ---- the page's controls (playground/ui/seq_data.py), on a bare page that declares their slots -----------
def _controls_page():
    import streamlit as st

    from playground.setups import sequence as S
    from playground.ui import seq_data as D
    from playground.ui.state import PageState

    state = PageState(S.SCHEMA, private=tuple(dict.fromkeys(S.PRIVATE + D.READING_SLOTS)))
    state.load()
    D.upload_controls(state)
    st.session_state["reading"] = D.upload_reading(state)


@pytest.fixture
def controls():
    from streamlit.testing.v1 import AppTest

    def make(name: str, data: bytes):
        at = AppTest.from_function(_controls_page, default_timeout=60)
        at.query_params["dataset"] = "upload"
        at.session_state["seq._upload"] = (name, data)
        return at.run()

    return make


def test_controls_pick_the_label_column_of_a_table(controls):
    data = "\n".join(["name,sequence,length,my_assay"] + [f"p{i},{s},{10 + i},{2.5 * i}"
                                                          for i, s in enumerate(PROTS)]).encode()
    at = controls("s.csv", data)
    assert not at.exception
    box = at.selectbox(key="seq._label_col")
    assert box.options == ["auto (by the parser's rules)", "name", "sequence", "length", "my_assay"]
    assert at.session_state["reading"] == {}
    box.set_value("my_assay").run()
    reading = at.session_state["reading"]
    assert reading == {"label_col": "my_assay"}
    assert list(P.load_protein_file(data, "s.csv", **reading).y) == [2.5 * i for i in range(6)]


def test_controls_pick_the_target_and_the_masks_of_a_tape_table(controls):
    at = controls("ss.csv", TAPE.encode())
    assert not at.exception and at.session_state["reading"] == {}
    assert at.radio(key="seq._ss_target").options == [PF.TARGETS["dssp3"], PF.TARGETS["dssp8"]]
    assert at.multiselect(key="seq._ss_masks").value == ["evaluation_mask"]
    at.radio(key="seq._ss_target").set_value("dssp8")
    at.multiselect(key="seq._ss_masks").set_value(["evaluation_mask", "disorder"]).run()
    reading = at.session_state["reading"]
    assert reading == {"per_residue_col": "dssp8", "mask_col": ("evaluation_mask", "disorder")}
    ps = P.load_protein_file(TAPE.encode(), "ss.csv", **reading)
    assert ps.class_names == PF.DSSP8 and ps.mask[0] == "011110"


def test_controls_take_a_labels_fasta_for_a_fasta_and_forget_it(controls):
    at = controls("sequences.fasta", SEQS)
    assert not at.exception and not at.selectbox and at.session_state["reading"] == {}
    at.file_uploader(key="seq._labels_uploader").set_value(("sampled.fasta", SS, "text/plain")).run()
    assert at.session_state["reading"] == {"labels_file": ("sampled.fasta", SS)}
    ps = P.load_protein_file(SEQS, "sequences.fasta", **at.session_state["reading"])
    assert ps.task == "per_residue" and ps.y[0] == "CCHHHHHEEC"
    at.file_uploader(key="seq._labels_uploader").set_value(None).run()      # kept for the session ...
    assert "labels_file" in at.session_state["reading"]
    next(b for b in at.button if b.key == "seq._labels_forget").click().run()   # ... until Forget
    assert at.session_state["reading"] == {}
