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


def common_params() -> list[Param]:
    """Settings of the shared sidebar, present on every page."""
    return [Param("seed", 0, "int", lo=0, hi=2**31 - 1, scope="global"),
            Param("device", "cpu", "str", choices=("cpu", "cuda"), scope="global")]


class PageState:
    def __init__(self, page: str, params: list[Param], with_common: bool = True):
        self.page = page
        self.params = {p.name: p for p in ([*common_params()] if with_common else []) + list(params)}
        self.warnings: list[str] = []

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
        if qp and qp != ss.get(self._applied_key):
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
        self.warnings = warnings
        return warnings

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
        encoded = {n: self.params[n].encode(v) for n, v in vals.items()}
        current = {k: st.query_params.get_all(k)[-1] for k in st.query_params.keys()}
        if current != encoded:
            st.query_params.from_dict(encoded)
        ss[self._applied_key] = encoded

    def link_params(self, **overrides) -> dict:
        """Query parameters for a link to this page's current state (plus overrides)."""
        vals = {**self.values(), **overrides}
        return {n: self.params[n].encode(v) for n, v in vals.items() if n in self.params}
