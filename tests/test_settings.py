"""playground.settings: Param (URL text <-> value, validation) and Schema (defaults, validation,
the derived rebuild signature, URL query), without streamlit."""
from __future__ import annotations

import subprocess
import sys

import pytest

from playground.settings import CLASSROOM_PARAMS, Param, Schema, SettingError, common_params

# one Param of every kind, and a value other than the default for each
EXAMPLES = [
    (Param("name", "circle", choices=("circle", "xor", "spiral")), "spiral", "spiral"),
    (Param("text", "", "str"), "a b,c", "a b,c"),
    (Param("count", 2, "int", lo=0, hi=6), 5, "5"),
    (Param("batch", 10, "int", choices=(1, 10, 0)), 0, "0"),
    (Param("rate", 0.03, "float", choices=(0.0001, 0.03, 0.1, 10.0)), 0.0001, "0.0001"),
    (Param("share", 0.5, "float", lo=0.0, hi=1.0), 0.25, "0.25"),
    (Param("on", False, "bool"), True, "1"),
    (Param("features", ["x1", "x2"], "list", choices=("x1", "x2", "x1_sq"), max_len=3), ["x1_sq", "x1"], "x1_sq,x1"),
    (Param("mask", [5, 27], "ints", lo=1, hi=999), [1, 48, 999], "1,48,999"),
]


@pytest.mark.parametrize("param,value,text", EXAMPLES, ids=[e[0].kind + ":" + e[0].name for e in EXAMPLES])
def test_encode_decode_round_trip_for_every_kind(param, value, text):
    assert param.encode(value) == text
    assert param.decode(text) == value
    assert param.decode(param.encode(param.default)) == param.default
    assert type(param.decode(text)) is type(value)


def test_every_kind_is_covered():
    from playground.settings import KINDS

    assert {e[0].kind for e in EXAMPLES} == set(KINDS)


def test_decode_reads_url_spellings_and_empty_lists():
    assert Param("on", False, "bool").decode("true") is True and Param("on", True, "bool").decode("0") is False
    assert Param("features", ["x1"], "list").decode("") == []
    assert Param("mask", [1], "ints").decode(" 3,4 ") == [3, 4]
    assert Param("rate", 0.5, "float").decode("1e-5") == 1e-5


@pytest.mark.parametrize("param,raw,words", [
    (Param("name", "circle", choices=("circle", "xor")), "banana", "must be one of circle, xor"),
    (Param("count", 2, "int", lo=0, hi=6), "99", "must be between 0 and 6"),
    (Param("count", 2, "int", lo=0, hi=6), "2.5", "invalid literal"),
    (Param("rate", 0.03, "float", choices=(0.03, 0.1)), "0.05", "must be one of 0.03, 0.1"),
    (Param("rate", 0.5, "float"), "fast", "could not convert"),
    (Param("rate", 0.5, "float"), "nan", "not a finite number"),
    (Param("on", False, "bool"), "yes", "expected 1 or 0"),
    (Param("features", ["x1"], "list", choices=("x1", "x2")), "x1,x9", "unknown item(s) ['x9']"),
    (Param("features", ["x1"], "list", choices=("x1", "x2"), max_len=1), "x1,x2", "at most 1 items"),
    (Param("mask", [1], "ints", lo=1, hi=10), "1,11", "must be between 1 and 10"),
    (Param("mask", [1], "ints"), "1,a", "invalid literal"),
])
def test_decode_rejects_bad_text_with_a_reason(param, raw, words):
    with pytest.raises(ValueError) as e:
        param.decode(raw)
    assert words in str(e.value)


@pytest.mark.parametrize("param,value,words", [
    (Param("count", 2, "int"), True, "whole number"),
    (Param("count", 2, "int"), 1.5, "whole number"),
    (Param("count", 2, "int"), "2", "whole number"),
    (Param("rate", 0.5, "float"), "fast", "must be a number"),
    (Param("rate", 0.5, "float"), False, "must be a number"),
    (Param("rate", 0.5, "float"), float("inf"), "not a finite number"),
    (Param("on", False, "bool"), 1, "true or false"),
    (Param("name", "a", "str"), 5, "text"),
    (Param("features", ["x1"], "list"), "x1", "must be a list"),
    (Param("features", ["x1"], "list"), ["x1", 2], "list of texts"),
    (Param("mask", [1], "ints"), [1, "2"], "list of whole numbers"),
])
def test_validate_rejects_wrong_types(param, value, words):
    with pytest.raises(ValueError) as e:
        param.validate(value)
    assert words in str(e.value)


def test_validate_converts_what_is_unambiguous():
    assert Param("count", 2, "int").validate(3.0) == 3 and isinstance(Param("count", 2, "int").validate(3.0), int)
    assert Param("rate", 0.5, "float").validate(1) == 1.0 and isinstance(Param("rate", 0.5, "float").validate(1), float)
    assert Param("features", ["x1"], "list").validate(("x1", "x2")) == ["x1", "x2"]


def test_a_bad_declaration_fails_at_import_time():
    with pytest.raises(ValueError, match="unknown kind"):
        Param("x", 1, "number")
    with pytest.raises(ValueError, match="must be one of"):
        Param("x", "d", choices=("a", "b"))            # the default is not a choice
    with pytest.raises(ValueError, match="declared twice"):
        Schema("p", [Param("lr", 0.1, "float"), Param("lr", 0.2, "float")])


# ---- Schema ----------------------------------------------------------------------------------
def schema() -> Schema:
    return Schema("demo", [
        Param("dataset", "circle", choices=("circle", "xor")),
        Param("layers", 2, "int", lo=0, hi=6),
        Param("features", ["x1", "x2"], "list", choices=("x1", "x2", "x1_sq")),
        Param("lr", 0.03, "float", choices=(0.003, 0.03, 0.3), live=True),
        Param("log_y", False, "bool", view=True),
        Param("tab", "data", choices=("data", "model"), view=True),
    ])


def test_schema_has_the_shared_sidebar_and_its_own_settings():
    s = schema()
    assert s.names[:2] == ["seed", "device"] and set(CLASSROOM_PARAMS) <= set(s.names)
    assert s.settings_names == ["seed", "device", "dataset", "layers", "features", "lr", "log_y", "tab"]
    assert s.live_names == ["lr"]
    assert s.run_names == ["seed", "device", "dataset", "layers", "features"]
    assert s["lock"].choices == tuple(s.settings_names)      # lock / hide name the page's own controls
    assert "lr" in s and "bogus" not in s and [p.name for p in s] == s.names
    d = s.defaults()
    assert d == {"seed": 0, "device": "cpu", "dataset": "circle", "layers": 2, "features": ["x1", "x2"], "lr": 0.03,
                 "log_y": False, "tab": "data"}
    d["features"].append("x1_sq")                            # defaults are copies
    assert s.defaults()["features"] == ["x1", "x2"]
    assert set(s.defaults(classroom=True)) == set(s.names)
    assert Schema("bare", [Param("x", 1, "int")], with_common=False).names == ["x"]


def test_signature_changes_exactly_for_settings_that_are_neither_live_nor_view():
    s = schema()
    base = s.defaults()
    other = {"seed": 3, "device": "cuda", "dataset": "xor", "layers": 5, "features": ["x1"], "lr": 0.3,
             "log_y": True, "tab": "model", "lesson": "cubic", "step": 2, "projector": True, "lock": ["lr"],
             "hide": ["tab"]}
    assert set(other) == set(s.names)
    for name, value in other.items():
        changed = s.signature({**base, name: value}) != s.signature(base)
        assert changed == s[name].in_run, name
        assert changed == (name in s.run_names), name
    assert s.signature({}) == s.signature(base)                 # missing values take their defaults
    assert s.signature({"features": ("x1", "x2")}) == s.signature(base)   # lists compare as tuples


def test_validate_not_strict_drops_bad_values_with_a_warning():
    s = schema()
    values, warnings = s.validate({"dataset": "banana", "layers": 3, "bogus": 1, "lr": "fast"})
    assert values["dataset"] == "circle" and values["layers"] == 3 and values["lr"] == 0.03 and "bogus" not in values
    assert set(values) == set(s.names)
    assert len(warnings) == 3
    assert any("bogus" in w for w in warnings) and any("dataset=banana" in w and "circle" in w for w in warnings)


@pytest.mark.parametrize("values,field,words", [
    ({"lrr": 0.03}, "steps[2].settings.lrr", "not a setting of the demo page"),
    ({"lr": 0.05}, "steps[2].settings.lr", "must be one of 0.003, 0.03, 0.3"),
    ({"layers": 7}, "steps[2].settings.layers", "must be between 0 and 6"),
    ({"layers": "2"}, "steps[2].settings.layers", "whole number"),
    ({"features": ["x3"]}, "steps[2].settings.features", "unknown item"),
    ({"lock": ["nothing"]}, "steps[2].settings.lock", "unknown item"),
])
def test_validate_strict_raises_naming_the_field(values, field, words):
    with pytest.raises(SettingError) as e:
        schema().validate({"dataset": "xor", **values}, strict=True, prefix="steps[2].settings.")
    assert e.value.field == field and words in e.value.problem
    assert str(e.value).startswith(field + ": ")
    assert isinstance(e.value, ValueError)


def test_validate_strict_returns_typed_values():
    values, warnings = schema().validate({"lr": 0.3, "layers": 4.0}, strict=True)
    assert values["lr"] == 0.3 and values["layers"] == 4 and isinstance(values["layers"], int) and not warnings


def test_url_query_round_trip():
    s = schema()
    values = {**s.defaults(classroom=True), "dataset": "xor", "features": ["x1_sq"], "lr": 0.3, "log_y": True}
    query = s.encode_query(values)
    assert query["dataset"] == "xor" and query["features"] == "x1_sq" and query["log_y"] == "1"
    assert not {"lesson", "step", "projector", "lock", "hide"} & set(query)    # omitted at their default
    decoded, warnings = s.decode_query(query)
    assert decoded == {k: values[k] for k in query} and not warnings
    assert s.encode_query({**values, "lock": ["lr"]})["lock"] == "lr"


def test_decode_query_ignores_garbage_with_a_warning_and_uses_the_default():
    decoded, warnings = schema().decode_query({"dataset": "banana", "bogus": "1", "layers": "3"})
    assert decoded == {"dataset": "circle", "layers": 3}
    assert any("Ignored unknown link parameter `bogus`" in w for w in warnings)
    assert any("`dataset=banana`" in w and "using the default `circle`" in w for w in warnings)


def test_common_params_are_global_and_the_classroom_ones_are_view_only():
    by_name = {p.name: p for p in common_params()}
    assert by_name["seed"].scope == by_name["device"].scope == "global"
    assert by_name["seed"].in_run and by_name["device"].in_run
    assert all(by_name[n].view and by_name[n].omit_default for n in CLASSROOM_PARAMS)


def test_settings_module_does_not_import_streamlit():
    code = "import playground.settings, sys; assert 'streamlit' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
