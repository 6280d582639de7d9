"""The load benchmark's protocol client (bench/streamlit_client.py) against a live server: one
simulated student opens the Basics page, presses Play, sees Steps grow, presses Pause and gets
"▶ Play" back. If this passes, `python bench/load.py` measures what a browser would see."""
from __future__ import annotations

import asyncio
import time

import pytest

from bench.load import PAGE, PAUSE, PLAY, QUERY, STEPS, page_ready, steps_now
from bench.streamlit_client import BrowserSession, check_loopback, metric_int
from tests.browser.conftest import start_streamlit, stop_streamlit


def test_only_loopback_servers_are_accepted():
    assert check_loopback("http://127.0.0.1:8501") == ("127.0.0.1", 8501)
    for bad in ("http://192.0.2.1:8501", "https://127.0.0.1:8501", "127.0.0.1:8501", "http://127.0.0.1"):
        with pytest.raises(ValueError):
            check_loopback(bad)


@pytest.fixture(scope="module")
def server_url():
    try:
        proc, url = start_streamlit()
    except (RuntimeError, OSError) as e:
        pytest.skip(f"cannot start `streamlit run app.py` for the client test: {e}")
    yield url
    stop_streamlit(proc)


async def _play_then_pause(url: str) -> dict:
    s = BrowserSession(url, PAGE, QUERY, name="test", watch_metrics=(STEPS,))
    out: dict = {}
    try:
        await s.start()
        out["loaded"] = await s.wait_for(page_ready, 90)
        if not out["loaded"]:
            return out
        out["steps0"] = steps_now(s)
        out["widgets"] = len(s.widgets.states)
        out["played"] = await s.click(PLAY)
        out["pause_shown"] = await s.wait_for(lambda x: x.tree.button(PAUSE) is not None, 20)
        out["grew"] = await s.wait_for(lambda x: steps_now(x) > out["steps0"] + 10, 20)
        out["ticks"] = s.ticks_sent
        out["paused"] = await s.click(PAUSE)
        out["play_back"] = await s.wait_for(lambda x: x.tree.button(PLAY) is not None, 20)
        await asyncio.sleep(1.5)                # let a fragment run still in flight land
        s1 = steps_now(s)
        await asyncio.sleep(1.5)
        out["steps_after_pause"] = (s1, steps_now(s))
        out["errors"] = list(s.errors)
        out["steps_metric"] = s.tree.metric(STEPS)
    finally:
        await s.close()
    return out


@pytest.mark.timeout(120)
def test_one_student_plays_and_pauses(server_url):
    t0 = time.monotonic()
    out = asyncio.run(asyncio.wait_for(_play_then_pause(server_url), 110))
    assert out["loaded"], "the page never showed '▶ Play' and the 'Steps' metric"
    assert out["widgets"] > 5, "the mounted widgets' values were not kept like the frontend does"
    assert out["played"] and out["pause_shown"], "pressing Play did not turn the button into Pause"
    assert out["grew"], "Steps did not increase while playing"
    assert out["ticks"] > 0, "the fragment's run_every timer never fired"
    assert out["paused"] and out["play_back"], "Pause was not honoured ('▶ Play' did not come back)"
    before, after = out["steps_after_pause"]
    assert before == after, f"Steps kept changing after Pause: {before} -> {after}"
    assert metric_int(out["steps_metric"]) == after
    assert out["errors"] == []
    assert time.monotonic() - t0 < 110
