"""The training doctor on a page: one alert per finding, or a "✅ Healthy so far" line.

    from playground.ui.doctor_view import render_doctor
    render_doctor(trainer, page="dna")      # inside the live fragment's draw(trainer)

The diagnosis (``playground.doctor.diagnose``) runs once per epoch of a run (and again when the
run stops or its learning rate changes), not on every redraw: its result is kept in the
session under ``key``.
"""
from __future__ import annotations

import streamlit as st

from playground import doctor

ALERTS = {"error": (st.error, "🛑"), "warning": (st.warning, "⚠️"), "info": (st.info, "💡")}


def _stamp(trainer) -> tuple:
    """What the diagnosis depends on: the run, its epoch, how it stopped, its learning rate."""
    cfg = getattr(trainer, "config", None)
    return (id(trainer), id(getattr(trainer, "model", None)), len(getattr(trainer, "history", []) or []),
            getattr(trainer, "diverged", None), getattr(trainer, "stopped", None),
            getattr(trainer, "current_lr", None) or getattr(cfg, "lr", None), getattr(trainer, "released", None))


def findings_for(trainer, page: str | None = None, key: str = "doctor") -> list[doctor.Finding]:
    """The doctor's findings for ``trainer``, computed once per epoch and kept in the session."""
    slot = f"_doctor.{key}"
    stamp = _stamp(trainer)
    cached = st.session_state.get(slot)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    found = doctor.diagnose(trainer, page=page)
    st.session_state[slot] = (stamp, found)
    return found


def render_doctor(trainer, page: str | None = None, key: str = "doctor", checks: bool = True) -> list[doctor.Finding]:
    """Draw the doctor's findings for ``trainer`` compactly: one st.error / st.warning / st.info
    per finding (what is happening, then one thing to try), or one "✅ Healthy so far" line;
    then, with ``checks``, an expander saying how the doctor decides. Returns the findings."""
    if trainer is None:
        return []
    found = findings_for(trainer, page=page, key=key)
    if not found:
        st.caption("🩺 The training doctor could not read this run.")
    for f in found:
        if f.code == "healthy":
            st.markdown(f"✅ **{f.title}** · {f.message}")
            continue
        alert, icon = ALERTS.get(f.severity, ALERTS["info"])
        alert(f"**{f.title}.** {f.message}  \n👉 **Try:** {f.try_this}", icon=icon)
    if checks:
        with st.expander("🩺 How the doctor decides"):
            st.markdown("After every epoch the doctor reads the loss curves and looks inside the network "
                        "(one forward and one backward pass on a small batch; your weights, optimizer and "
                        "random numbers stay exactly as they were). It is the course's debugging checklist, "
                        "run live:\n\n" + "\n".join(f"- **{name}**: {how}" for name, how in doctor.CHECKS))
    return found
