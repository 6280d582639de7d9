"""Shared test fixtures. Tests never touch the network."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("PLAYGROUND_NUM_THREADS", "1")
# fair-esm / torch.hub must never download in tests: point the hub at an empty temp dir.
os.environ.setdefault("TORCH_HOME", str(ROOT / ".pytest_cache" / "torch_home"))

APP_TIMEOUT = 60  # AppTest default_timeout (first run imports torch)
HISTORY = "pages/6_Run_History.py"


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection raises and is recorded; tests assert none happened.
    (Not autouse: the browser tests talk to a local server.)"""
    import socket

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:1])
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", lambda self, *a, **k: refuse(*a))
    yield attempts

@pytest.fixture
def esm_offline(monkeypatch, tmp_path, no_network):
    """The ESM-2 page and library with no weights to find and no network: an empty torch hub
    folder and PLAYGROUND_OFFLINE. Yields the network attempts (tests assert there were none)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("PLAYGROUND_OFFLINE", "1")
    yield no_network


@pytest.fixture(scope="module")
def tiny_esm_bytes():
    """(checkpoint bytes, contact-regression bytes) of a tiny random ESM-2 (2 layers x 32, 4 heads)
    in fair-esm's layout, written through the library's own saver."""
    import io

    from playground import esm as E

    model = E.build_esm2(2, 32, 4, seed=11)
    ckpt, reg = io.BytesIO(), io.BytesIO()
    E.save_checkpoint(model, ckpt, regression_path=reg)
    return ckpt.getvalue(), reg.getvalue()



@pytest.fixture
def app_test():
    """Factory: app_test("pages/1_Neural_Network_Basics.py", query={"seed": "3"})."""
    from streamlit.testing.v1 import AppTest

    def make(path: str, query: dict | None = None):
        at = AppTest.from_file(str(ROOT / path), default_timeout=APP_TIMEOUT)
        for k, v in (query or {}).items():
            at.query_params[k] = v
        return at

    return make


def _decode_arrays(obj):
    """Plotly 7 writes numpy arrays as {'dtype', 'bdata' (base64)[, 'shape']}: decode them to lists."""
    import base64

    import numpy as np

    if isinstance(obj, dict):
        if set(obj) >= {"dtype", "bdata"} and set(obj) <= {"dtype", "bdata", "shape"}:
            arr = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=obj["dtype"])
            if "shape" in obj:
                shape = obj["shape"]
                shape = [int(s) for s in (shape.split(",") if isinstance(shape, str) else shape)]
                arr = arr.reshape(shape)
            return arr.tolist()
        return {k: _decode_arrays(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode_arrays(v) for v in obj]
    return obj


def load_source(src: str, name: str = "generated") -> dict:
    """A generated script's namespace (its top level run, not its main()): for the code-export tests."""
    import types

    mod = types.ModuleType(name)
    sys.modules[name] = mod          # dataclasses look their module up while the class is made
    try:
        exec(compile(src, f"{name}.py", "exec"), mod.__dict__)
    finally:
        del sys.modules[name]
    return mod.__dict__


def plotly_specs(at) -> list[dict]:
    """The figure JSON of every plotly chart on an AppTest page (numpy arrays decoded)."""
    import json

    return [_decode_arrays(json.loads(el.proto.spec)) for el in at.get("plotly_chart")]


def run_history(at, app_test):
    """The Run history page's table in the same session as ``at``."""
    hist = app_test(HISTORY)
    for k in ("_runs.records", "_runs.live"):
        if k in at.session_state:
            hist.session_state[k] = at.session_state[k]
    hist.run()
    assert not hist.exception
    return hist.dataframe[0].value
