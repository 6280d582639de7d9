"""Lessons and classroom mode in the UI.

- ``lesson_panel(state)``: the active lesson in the shared sidebar (every page calls ``sidebar``,
  so no page needs code for it): progress, the step's text, Back / Next, the question with its
  answer on click, and the step's expectations, checked against the run the page trains.
- ``classroom_css(state)``: projector mode (bigger text, thicker plot lines, high contrast) and a
  teacher link's hidden / locked controls, as CSS on the ``st-key-<widget key>`` class Streamlit
  puts on every keyed widget (``.`` in a key becomes ``-``): pages need no changes.
- ``classroom_controls(state)``: the projector switch and the teacher-link builder.
- ``lesson_catalog()``: the lessons and challenges, each step a plain link (landing page).

A lesson step is applied through its link: ``lesson=<id>&step=<n>&<settings>``. ``PageState.load``
gives every setting the link does not name its default, so the page shows the step's exact
settings; Back / Next set the next step's link and rerun (or switch page).
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import streamlit as st
from streamlit.errors import StreamlitAPIException

from playground import lessons as L
from playground.ui.live import LiveTraining
from playground.ui.state import PageState

BEST_KEY = "_challenge.best"      # lesson id -> (score, epoch, settings)
CURRENT_KEY = "_lesson.current"   # (lesson id, step, page) last shown: a change resets the run
GOTO_KEY = "_lesson.goto"         # (page path, query) to switch to on the next run
REF_KEY = "_lesson.refs"          # cache of reference runs for 'than' expectations


# ---- lessons on disk ------------------------------------------------------------------------------
def _fingerprint(directory: Path) -> tuple:
    return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in L.lesson_files(directory))


@st.cache_resource(show_spinner=False, max_entries=4)
def _load(directory: str, fingerprint: tuple):
    return L.load_all(directory)


def catalog(directory: Path | str = L.LESSON_DIR) -> tuple[list[L.Lesson], list[L.LessonError]]:
    """Every lesson and challenge (re-read when a file changes) and the files that failed."""
    d = Path(directory)
    return _load(str(d), _fingerprint(d))


def find(lesson_id: str) -> L.Lesson | None:
    lessons, _ = catalog()
    return next((x for x in lessons if x.id == lesson_id), None)


def page_of(state: PageState) -> L.PageInfo | None:
    return next((p for p in L.PAGES.values() if p.state == state.page), None)


# ---- CSS ----------------------------------------------------------------------------------------
def widget_class(key: str) -> str:
    """The CSS class Streamlit 1.67 gives a keyed widget's container (frontend: 'st-key-' + the
    key with every character outside [a-zA-Z0-9_-] replaced by '-')."""
    return "st-key-" + re.sub(r"[^a-zA-Z0-9_-]", "-", key.strip())


PROJECTOR_CSS = """
html { font-size: 20px; }
.stApp [data-testid="stMarkdownContainer"] p, .stApp li, .stApp label { color: #000 !important; }
.stApp button [data-testid="stMarkdownContainer"] p { color: inherit !important; }
.stApp button[data-testid^="stBaseButton"] { padding-left: 0.45rem !important; padding-right: 0.45rem !important; }
h1 { font-size: 2.4rem !important; } h4 { font-size: 1.35rem !important; }
div[data-testid="stMetricValue"] { font-size: 2.1rem !important; font-weight: 700; }
div[data-testid="stMetricLabel"] p { font-size: 1.05rem !important; font-weight: 600; }
section[data-testid="stSidebar"] { min-width: 380px !important; }
div[data-testid="stCaptionContainer"] { color: #222 !important; }
.js-plotly-plot .scatterlayer .js-line { stroke-width: 4.5px !important; }
.js-plotly-plot .scatterlayer .point { stroke: #000 !important; stroke-width: 1.2px !important; }
.js-plotly-plot .main-svg text { fill: #000 !important; font-weight: 600 !important; }
.js-plotly-plot .gridlayer path { stroke: #9a9a9a !important; }
.js-plotly-plot .zerolinelayer path { stroke: #000 !important; stroke-width: 2px !important; }
.js-plotly-plot .xaxislayer-above path, .js-plotly-plot .yaxislayer-above path { stroke: #000 !important; }
div[data-testid="stToolbar"], footer { display: none !important; }
"""


def classroom_css(state: PageState) -> str:
    """The CSS for projector mode and for the controls a link hides or locks."""
    parts = []
    for name in state.hidden():
        parts.append(f".{widget_class(state.key(name))} {{ display: none !important; }}")
    for name in state.locked():
        cls = widget_class(state.key(name))
        parts.append(f".{cls} {{ pointer-events: none !important; opacity: 0.6; }}")
        parts.append(f".{cls} label p::after {{ content: ' 🔒'; }}")
    if state.get("projector"):
        parts.append(PROJECTOR_CSS)
    return "\n".join(parts)


def inject_css(state: PageState) -> None:
    css = classroom_css(state)
    if css:
        st.html(f"<style>{css}</style>")


# ---- links --------------------------------------------------------------------------------------
def base_url() -> str:
    """The app's address as the browser sees it (for copyable links); '' when unknown."""
    try:
        url = st.context.url or ""
    except Exception:  # noqa: BLE001 - not in a browser session (AppTest)
        url = ""
    if not url:
        return ""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    known = {L.page_url_path(p) for p in L.PAGES.values()}
    last = path.rsplit("/", 1)[-1] if path else ""
    if last in known or last in ("Home", "app"):
        path = path[: -len(last)].rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path}"


def step_link(lesson: L.Lesson, number: int, label: str | None = None, icon: str | None = None,
              projector: bool = False, key: str | None = None) -> None:
    """A plain link (st.page_link with the step's query parameters) to a lesson step."""
    step = lesson.step(number)
    label = label or f"{number}. {step.title}"
    try:
        st.page_link(step.page_info.path, label=label, icon=icon, query_params=L.step_query(lesson, number, projector))
    except StreamlitAPIException:   # a page run on its own (tests) has no navigation: a plain link
        st.markdown(f"{icon or ''} [{label}]({L.step_url(lesson, number, base_url(), projector)})")


# ---- the panel ----------------------------------------------------------------------------------
def _go(state: PageState, lesson: L.Lesson, number: int) -> None:
    """Callback of Back / Next / Restart: open step ``number``'s link. Controls a teacher's link
    locked or hid on top of the lesson's own stay locked or hidden."""
    step = lesson.step(number)
    query = L.step_query(lesson, number, bool(state.get("projector")))
    current = min(max(int(state.get("step")), 1), len(lesson))
    for name, own, now in (("lock", lesson.locked, state.locked), ("hide", lesson.hidden, state.hidden)):
        extra = [x for x in now() if x not in own(current) and x in step.page_info.settings]
        merged = list(dict.fromkeys([*own(number), *extra]))
        if merged:
            query[name] = ",".join(merged)
    st.session_state.pop(CURRENT_KEY, None)   # a fresh run, even when the step is the same
    if step.page_info.state == state.page:
        st.query_params.from_dict(query)
    else:
        st.session_state[GOTO_KEY] = (step.page_info.path, query)


def _leave(state: PageState) -> None:
    for name in ("lesson", "lock", "hide"):
        state.set(name, state.params[name].default)
    state.set("step", 1)
    st.session_state.pop(CURRENT_KEY, None)


def lesson_panel(state: PageState) -> None:
    """The active lesson (``lesson=`` in the URL) in the sidebar. Call inside ``st.sidebar``."""
    goto = st.session_state.pop(GOTO_KEY, None)
    if goto:
        try:
            st.switch_page(goto[0], query_params=goto[1])
        except StreamlitAPIException:   # a page run on its own (tests) cannot switch: the panel links there
            pass
    lesson_id = state.get("lesson")
    if not lesson_id:
        return
    lesson = find(lesson_id)
    if lesson is None:
        st.warning(f"This link names the lesson `{lesson_id}`, which does not exist (any more). "
                   "Pick one from the list on the home page.", icon="📚")
        return
    number = min(max(int(state.get("step")), 1), len(lesson))
    step = lesson.step(number)
    here = page_of(state)
    on_page = here is not None and step.page == here.key
    current = (lesson.id, number, state.page)
    settings_sig = repr(sorted(L.full_settings(step).items()))
    prev = st.session_state.get(CURRENT_KEY)
    if prev is None or prev[:3] != current:
        if on_page and (prev is None or prev[3] != settings_sig):
            LiveTraining(state.page).reset()     # a new exercise starts a fresh run (same settings: keep it)
        st.session_state[CURRENT_KEY] = (*current, settings_sig)

    challenge = lesson.kind == "challenge"
    with st.container(border=True, key="lesson_panel"):
        head = "🏆 Challenge" if challenge else f"📘 Lesson {lesson.number}" if lesson.number else "📘 Lesson"
        st.markdown(f"**{head}: {lesson.title}**")
        if not challenge:
            st.progress(number / len(lesson), text=f"Step {number} of {len(lesson)}: **{step.title}**")
        if not on_page:
            st.info(f"This step runs on the **{step.page_info.title}** page.", icon="➡️")
            step_link(lesson, number, label=f"Open step {number} there", icon="➡️",
                      projector=bool(state.get("projector")))
        st.markdown(step.text)
        if step.question:
            st.markdown(f"**❓ {step.question}**")
            with st.expander("💡 Show the answer"):
                st.markdown(step.answer)
        slot = st.empty()
        if on_page and (step.expect or challenge):
            state.at_finish(lambda: _checks(state, lesson, number, slot))
        if not challenge:
            b1, b2 = st.columns(2)
            b1.button("⬅ Back", key="lesson.back", on_click=_go, args=(state, lesson, number - 1),
                      disabled=number <= 1, width="stretch")
            b2.button("Next ➡", key="lesson.next", on_click=_go, args=(state, lesson, number + 1),
                      disabled=number >= len(lesson), type="primary", width="stretch")
        c1, c2 = st.columns(2)
        c1.button("↺ Restart", key="lesson.restart", on_click=_go, args=(state, lesson, number),
                  width="stretch", help="Put every setting back to this step's values and start a fresh run.")
        c2.button("✖ Leave", key="lesson.leave", on_click=_leave, args=(state,), width="stretch",
                  help="Close the lesson; the page keeps its current settings.")
        url = L.step_url(lesson, number, base_url())
        with st.expander("🔗 Link to this step"):
            st.code(url, language=None, wrap_lines=True)
            st.caption("Anyone who opens it sees this step with exactly these settings.")


def _reference(state: PageState, step: L.Step, exp: L.Expectation, settings: dict) -> float:
    cache = st.session_state.setdefault(REF_KEY, {})
    key = repr((step.page, sorted(settings.items()), sorted(exp.than.items()), exp.metric, exp.epochs))
    if key not in cache:
        with st.spinner("Training the reference run for the comparison …"):
            cache[key] = L.reference_value(step, exp, settings)
    return cache[key]


def _checks(state: PageState, lesson: L.Lesson, number: int, slot) -> None:
    """The step's expectations (or the challenge's target) judged on the page's current run;
    refreshed every second while the page trains."""
    live = LiveTraining(state.page)

    @st.fragment(run_every=1.0 if live.playing else None)
    def _draw():
        live.companion(1.0)       # ▶ / ⏸ in the live view start and stop this timer too
        step = lesson.step(number)
        tr = live.trainer
        settings = {**step.page_info.settings, **{k: v for k, v in state.values().items()
                                                  if k in step.page_info.settings}}
        if tr is not None and not tr.config.track_metrics:
            tr.config.track_metrics = True     # the checks may need accuracy, MCC, R² per epoch
        extras = L.live_extras(step.page, settings)
        if lesson.kind == "challenge":
            _challenge(state, lesson, tr, settings, extras)
            return
        st.markdown("**Check**")
        results = []
        for exp in step.expect:
            ref = None
            if exp.than is not None and tr is not None and (tr.epoch >= exp.epochs or tr.done):
                ref = _reference(state, step, exp, settings)
            r = L.assess(exp, tr, settings, step.page, extras, ref)
            results.append(r)
            st.markdown(r.message)
        if results and not any(e.needs_trainer for e in step.expect):
            st.caption("Measured by the playground for this step's settings.")
        elif results and all(r.passed for r in results):
            st.success("Every check passed." + (" On to the next step!" if number < len(lesson) else
                                                " That was the last step."), icon="🎉")
        elif any(r.status == "pending" for r in results):
            st.caption("Press ▶ Play (or ⏭ Step): the checks update while the page trains.")

    with slot.container():
        _draw()


def _challenge(state: PageState, lesson: L.Lesson, tr, settings: dict, extras: dict) -> None:
    ch = lesson.challenge
    st.markdown(f"**Target:** {ch.target.describe()}, with the fewest {L.LABELS.get(ch.minimize, ch.minimize)}.")
    best = st.session_state.setdefault(BEST_KEY, {})
    changed = L.fixed_violations(lesson, settings)
    if changed:
        st.warning(f"The challenge keeps {', '.join(changed)} fixed: put {'it' if len(changed) == 1 else 'them'} back "
                   "(↺ Restart step) for the score to count.", icon="⚠️")
    r = L.assess(ch.target, tr, settings, lesson.steps[0].page, extras)
    score = L.challenge_score(lesson, tr) if tr is not None else None
    if r.passed and not changed and score is not None:
        prev = best.get(lesson.id)
        if prev is None or score < prev[0]:
            best[lesson.id] = (score, r.epoch, {k: v for k, v in settings.items()})
        st.success(f"Target reached at epoch {r.epoch} with **{score:.0f} parameters**.", icon="🏆")
    else:
        st.markdown(r.message + (f" · {score:.0f} parameters" if score is not None else ""))
    if lesson.id in best:
        st.metric("Your best (this session)", f"{best[lesson.id][0]:.0f} parameters")
    if ch.solution:
        with st.expander("🔑 Show one solution"):
            if ch.solution_text:
                st.markdown(ch.solution_text)
            query = L.step_query(lesson, 1)
            query.update({k: L.encode(v) for k, v in ch.solution.items()})
            try:
                st.page_link(lesson.steps[0].page_info.path, label="Try it on the page", icon="▶️", query_params=query)
            except StreamlitAPIException:
                from urllib.parse import urlencode

                st.markdown(f"▶️ [Try it on the page]({base_url()}/{L.page_url_path(lesson.steps[0].page_info)}"
                            f"?{urlencode(query)})")


# ---- classroom controls -------------------------------------------------------------------------
def _unlock(state: PageState) -> None:
    state.set("lock", [])
    state.set("hide", [])


def classroom_controls(state: PageState) -> None:
    """Projector switch and the teacher-link builder (in the sidebar)."""
    locked, hidden = state.locked(), state.hidden()
    with st.expander("🏫 Classroom", expanded=bool(state.get("projector") and not state.get("lesson"))):
        st.toggle("📽️ Projector mode", key="projector",
                  help="Bigger text, thicker lines, high contrast; the toolbar is hidden.")
        names = [n for n in state.settings_names if n not in ("device",)]
        if names and page_of(state) is not None:
            st.markdown("**Teacher link**: lock or hide controls, then copy the link.")
            st.multiselect("Lock (visible, cannot be changed)", names, key=state.key("lock"))
            st.multiselect("Hide", names, key=state.key("hide"))
            if locked or hidden:
                st.button("🔓 Unlock and show every control", key="classroom.unlock", on_click=_unlock, args=(state,))
            base = base_url()
            if base:
                here = page_of(state)
                query = state.link_params()
                from urllib.parse import urlencode

                st.code(f"{base}/{L.page_url_path(here)}?{urlencode(query)}", language=None, wrap_lines=True)
                st.caption("This link opens the page exactly as it is now, with these controls locked or hidden.")
    if locked and not state.get("lesson"):
        st.caption("🔒 Locked by the link: " + ", ".join(locked))


# ---- the landing page ---------------------------------------------------------------------------
def lesson_catalog(projector: bool = False) -> None:
    """Every lesson (with each step as a link) and every challenge; files that fail validation
    are reported with the file and the field."""
    lessons, errors = catalog()
    for e in errors:
        st.error(str(e), icon="🚫")
    regular = [x for x in lessons if x.kind == "lesson"]
    challenges = [x for x in lessons if x.kind == "challenge"]
    cols = st.columns(2)
    for i, les in enumerate(regular):
        pages = sorted({s.page_info.title for s in les.steps})
        with cols[i % 2].container(border=True):
            st.markdown(f"**{les.number}. {les.title}**")
            st.caption(f"{les.summary}  \n{len(les)} steps · {' & '.join(pages)}")
            step_link(les, 1, label="Start the lesson", icon="▶️", projector=projector)
            with st.expander("Steps"):
                for n in range(1, len(les) + 1):
                    step_link(les, n, projector=projector)
    if challenges:
        st.markdown("#### 🏆 Challenges")
        for les in challenges:
            with st.container(border=True):
                st.markdown(f"**{les.title}**")
                st.caption(les.summary)
                step_link(les, 1, label="Take the challenge", icon="🏆", projector=projector)
