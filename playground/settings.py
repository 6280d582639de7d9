"""One source of truth for a page's settings (TensorFlow Playground's ``State.PROPS`` idea).

A training page declares its settings once, as a list of ``Param`` in its setup module
(``playground/setups/<page>.py``). The same list drives:

- the URL (``Param.encode`` / ``Param.decode``: every screen is a link),
- the session (``playground.ui.state.PageState`` keeps the widgets' values),
- the lessons (``Schema.validate(..., strict=True)`` checks a step's settings when the file loads),
- the rebuild rule (``Schema.signature``: every setting that is neither ``live`` nor ``view``),
- the code export and the run itself (``setups.<page>.build(values)``).

``live`` settings are applied to a running trainer without a rebuild (the learning rate);
``view`` settings only change what is drawn (a chart's log scale, the selected tab) and are never
part of the run. Pure Python: never imports streamlit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from playground.errors import PlaygroundError

KINDS = ("str", "int", "float", "bool", "list", "ints")


class SettingError(PlaygroundError):
    """A setting value that cannot be used. ``field`` names the setting, ``problem`` says why."""

    def __init__(self, field_name: str, problem: str):
        self.field = field_name
        self.problem = problem
        super().__init__(f"{field_name}: {problem}")


@dataclass(frozen=True)
class Param:
    """One setting: its name (the URL key), default, type and allowed values.

    kind: 'str', 'int', 'float', 'bool', 'list' (of str) or 'ints' (list of int).
    choices: allowed values (for str/int/float, and for the items of lists).
    lo / hi: inclusive range for numbers (and for the items of 'ints').
    scope: 'page', or 'global' (shared by every page, e.g. the seed).
    live: applied to a running trainer without rebuilding it (learning rate, regularization).
    view: display only (which tab, a log scale): never part of the run.
    omit_default: left out of the URL while it has its default value.
    """

    name: str
    default: Any
    kind: str = "str"
    choices: tuple | None = None
    lo: float | None = None
    hi: float | None = None
    scope: str = "page"
    max_len: int | None = None
    omit_default: bool = False
    live: bool = False
    view: bool = False
    help: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Param {self.name}: unknown kind {self.kind!r} (one of {', '.join(KINDS)})")
        if self.choices is not None:
            object.__setattr__(self, "choices", tuple(self.choices))
        if self.kind in ("list", "ints"):
            object.__setattr__(self, "default", list(self.default))
        # the default must itself be valid: a typo in a declaration fails at import, not in a class
        self.validate(self.default)

    @property
    def in_run(self) -> bool:
        """Part of the run (and of the rebuild signature)."""
        return not (self.live or self.view)

    # -- URL text <-> value -------------------------------------------------------------------
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
            v: Any = int(raw)
        elif self.kind == "float":
            v = float(raw)
        elif self.kind == "bool":
            if raw.lower() not in ("1", "0", "true", "false"):
                raise ValueError("expected 1 or 0")
            v = raw.lower() in ("1", "true")
        elif self.kind == "list":
            v = [x for x in raw.split(",") if x != ""]
        elif self.kind == "ints":
            v = [int(x) for x in raw.split(",") if x != ""]
        else:
            v = raw
        return self.validate(v)

    # -- a Python value (a lesson's TOML, a widget, the API) -----------------------------------
    def validate(self, value):
        """Return ``value`` as this setting's type, or raise ValueError saying what is wrong
        (wrong type, not one of the choices, out of range, too many items)."""
        k = self.kind
        if k == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"must be true or false, got {value!r}")
            return value
        if k == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise ValueError(f"must be a whole number, got {value!r}")
            self._check_range(value)
        elif k == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"must be a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise ValueError("not a finite number")
            self._check_range(value)
        elif k == "str":
            if not isinstance(value, str):
                raise ValueError(f"must be a text (in quotes), got {value!r}")
        else:  # list / ints
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
                raise ValueError(f"must be a list, got {value!r}")
            out = []
            for x in value:
                if k == "ints":
                    if isinstance(x, bool) or not isinstance(x, int):
                        raise ValueError(f"must be a list of whole numbers, got item {x!r}")
                    self._check_range(x)
                    out.append(x)
                elif not isinstance(x, str):
                    raise ValueError(f"must be a list of texts, got item {x!r}")
                else:
                    out.append(x)
            bad = [x for x in out if self.choices is not None and x not in self.choices]
            if bad:
                raise ValueError(f"unknown item(s) {bad}; allowed: {', '.join(map(str, self.choices))}")
            if self.max_len is not None and len(out) > self.max_len:
                raise ValueError(f"at most {self.max_len} items")
            return out
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(map(str, self.choices))}")
        return value

    def _check_range(self, v):
        if self.lo is not None and v < self.lo or self.hi is not None and v > self.hi:
            lo = "-∞" if self.lo is None else f"{self.lo:g}"
            hi = "∞" if self.hi is None else f"{self.hi:g}"
            raise ValueError(f"must be between {lo} and {hi}")


# The classroom settings of the shared sidebar: which lesson and step, projector mode, and the
# controls a teacher's link locks or hides. They only change what is shown: never part of a run.
CLASSROOM_PARAMS = ("lesson", "step", "projector", "lock", "hide")


def common_params() -> list[Param]:
    """Settings of the shared sidebar, present on every page: seed and device (part of every
    run), and the classroom ones, which appear in the URL only when set."""
    return [Param("seed", 0, "int", lo=0, hi=2**31 - 1, scope="global"),
            Param("device", "cpu", "str", choices=("cpu", "cuda"), scope="global"),
            Param("lesson", "", "str", scope="global", omit_default=True, view=True),
            Param("step", 1, "int", lo=1, hi=999, scope="global", omit_default=True, view=True),
            Param("projector", False, "bool", scope="global", omit_default=True, view=True),
            Param("lock", [], "list", omit_default=True, view=True),
            Param("hide", [], "list", omit_default=True, view=True)]


@dataclass
class Schema:
    """A page's settings: the page's own ``Param`` list plus the shared sidebar's."""

    page: str
    own: list[Param]
    with_common: bool = True
    params: dict[str, Param] = field(init=False)

    def __post_init__(self):
        own = list(self.own)
        names = [p.name for p in own]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"schema {self.page}: settings declared twice: {', '.join(dup)}")
        params = (common_params() if self.with_common else []) + own
        controls = tuple(p.name for p in params if p.name not in CLASSROOM_PARAMS)
        # lock / hide name this page's own controls
        self.params = {p.name: (Param(p.name, [], "list", choices=controls, scope=p.scope, omit_default=True,
                                      view=True) if p.name in ("lock", "hide") else p) for p in params}

    # -- reading the list ---------------------------------------------------------------------
    def __iter__(self) -> Iterator[Param]:
        return iter(self.params.values())

    def __contains__(self, name: str) -> bool:
        return name in self.params

    def __getitem__(self, name: str) -> Param:
        return self.params[name]

    @property
    def names(self) -> list[str]:
        return list(self.params)

    @property
    def settings_names(self) -> list[str]:
        """The page's settings without the classroom ones."""
        return [n for n in self.params if n not in CLASSROOM_PARAMS]

    @property
    def run_names(self) -> list[str]:
        """The settings that define the run (neither live nor view): the rebuild signature."""
        return [n for n, p in self.params.items() if p.in_run]

    @property
    def live_names(self) -> list[str]:
        return [n for n, p in self.params.items() if p.live]

    def defaults(self, *, classroom: bool = False) -> dict:
        """Every setting's default (copies of lists), without the classroom ones unless asked."""
        return {n: (list(p.default) if isinstance(p.default, list) else p.default)
                for n, p in self.params.items() if classroom or n not in CLASSROOM_PARAMS}

    # -- checking values ----------------------------------------------------------------------
    def validate(self, values: dict, *, strict: bool = False, prefix: str = "") -> tuple[dict, list[str]]:
        """Complete ``values`` with defaults and check each one.

        Not strict (a link, a saved session): an unknown name or a bad value is dropped with a
        warning and the default used. Strict (a lesson file, the API): the first problem raises
        ``SettingError`` whose ``field`` is ``prefix + name`` (e.g. ``steps[2].settings.lr``)."""
        out = self.defaults(classroom=True)
        warnings: list[str] = []
        for name, value in values.items():
            where = f"{prefix}{name}"
            if name not in self.params:
                problem = (f"`{name}` is not a setting of the {self.page} page "
                           f"(its settings: {', '.join(self.settings_names)})")
                if strict:
                    raise SettingError(where, problem)
                warnings.append(f"Ignored unknown setting `{name}`.")
                continue
            try:
                out[name] = self.params[name].validate(value)
            except ValueError as e:
                if strict:
                    raise SettingError(where, str(e)) from None
                warnings.append(f"Ignored setting `{name}={str(value)[:40]}` ({e}); using the default "
                                f"`{self.params[name].encode(self.params[name].default)}`.")
        return out, warnings

    def signature(self, values: dict) -> str:
        """A string that changes exactly when a setting of the run changes (not live, not view).
        Lists are compared as tuples; missing values take their defaults."""
        full = {**self.defaults(), **values}
        return repr(tuple((n, tuple(full[n]) if isinstance(full[n], list) else full[n]) for n in self.run_names))

    # -- URL ----------------------------------------------------------------------------------
    def decode_query(self, query: dict[str, str]) -> tuple[dict, list[str]]:
        """URL text -> values for the names present, with a warning for each one ignored."""
        values, warnings = {}, []
        for raw_name, raw in query.items():
            if raw_name not in self.params:
                warnings.append(f"Ignored unknown link parameter `{raw_name}`.")
                continue
            p = self.params[raw_name]
            try:
                values[raw_name] = p.decode(raw)
            except (ValueError, TypeError) as e:
                warnings.append(f"Ignored link parameter `{raw_name}={raw[:40]}` ({e}); using the default "
                                f"`{p.encode(p.default)}`.")
                values[raw_name] = p.default
        return values, warnings

    def omit(self, name: str, value) -> bool:
        p = self.params[name]
        return p.omit_default and value == p.default

    def encode_query(self, values: dict) -> dict[str, str]:
        """Values -> URL text, leaving out settings that are omitted at their default."""
        return {n: self.params[n].encode(v) for n, v in values.items() if n in self.params and not self.omit(n, v)}


def merged(*parts: Iterable[Param]) -> list[Param]:
    """Concatenate Param lists (a page's groups of settings)."""
    return [p for part in parts for p in part]
