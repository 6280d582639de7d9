"""Page state <-> URL query parameters (the TF Playground idea: every screen is a link).

A page's settings are a ``playground.settings.Schema`` (declared in its setup module,
``playground/setups/<page>.py``). ``PageState.load()`` runs first:
- a link opened with query parameters sets the widgets from them (garbage is ignored with a
  warning and the default used);
- otherwise the widgets keep what this session last had on the page (switching pages in
  the sidebar drops query parameters; nothing the user set is lost).
Widgets then use ``key=state.key(name)`` and no ``value=``/``index=`` argument.
``PageState.sync()`` runs last and writes the current settings back to the URL.
"""
from __future__ import annotations

import streamlit as st

from playground.settings import CLASSROOM_PARAMS, Param, Schema, common_params  # noqa: F401 (re-exported)


# "<page>._<name>" slots the library keeps for a page (LiveTraining, the model panel): a page's own
# private slots must not reuse them.
LIBRARY_SLOTS = ("trainer", "playing", "signature", "thread", "kept")
# "<page>.<name>" widget keys of the library's buttons (LiveTraining, the model panel): no page setting
# may be called so.
LIBRARY_WIDGETS = ("play", "pause", "step", "reset", "keep", "dl_bundle", "dl_history", "dl_code")


class PageState:
    """The URL, the session, lock and hide for one page's ``Schema`` (nothing more).

    ``PageState(schema)``, or ``PageState(page, params)`` for a page without a setup module.
    ``private`` declares the page's other session slots (a cached comparison, a loaded model):
    ``state.slot(name)`` is their session key, and an undeclared name is an error."""

    def __init__(self, page: "str | Schema", params: list[Param] | None = None, with_common: bool = True,
                 private: tuple[str, ...] = ()):
        schema = page if isinstance(page, Schema) else Schema(page, list(params or []), with_common)
        self.schema = schema
        self.page = schema.page
        self.params = schema.params
        clash = [n for n, p in schema.params.items() if p.scope == "page" and n in LIBRARY_WIDGETS]
        if clash:
            raise ValueError(f"page {self.page}: setting(s) {', '.join(clash)} would share a widget key with the "
                             f"library's buttons: pick another name")
        taken = [n for n in private if n in LIBRARY_SLOTS or n.startswith("cache.")]
        if taken:
            raise ValueError(f"page {self.page}: private slot(s) {', '.join(taken)} are used by the library "
                             f"(playground.ui.live / runs): pick another name")
        self.private = tuple(private)
        self.warnings: list[str] = []
        self._finishers: list = []

    def slot(self, name: str) -> str:
        """The session key of one of the page's declared private slots."""
        if name not in self.private:
            raise KeyError(f"page {self.page}: undeclared private session slot {name!r} (declare it in private=)")
        return f"{self.page}._{name}"

    @property
    def settings_names(self) -> list[str]:
        """The page's own settings (not the classroom parameters)."""
        return self.schema.settings_names

    def signature(self) -> str:
        """The rebuild signature of the current values (every setting neither live nor view)."""
        return self.schema.signature(self.values())

    def key(self, name: str) -> str:
        p = self.params[name]
        return name if p.scope == "global" else f"{self.page}.{name}"

    @property
    def _saved_key(self) -> str:
        return f"_saved.{self.page}"

    @property
    def _applied_key(self) -> str:
        return f"_url_applied.{self.page}"

    def load(self) -> list[str]:
        """Fill the widgets' session-state keys from the URL, or from this session's saved
        values, or from defaults. Returns warnings about ignored URL parameters."""
        ss = st.session_state
        qp = {k: st.query_params.get_all(k)[-1] for k in st.query_params.keys()}
        saved = ss.get(self._saved_key, {})
        warnings = []
        applied_now = bool(qp) and qp != ss.get(self._applied_key)
        if applied_now:
            if qp.get("lesson") and "step" in qp:
                # A lesson step's link: what it does not set takes the page's default (the
                # step's exact settings), not what this session had before.
                for name, p in self.params.items():
                    if name not in qp and name not in ("device", "projector"):
                        ss[self.key(name)] = p.default
            decoded, warnings = self.schema.decode_query(qp)
            for name, value in decoded.items():
                ss[self.key(name)] = value
            ss[self._applied_key] = qp
        for name, p in self.params.items():
            k = self.key(name)
            if k not in ss:
                glob = ss.get("_saved._global", {})
                ss[k] = glob.get(name, p.default) if p.scope == "global" else saved.get(name, p.default)
        self._enforce_locks(applied_now)
        self.warnings = warnings
        return warnings

    @property
    def _locked_key(self) -> str:
        return f"_locked.{self.page}"

    def _enforce_locks(self, fresh: bool) -> None:
        """Settings named in ``lock`` keep the value they had when they were locked (the
        teacher's link): a change to a locked control is undone before it is drawn."""
        if "lock" not in self.params:
            return
        ss = st.session_state
        snap = {} if fresh else dict(ss.get(self._locked_key, {}))
        lock = [n for n in (self.get("lock") or []) if n in self.params and n not in CLASSROOM_PARAMS]
        snap = {n: v for n, v in snap.items() if n in lock}
        for n in lock:
            if n in snap:
                ss[self.key(n)] = snap[n]
            else:
                snap[n] = ss.get(self.key(n), self.params[n].default)
        ss[self._locked_key] = snap

    def locked(self) -> list[str]:
        return [n for n in (self.get("lock") or []) if n in self.params] if "lock" in self.params else []

    def hidden(self) -> list[str]:
        return [n for n in (self.get("hide") or []) if n in self.params] if "hide" in self.params else []

    def at_finish(self, fn) -> None:
        """Call ``fn()`` at the end of ``sync()``, after the page has drawn everything (e.g. a
        sidebar panel that reports on the run the page just trained)."""
        self._finishers.append(fn)

    def get(self, name: str):
        return st.session_state.get(self.key(name), self.params[name].default)

    def set(self, name: str, value) -> None:
        st.session_state[self.key(name)] = value

    def values(self) -> dict:
        return {name: self.get(name) for name in self.params}

    def sync(self) -> None:
        """Save the page's settings for this session and write them into the URL."""
        ss = st.session_state
        vals = self.values()
        ss[self._saved_key] = {n: v for n, v in vals.items() if self.params[n].scope == "page"}
        ss["_saved._global"] = {**ss.get("_saved._global", {}),
                                **{n: v for n, v in vals.items() if self.params[n].scope == "global"}}
        encoded = self.schema.encode_query(vals)
        current = {k: st.query_params.get_all(k)[-1] for k in st.query_params.keys()}
        if current != encoded:
            st.query_params.from_dict(encoded)
        ss[self._applied_key] = encoded
        finishers, self._finishers = self._finishers, []
        for fn in finishers:
            fn()

    def link_params(self, **overrides) -> dict:
        """Query parameters for a link to this page's current state (plus overrides)."""
        vals = {**self.values(), **overrides}
        return self.schema.encode_query(vals)
