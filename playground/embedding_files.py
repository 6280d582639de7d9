"""Embedding files: what ``python -m playground embed`` writes and the ESM-2 page reads back.

    write_embeddings("emb.npy", ids, vectors)             # emb.npy (n, E) float32 + emb.ids.txt, one id a line
    write_embeddings("emb.parquet", ids, vectors, meta)   # columns id, length?, e0..e{E-1}; meta in the schema
    write_embeddings("res.npz", ids, per_residue=arrays)  # per residue: one (L_i, E) array per protein + 'ids'
    emb = read_embeddings([("emb.npy", npy_bytes), ("emb.ids.txt", ids_bytes)])   # an upload: checked, safe
    emb.ids, emb.vectors, emb.meta

Formats (all numpy / Arrow, no pickles: ``np.load(allow_pickle=False)``):

- ``.npy``: mean-pooled, an (n, E) float32 array; the ids in ``<stem>.ids.txt`` next to it, one per
  line, in the same order (the page's NPY download is the same array).
- ``.npz``: ``ids`` plus either ``vectors`` (n, E) or one array ``seq00000`` ... per protein (per
  residue, as the page's NPZ download).
- ``.parquet`` (needs pyarrow): one row per protein (``id``, ``length``, ``e0`` ...), or per residue
  (``id``, ``position``, ``residue``, ``e0`` ...), as the page's CSV download; the model, layer and
  pooling are kept in the file's metadata.

Pure Python: never imports streamlit.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from playground.errors import PlaygroundError

FORMATS = (".npy", ".npz", ".parquet")
MAX_UPLOAD_BYTES = 1024 ** 3            # 1 GB: the page reads no bigger embedding file
META_KEY = b"playground"


class EmbeddingFileError(PlaygroundError):
    """An embeddings file that cannot be written or read (which file, what is wrong, what to do)."""


@dataclasses.dataclass
class Embeddings:
    ids: list[str]
    vectors: np.ndarray | None = None           # (n, E) mean-pooled
    per_residue: list[np.ndarray] | None = None  # one (L_i, E) per protein
    meta: dict = dataclasses.field(default_factory=dict)   # model, layer, pooling ... when the file says

    @property
    def pooling(self) -> str:
        return "mean" if self.vectors is not None else "per_residue"

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1] if self.vectors is not None else self.per_residue[0].shape[1])

    def __len__(self) -> int:
        return len(self.ids)

    def mean(self) -> np.ndarray:
        """One vector per protein (per-residue files are averaged over their residues)."""
        if self.vectors is not None:
            return self.vectors
        return np.stack([a.mean(0) for a in self.per_residue]).astype(np.float32)


def ids_path(path: str | os.PathLike) -> Path:
    """The ids file next to an ``.npy``: emb.npy -> emb.ids.txt."""
    p = Path(path)
    return p.with_name(p.stem + ".ids.txt")


def has_pyarrow() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def _need_pyarrow(what: str) -> None:
    if not has_pyarrow():
        raise EmbeddingFileError(f"{what} needs the pyarrow package, which is not installed here.",
                                 "Install it (pip install pyarrow), or write .npy (with its .ids.txt) instead.")


def _atomic(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_embeddings(path: str | os.PathLike, ids: Sequence[str], vectors: np.ndarray | None = None, *,
                     per_residue: Sequence[np.ndarray] | None = None, seqs: Sequence[str] | None = None,
                     meta: dict | None = None) -> list[Path]:
    """Write embeddings in the format the suffix names; returns the files written."""
    path = Path(path)
    suffix = path.suffix.lower()
    ids = [str(i) for i in ids]
    if suffix not in FORMATS:
        raise EmbeddingFileError(f"'{path.name}': unknown format '{suffix}'.", f"Use one of {', '.join(FORMATS)}.")
    if (vectors is None) == (per_residue is None):
        raise ValueError("give vectors (mean) or per_residue, not both")
    if suffix == ".npy":
        if vectors is None:
            raise EmbeddingFileError("Per-residue embeddings do not fit one .npy array.",
                                     "Write .npz or .parquet, or use --pooling mean.")
        arr = np.ascontiguousarray(vectors, dtype=np.float32)
        def save(t):
            with open(t, "wb") as f:
                np.save(f, arr, allow_pickle=False)

        _atomic(path, save)
        ip = ids_path(path)
        _atomic(ip, lambda t: Path(t).write_text("".join(f"{i}\n" for i in ids), encoding="utf-8"))
        return [path, ip]
    if suffix == ".npz":
        arrays = {"vectors": np.asarray(vectors, dtype=np.float32)} if vectors is not None else {
            f"seq{i:05d}": np.asarray(a, dtype=np.float32) for i, a in enumerate(per_residue)}
        def savez(t):
            with open(t, "wb") as f:
                np.savez(f, ids=np.array(ids, dtype=str), **arrays)

        _atomic(path, savez)
        return [path]
    _need_pyarrow("Writing .parquet")
    import pyarrow as pa
    import pyarrow.parquet as pq

    if vectors is not None:
        vec = np.asarray(vectors, dtype=np.float32)
        cols = {"id": pa.array(ids, pa.string())}
        if seqs is not None:
            cols["length"] = pa.array([len(s) for s in seqs], pa.int32())
        cols.update({f"e{j}": pa.array(vec[:, j]) for j in range(vec.shape[1])})
    else:
        n = [len(a) for a in per_residue]
        vec = np.concatenate([np.asarray(a, dtype=np.float32) for a in per_residue]) if per_residue else \
            np.zeros((0, 0), np.float32)
        cols = {"id": pa.array(np.repeat(np.array(ids, dtype=object), n).tolist(), pa.string()),
                "position": pa.array(np.concatenate([np.arange(1, k + 1) for k in n]).astype(np.int32))}
        if seqs is not None:
            cols["residue"] = pa.array([ch for s, k in zip(seqs, n) for ch in s[:k]], pa.string())
        cols.update({f"e{j}": pa.array(vec[:, j]) for j in range(vec.shape[1])})
    table = pa.table(cols)
    table = table.replace_schema_metadata({META_KEY: json.dumps(meta or {}).encode()})
    _atomic(path, lambda t: pq.write_table(table, str(t)))
    return [path]


# ---------------------------------------------------------------------------------------------
# reading (files a person uploads: untrusted)
def _npy(data: bytes, name: str) -> np.ndarray:
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        raise EmbeddingFileError(f"'{name}' holds Python objects, which are never loaded ({e}).",
                                 "Save plain float arrays (np.save(..., allow_pickle=False)).") from None
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same message
        raise EmbeddingFileError(f"'{name}' is not a NumPy .npy/.npz file ({type(e).__name__}).",
                                 "Upload the file `python -m playground embed` wrote.") from None
    return arr


def _vectors(arr: np.ndarray, name: str, what: str = "array") -> np.ndarray:
    if arr.dtype.kind not in "fiu":
        raise EmbeddingFileError(f"'{name}': the {what} holds {arr.dtype} values, not numbers.")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise EmbeddingFileError(f"'{name}': the {what} has NaN or infinite values.",
                                 "Embed again; a model in bfloat16 can overflow on very long proteins.")
    return arr


def _ids_text(data: bytes, name: str) -> list[str]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise EmbeddingFileError(f"'{name}' is not UTF-8 text.", "The ids file has one id per line.") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_embeddings(files: Sequence[tuple[str, bytes]]) -> Embeddings:
    """Embeddings from uploaded files: an ``.npy`` with its ``.ids.txt`` (or ``.txt``), an ``.npz``,
    or a ``.parquet``. Raises EmbeddingFileError saying which file and what to do."""
    files = [(str(n), bytes(b)) for n, b in files]
    if not files:
        raise EmbeddingFileError("No file given.", "Upload the .npy with its .ids.txt, an .npz or a .parquet.")
    for name, data in files:
        if len(data) > MAX_UPLOAD_BYTES:
            raise EmbeddingFileError(f"'{name}' is {len(data) / 1e9:.1f} GB; the page reads at most "
                                     f"{MAX_UPLOAD_BYTES / 1e9:.0f} GB.", "Embed fewer proteins per file.")
    by_suffix: dict[str, list[tuple[str, bytes]]] = {}
    for name, data in files:
        by_suffix.setdefault(Path(name).suffix.lower(), []).append((name, data))
    if ".parquet" in by_suffix:
        return _read_parquet(*by_suffix[".parquet"][0])
    if ".npz" in by_suffix:
        return _read_npz(*by_suffix[".npz"][0])
    if ".npy" not in by_suffix:
        raise EmbeddingFileError(f"None of {', '.join(n for n, _ in files)} is an embeddings file.",
                                 "Upload the .npy with its .ids.txt, an .npz or a .parquet.")
    name, data = by_suffix[".npy"][0]
    arr = _npy(data, name)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise EmbeddingFileError(f"'{name}' is an array of shape {arr.shape}; embeddings are (proteins, numbers).")
    arr = _vectors(arr, name)
    texts = by_suffix.get(".txt", [])
    if not texts:
        raise EmbeddingFileError(f"'{name}' needs its ids file ({Path(name).stem}.ids.txt).",
                                 "Upload both files together (the ids are one per line, in the array's order).")
    want = Path(name).stem + ".ids.txt"
    tname, tdata = next((t for t in texts if t[0] == want), texts[0])
    ids = _ids_text(tdata, tname)
    if len(ids) != len(arr):
        raise EmbeddingFileError(f"'{tname}' has {len(ids)} ids but '{name}' has {len(arr)} rows.",
                                 "Upload the ids file written with this array.")
    return Embeddings(ids, arr, None, {"pooling": "mean"})


def _read_npz(name: str, data: bytes) -> Embeddings:
    z = _npy(data, name)
    keys = list(getattr(z, "files", []))
    if "ids" not in keys:
        raise EmbeddingFileError(f"'{name}' has no 'ids' array.", "Upload an .npz written by the playground.")
    ids = [str(i) for i in z["ids"].tolist()]
    if "vectors" in keys:
        vec = _vectors(z["vectors"], name)
        if vec.ndim != 2 or len(vec) != len(ids):
            raise EmbeddingFileError(f"'{name}': {len(ids)} ids but vectors of shape {vec.shape}.")
        return Embeddings(ids, vec, None, {"pooling": "mean"})
    arrays = sorted(k for k in keys if k.startswith("seq"))
    if len(arrays) != len(ids) or not arrays:
        raise EmbeddingFileError(f"'{name}': {len(ids)} ids but {len(arrays)} per-protein arrays.")
    per = [_vectors(z[k], name, f"array {k}") for k in arrays]
    if any(a.ndim != 2 or a.shape[1] != per[0].shape[1] for a in per):
        raise EmbeddingFileError(f"'{name}': the per-residue arrays differ in width.")
    return Embeddings(ids, None, per, {"pooling": "per_residue"})


def _read_parquet(name: str, data: bytes) -> Embeddings:
    _need_pyarrow("Reading .parquet")
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001
        raise EmbeddingFileError(f"'{name}' is not a Parquet file ({type(e).__name__}).") from None
    meta = {}
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw:
        try:
            meta = dict(json.loads(raw))
        except (ValueError, TypeError):
            meta = {}
    cols = table.column_names
    ecols = [c for c in cols if c.startswith("e") and c[1:].isdigit()]
    ecols.sort(key=lambda c: int(c[1:]))
    if "id" not in cols or not ecols:
        raise EmbeddingFileError(f"'{name}' needs an 'id' column and e0, e1 ... columns (it has "
                                 f"{', '.join(cols[:8])}{' ...' if len(cols) > 8 else ''}).")
    ids = [str(i) for i in table.column("id").to_pylist()]
    vec = _vectors(np.stack([table.column(c).to_numpy(zero_copy_only=False) for c in ecols], 1), name)
    if "position" not in cols:
        meta.setdefault("pooling", "mean")
        return Embeddings(ids, vec, None, meta)
    order, per, start = [], [], 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or ids[i] != ids[start]:
            order.append(ids[start])
            per.append(vec[start:i])
            start = i
    meta["pooling"] = "per_residue"
    return Embeddings(order, None, per, meta)


def read_embeddings_path(path: str | os.PathLike) -> Embeddings:
    """``read_embeddings`` for a path on this machine (an .npy finds its .ids.txt next to it)."""
    p = Path(path)
    files = [(p.name, p.read_bytes())]
    if p.suffix.lower() == ".npy" and ids_path(p).is_file():
        files.append((ids_path(p).name, ids_path(p).read_bytes()))
    return read_embeddings(files)


__all__ = ["Embeddings", "EmbeddingFileError", "write_embeddings", "read_embeddings", "read_embeddings_path",
           "ids_path", "has_pyarrow", "FORMATS"]
