"""Real-browser fixtures: `streamlit run app.py` on localhost + Debian's chromium driven by
Playwright. Skipped, with the reason, where chromium or playwright is missing."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser_missing_reason() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) to run browser tests"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "python playwright not installed (pip install -r requirements-dev.txt)"
    return None


def start_streamlit(port: int | None = None, extra_env: dict | None = None, *, script: str = "app.py",
                    cwd: Path = ROOT, timeout: float = 60, quiet: bool = False):
    """``streamlit run script`` on localhost (from ``cwd``), waited for until /_stcore/health answers.
    ``quiet``: the server's output is dropped (a long benchmark must not fill an unread pipe)."""
    port = port or _free_port()
    env = {**os.environ, "PLAYGROUND_NUM_THREADS": "1", **(extra_env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL if quiet else subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.3)
        if proc.poll() is not None:
            out = "" if quiet else ": " + proc.stdout.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"streamlit exited with {proc.returncode}{out}")
    proc.kill()
    raise RuntimeError(f"streamlit did not start within {timeout:.0f} s")


def stop_streamlit(proc) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def offline_server(tmp_path_factory):
    """A server of its own with no ESM-2 weights and downloads switched off (an empty TORCH_HOME)."""
    home = tmp_path_factory.mktemp("torch_home")
    proc, url = start_streamlit(extra_env={"PLAYGROUND_OFFLINE": "1", "TORCH_HOME": str(home)})
    yield url
    stop_streamlit(proc)


@pytest.fixture(scope="session")
def server_url():
    reason = browser_missing_reason()
    if reason:
        pytest.skip(reason)
    proc, url = start_streamlit()
    yield url
    stop_streamlit(proc)


def metric(page, label: str) -> str:
    """The value shown under an st.metric with this label."""
    txt = page.locator('[data-testid="stMetric"]', has_text=label).first.inner_text()
    return txt.split("\n")[-1].strip()


def metric_int(page, label: str) -> int:
    """An integer metric ("1,234" -> 1234; 0 when empty)."""
    return int(re.sub(r"\D", "", metric(page, label)) or 0)


def epoch_on_page(page) -> int:
    return metric_int(page, "Epoch")


@pytest.fixture(scope="session")
def browser():
    reason = browser_missing_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    ctx.close()


def screenshot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_for_app(page) -> None:
    """Wait until Streamlit finished running the script (no 'running' indicator)."""
    page.wait_for_selector('[data-testid="stApp"]')
    # While a script runs, Streamlit 1.67 shows a status widget with "Running..." or a "Stop" button.
    page.wait_for_function(
        """() => { const w = document.querySelector('[data-testid="stStatusWidget"]');
                   return !w || !(w.innerText.includes('Running') || w.innerText.includes('Stop')); }""",
        timeout=60_000)
    page.wait_for_timeout(500)
