"""Page state <-> URL query parameters (the TF Playground idea: every screen is a link).

A page declares its settings as a list of ``Param``. ``PageState.load()`` runs first:
- a link opened with query parameters sets the widgets from them (garbage is ignored with a
  warning and the default used);
- otherwise the widgets keep what this session last had on the page (switching pages in
  the sidebar drops query parameters; nothing the user set is lost).
Widgets then use ``key=state.key(name)`` and no ``value=``/``index=`` argument.
``PageState.sync()`` runs last and writes the current settings back to the URL.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import streamlit as st


@dataclass
class Param:
    name: str
    default: Any
    kind: str = "str"            # 'str', 'int', 'float', 'bool', 'list' (of str), 'ints' (list of int)
    choices: tuple | None = None  # allowed values (for str/float/int and list items)
    lo: float | None = None
    hi: float | None = None
    scope: str = "page"          # 'page' or 'global' (shared by every page, e.g. seed)
    max_len: int | None = None   # for list kinds
    omit_default: bool = False   # leave it out of the URL while it has its default value

    def encode(self, value) -> str:
        if self.kind in ("list", "ints"):
            return ",".join(str(v) for v in value)
        if self.kind == "bool":
            return "1" if value else "0"
        if self.kind == "float":
            return f"{float(value):g}"
        return str(value)

    def decode(self, raw: str):
        """Parse a URL value; raises ValueError with a readable reason."""
        raw = raw.strip()
        if self.kind == "int":
            v = int(raw)
            self._check_range(v)
        elif self.kind == "float":
            v = float(raw)
            if not math.isfinite(v):
                raise ValueError("not a finite number")
            self._check_range(v)
        elif self.kind == "bool":
            if raw.lower() not in ("1", "0", "true", "false"):
                raise ValueError("expected 1 or 0")
            v = raw.lower() in ("1", "true")
        elif self.kind == "list":
            v = [x for x in raw.split(",") if x != ""]
            bad = [x for x in v if self.choices is not None and x not in self.choices]
            if bad:
                raise ValueError(f"unknown item(s) {bad}")
            if self.max_len is not None and len(v) > self.max_len:
                raise ValueError(f"at most {self.max_len} items")
        elif self.kind == "ints":
            v = [int(x) for x in raw.split(",") if x != ""]
            for x in v:
                self._check_range(x)
            if self.max_len is not None and len(v) > self.max_len:
                raise ValueError(f"at most {self.max_len} items")
        else:
            v = raw
        if self.kind in ("str", "int", "float") and self.choices is not None and v not in self.choices:
            raise ValueError(f"must be one of {', '.join(map(str, self.choices))}")
        return v

    def _check_range(self, v):
        if self.lo is not None and v < self.lo or self.hi is not None and v > self.hi:
            raise ValueError(f"must be between {self.lo:g} and {self.hi:g}")


CLASSROOM_PARAMS = ("lesson", "step", "projector", "lock", "hide")


def common_params() -> list[Param]:
    """Settings of the shared sidebar, present on every page: seed and device, and the
    classroom ones (the active lesson and step, projector mode, and the controls a teacher's
    link locks or hides), which appear in the URL only when set."""
    return [Param("seed", 0, "int", lo=0, hi=2**31 - 1, scope="global"),
            Param("device", "cpu", "str", choices=("cpu", "cuda"), scope="global"),
            Param("lesson", "", "str", scope="global", omit_default=True),
            Param("step", 1, "int", lo=1, hi=999, scope="global", omit_default=True),
            Param("projector", False, "bool", scope="global", omit_default=True),
            Param("lock", [], "list", omit_default=True),
            Param("hide", [], "list", omit_default=True)]


class PageState:
    def __init__(self, page: str, params: list[Param], with_common: bool = True):
        self.page = page
        self.params = {p.name: p for p in ([*common_params()] if with_common else []) + list(params)}
        self.warnings: list[str] = []
        self._finishers: list = []
        controls = tuple(n for n in self.params if n not in CLASSROOM_PARAMS)
        for name in ("lock", "hide"):   # they name this page's settings
            if name in self.params:
                p = self.params[name]
                self.params[name] = Param(p.name, [], "list", choices=controls, scope=p.scope, omit_default=True)

    @property
    def settings_names(self) -> list[str]:
        """The page's own settings (not the classroom parameters)."""
        return [n for n in self.params if n not in CLASSROOM_PARAMS]

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
            for raw_name, raw in qp.items():
                if raw_name not in self.params:
                    warnings.append(f"Ignored unknown link parameter `{raw_name}`.")
                    continue
                p = self.params[raw_name]
                try:
                    ss[self.key(raw_name)] = p.decode(raw)
                except (ValueError, TypeError) as e:
                    warnings.append(f"Ignored link parameter `{raw_name}={raw[:40]}` ({e}); using the default "
                                    f"`{p.encode(p.default)}`.")
                    ss[self.key(raw_name)] = p.default
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
        encoded = {n: self.params[n].encode(v) for n, v in vals.items() if not self._omit(n, v)}
        current = {k: st.query_params.get_all(k)[-1] for k in st.query_params.keys()}
        if current != encoded:
            st.query_params.from_dict(encoded)
        ss[self._applied_key] = encoded
        finishers, self._finishers = self._finishers, []
        for fn in finishers:
            fn()

    def _omit(self, name: str, value) -> bool:
        p = self.params[name]
        return p.omit_default and value == p.default

    def link_params(self, **overrides) -> dict:
        """Query parameters for a link to this page's current state (plus overrides)."""
        vals = {**self.values(), **overrides}
        return {n: self.params[n].encode(v) for n, v in vals.items() if n in self.params and not self._omit(n, v)}
