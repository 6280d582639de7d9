"""``python -m playground embed``: resumable, batched by tokens, and the page's numbers (tiny checkpoint)."""
from __future__ import annotations

import random
import re

import numpy as np
import pytest

from playground import esm
from playground.cli import main
from playground.cli import embed as E
from playground.embedding_files import read_embeddings, read_embeddings_path


@pytest.fixture
def files(tmp_path, tiny_esm_bytes, esm_offline):
    ckpt = tmp_path / "tiny_esm2.pt"
    ckpt.write_bytes(tiny_esm_bytes[0])
    rng = random.Random(4)
    fasta = tmp_path / "proteins.fasta"
    records = [(f"P{i:03d}", "".join(rng.choice(esm.AMINO_ACIDS) for _ in range(rng.randint(8, 70))))
               for i in range(40)]
    fasta.write_text("".join(f">{pid} some description\n{s[:30]}\n{s[30:]}\n" for pid, s in records))
    yield ckpt, fasta, records
    assert esm_offline == []                  # never the network


def args(ckpt, fasta, out, *extra):
    return ["embed", str(fasta), "--checkpoint", str(ckpt), "--out", str(out), "--token-budget", "160",
            "--part-batches", "2", "--quiet", *extra]


def page_vectors(ckpt, records, **kw):
    """What the ESM-2 page computes for these proteins (setups.protein.embed -> esm.embed, its defaults)."""
    h = esm.load_checkpoint_file(ckpt)
    return esm.embed(h, [s for _, s in records], ids=[p for p, _ in records], use_cache=False, **kw)


def test_embed_resumes_after_an_interruption_and_writes_the_pages_numbers(files, tmp_path, capsys, monkeypatch):
    ckpt, fasta, records = files
    out = tmp_path / "emb.npy"
    monkeypatch.setenv(E.STOP_ENV, "2")
    assert main(args(ckpt, fasta, out)) == 130          # stopped after 2 parts
    err = capsys.readouterr().err
    done = int(re.search(r"\((\d+) of 40 proteins done\)", err).group(1))
    assert 0 < done < 40 and not out.exists()
    assert len(list(E.parts_dir(out).glob("part-*.npz"))) == 2
    monkeypatch.delenv(E.STOP_ENV)
    assert main(args(ckpt, fasta, out)) == 0            # the same command again
    cap = capsys.readouterr()
    assert f"resuming: {done} of 40 proteins already embedded" in cap.err
    assert f"({40 - done} embedded now" in cap.out       # only the rest was embedded
    assert not E.parts_dir(out).exists()                 # parts removed once the file is whole
    got = read_embeddings_path(out)                      # the page's reader (.npy + .ids.txt)
    page = page_vectors(ckpt, records)
    assert got.ids == [p for p, _ in records]
    np.testing.assert_allclose(got.vectors, page.vectors, rtol=0, atol=1e-5)
    # an uninterrupted run writes the same numbers
    out2 = tmp_path / "again.npy"
    assert main(args(ckpt, fasta, out2)) == 0
    np.testing.assert_allclose(np.load(out2), got.vectors, rtol=0, atol=1e-5)


def test_parquet_and_per_residue_files_load_back(files, tmp_path):
    pytest.importorskip("pyarrow")
    ckpt, fasta, records = files
    pq = tmp_path / "emb.parquet"
    assert main(args(ckpt, fasta, pq, "--layer", "1")) == 0
    got = read_embeddings([(pq.name, pq.read_bytes())])
    assert got.meta["layer"] == 1 and got.meta["model"] == "tiny_esm2"
    np.testing.assert_allclose(got.vectors, page_vectors(ckpt, records, layer=1).vectors, atol=1e-5)
    npz = tmp_path / "res.npz"
    assert main(args(ckpt, fasta, npz, "--pooling", "per_residue")) == 0
    per = read_embeddings([(npz.name, npz.read_bytes())])
    page = page_vectors(ckpt, records, pooling="per_residue")
    assert per.pooling == "per_residue" and [len(a) for a in per.per_residue] == [len(s) for _, s in records]
    for a, b in zip(per.per_residue, page.per_residue):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_a_changed_sequence_or_setting_is_not_mixed_in(files, tmp_path, capsys, monkeypatch):
    ckpt, fasta, records = files
    out = tmp_path / "emb.npy"
    monkeypatch.setenv(E.STOP_ENV, "1")
    assert main(args(ckpt, fasta, out, "--keep-parts")) == 130
    monkeypatch.delenv(E.STOP_ENV)
    assert main(args(ckpt, fasta, out, "--layer", "1")) == 1        # other settings: refused, not mixed
    assert "other settings" in capsys.readouterr().err
    changed = [(p, "W" + s[1:]) for p, s in records]                 # every sequence edited, same ids
    fasta.write_text("".join(f">{p}\n{s}\n" for p, s in changed))
    assert main(args(ckpt, fasta, out)) == 0
    assert "(40 embedded now" in capsys.readouterr().out             # nothing reused
    np.testing.assert_allclose(np.load(out), page_vectors(ckpt, changed).vectors, atol=1e-5)


@pytest.mark.parametrize("text, words", [
    (">a\nMKTAYIAK\n>b\nMKTJAY\n", "line 4, position 4: 'J'"),
    (">a\nMKT\n>a\nMKV\n", "line 3: the id 'a' was already used on line 1"),
    (">a\n>b\nMKV\n", "line 1: the record 'a' has no sequence"),
    ("MKTAYIAK\n", "line 1: sequence text before the first '>'"),
])
def test_bad_fasta_names_the_line(files, tmp_path, capsys, text, words):
    ckpt, _, _ = files
    bad = tmp_path / "bad.fa"
    bad.write_text(text)
    assert main(args(ckpt, bad, tmp_path / "x.npy")) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: bad.fa, ") and words in err and "Traceback" not in err


def test_bfloat16_needs_cuda_and_npy_needs_mean(files, tmp_path, capsys):
    ckpt, fasta, _ = files
    assert main(args(ckpt, fasta, tmp_path / "x.npy", "--dtype", "bfloat16")) == 1
    assert "CUDA" in capsys.readouterr().err
    assert main(args(ckpt, fasta, tmp_path / "x.npy", "--pooling", "per_residue")) == 1
    assert ".npz or .parquet" in capsys.readouterr().err


def test_the_esm_page_opens_what_embed_writes(files, tmp_path, app_test, tiny_esm_bytes):
    from tests.conftest import plotly_specs

    ckpt, fasta, records = files
    out = tmp_path / "emb.npy"
    assert main(args(ckpt, fasta, out)) == 0
    at = app_test("pages/4_Protein_Language_Model.py", query={"tab": "🧭 Embeddings"}).run()
    at.button(key="esm.untrained").click().run()
    at.file_uploader(key="esm.emb_files").set_value(
        [(out.name, out.read_bytes(), "application/octet-stream"),
         ("emb.ids.txt", (tmp_path / "emb.ids.txt").read_bytes(),
          "text/plain")]).run()
    assert not at.exception, [e.message for e in at.exception]
    proj = next(s for s in plotly_specs(at) if "from the file" in s["layout"]["title"]["text"])
    assert sorted(t for tr in proj["data"] for t in tr["text"]) == sorted(p for p, _ in records)
    assert any("40 proteins" in c.value for c in at.caption)
    # a lone .npy: the page asks for its ids file
    at.file_uploader(key="esm.emb_files").set_value([(out.name, out.read_bytes(), "application/octet-stream")]).run()
    assert not at.exception and any("ids file" in e.value for e in at.error)


def test_parquet_without_pyarrow_says_so(files, tmp_path, capsys, monkeypatch):
    import playground.embedding_files as EF

    ckpt, fasta, _ = files
    monkeypatch.setattr(EF, "has_pyarrow", lambda: False)
    assert main(args(ckpt, fasta, tmp_path / "x.parquet")) == 1
    err = capsys.readouterr().err
    assert "pyarrow" in err and ".npy" in err and "Traceback" not in err
