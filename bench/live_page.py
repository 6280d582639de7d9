"""Live-page benchmark: start the app, press Play on the Neural Network Basics page in a real
browser (Debian chromium via Playwright) for 10 s, and count what a student sees.

    python bench/live_page.py [--seconds 10]

Network: 2 inputs -> 8 -> 8 (tanh), 500 points (50 % train), batch 10, Adam.
A redraw is counted each time the "Steps" number on the page changes.
Ends with the lines `redraws_per_s: X` and `steps_per_s: Y` (targets: >= 5 and >= 1000 on 2 cores).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, browser_missing_reason, start_streamlit  # noqa: E402

QUERY = "dataset=circle&layers=2&n1=8&n2=8&activation=tanh&optimizer=adam&lr=0.03&batch=10&train_pct=50&seed=1"


def read_steps(page) -> int | None:
    txt = page.evaluate("""() => {
        for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
            if (m.innerText.startsWith('Steps')) return m.innerText;
        }
        return null;
    }""")
    if not txt:
        return None
    digits = "".join(ch for ch in txt.split("\n")[-1] if ch.isdigit())
    return int(digits) if digits else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    reason = browser_missing_reason()
    if reason:
        sys.exit(f"cannot run: {reason}")
    from playwright.sync_api import sync_playwright

    proc, url = start_streamlit()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/Neural_Network_Basics?{QUERY}", timeout=90_000)
            page.get_by_role("button", name="▶ Play").wait_for(timeout=90_000)
            deadline = time.time() + 60
            while read_steps(page) is None and time.time() < deadline:
                time.sleep(0.2)
            page.get_by_role("button", name="▶ Play").click()
            page.get_by_role("button", name="⏸ Pause").wait_for()
            time.sleep(1.0)  # let playing settle (the first tick follows a full rerun)
            s0 = read_steps(page) or 0
            t0 = time.time()
            last, redraws = s0, 0
            while time.time() - t0 < args.seconds:
                s = read_steps(page)
                if s is not None and s != last:
                    redraws += 1
                    last = s
                time.sleep(0.02)
            elapsed = time.time() - t0
            page.get_by_role("button", name="⏸ Pause").click()
            browser.close()
    finally:
        proc.terminate()
    steps = last - s0
    print(f"network: 2 -> 8 -> 8 tanh, 500 points, batch 10, Adam; {elapsed:.1f} s of Play")
    print(f"redraws: {redraws}, steps: {steps}")
    print(f"redraws_per_s: {redraws / elapsed:.2f}")
    print(f"steps_per_s: {steps / elapsed:.0f}")


if __name__ == "__main__":
    main()
