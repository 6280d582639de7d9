"""The load benchmark's protocol client (bench/streamlit_client.py) against a live server: one
simulated student opens the Basics page, presses Play, sees Steps grow, presses Pause and gets
"▶ Play" back. If this passes, `python bench/load.py` measures what a browser would see."""
from __future__ import annotations

import asyncio
import concurrent.futures
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
    out: dict = {"timeline": []}
    t0 = time.monotonic()

    def mark(what):
        out["timeline"].append(f"{what} {time.monotonic() - t0:.1f}s")
    try:
        await s.start()
        out["loaded"] = await s.wait_for(page_ready, 60)      # the first run imports torch
        mark("loaded" if out["loaded"] else "not loaded")
        if not out["loaded"]:
            return out
        out["steps0"] = steps_now(s)
        out["widgets"] = len(s.widgets.states)
        out["played"] = await s.click(PLAY)
        out["pause_shown"] = await s.wait_for(lambda x: x.tree.button(PAUSE) is not None, 15)
        mark("pause shown" if out["pause_shown"] else "no pause button")
        # the numbers keep moving: several successive new Steps values (redraws), not just the one
        # the Play run drew
        hist = s.metric_changes[STEPS]
        n0 = len(hist)
        out["grew"] = await s.wait_for(
            lambda x: len(hist) >= n0 + 3 and metric_int(hist[-1][1]) > out["steps0"], 20)
        out["redraws"] = len(hist) - n0
        mark(f"{out['redraws']} redraws")
        out["paused"] = await s.click(PAUSE)
        out["play_back"] = await s.wait_for(lambda x: x.tree.button(PLAY) is not None, 15)
        mark("play back" if out["play_back"] else "no play button")
        await asyncio.sleep(1.5)                # let a fragment run still in flight land
        s1 = steps_now(s)
        await asyncio.sleep(1.5)
        out["steps_after_pause"] = (s1, steps_now(s))
        out["steps_metric"] = s.tree.metric(STEPS)
    finally:
        out["errors"] = list(s.errors)
        await s.close()
    return out


@pytest.mark.timeout(150)
def test_one_student_plays_and_pauses(server_url):
    t0 = time.monotonic()
    # every wait inside is bounded (<= 120 s); run in a thread of its own, since Playwright's sync API
    # (session-wide browser fixture) may keep an event loop running in this one
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        out = pool.submit(asyncio.run, _play_then_pause(server_url)).result()
    when = f" ({', '.join(out['timeline'])}; errors: {out['errors']})"
    assert out["loaded"], "the page never showed '▶ Play' and the 'Steps' metric" + when
    assert out["widgets"] > 5, "the mounted widgets' values were not kept like the frontend does" + when
    assert out["played"] and out["pause_shown"], "pressing Play did not turn the button into Pause" + when
    assert out["grew"], f"Steps did not keep increasing while playing ({out['redraws']} new values in 20 s)" + when
    assert out["paused"] and out["play_back"], "Pause was not honoured ('▶ Play' did not come back)" + when
    before, after = out["steps_after_pause"]
    assert before == after, f"Steps kept changing after Pause: {before} -> {after}" + when
    assert metric_int(out["steps_metric"]) == after
    assert out["errors"] == []
    assert time.monotonic() - t0 < 130
