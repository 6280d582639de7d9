"""One error type for what a person can fix, and one table of metric names."""
import re
from pathlib import Path

import pytest

from playground import metrics as M
from playground.errors import PlaygroundError

ROOT = Path(__file__).resolve().parents[1]


def test_every_user_facing_error_is_a_playground_error_with_message_and_hint():
    from playground.bundle import BundleError
    from playground.data.dna import GenomicBenchmarkUnavailable
    from playground.data.parsing import SequenceFileError
    from playground.esm import CheckpointError, ESMError, MemoryRefused, SequenceError, WeightsUnavailable
    from playground.lessons import LessonError
    from playground.settings import SettingError

    for cls in (BundleError, GenomicBenchmarkUnavailable, SequenceFileError, ESMError, CheckpointError, MemoryRefused,
                SequenceError, WeightsUnavailable, LessonError, SettingError):
        assert issubclass(cls, PlaygroundError) and issubclass(cls, ValueError), cls
    e = SequenceFileError("Line 3: 'J' is not a DNA letter.", line=3, hint="Use only A, C, G, T or N.")
    assert (e.message, e.hint, e.line) == ("Line 3: 'J' is not a DNA letter.", "Use only A, C, G, T or N.", 3)
    assert str(e) == "Line 3: 'J' is not a DNA letter. Use only A, C, G, T or N."
    assert str(BundleError("Not a model file.")) == "Not a model file." and BundleError("x").hint is None
    e = LessonError("a.toml", "steps[2].settings.lr", "0.5 is not one of the choices")
    assert e.message == str(e) == "Lesson file a.toml, field `steps[2].settings.lr`: 0.5 is not one of the choices"
    assert (e.file, e.field, e.problem) == ("a.toml", "steps[2].settings.lr", "0.5 is not one of the choices")
    assert SettingError("lr", "must be positive").message == "lr: must be positive"
    with pytest.raises(ValueError, match="what to do"):          # callers' `except ValueError` still catch them
        raise ESMError("Something is wrong.", "Here is what to do.")


def test_metric_names_read_as_the_pages_show_them():
    assert [M.label(k) for k in ("accuracy", "auroc", "mcc", "f1", "pearson_r", "r2", "q3")] == \
        ["accuracy", "AUROC", "MCC", "F1", "Pearson r", "R²", "Q3"]
    assert M.label("val_accuracy") == "validation accuracy" and M.label("train_loss") == "training loss"
    assert M.label("val_r2", capital=True) == "Validation R²" and M.label("mcc", capital=True) == "MCC"
    assert M.label("val_loss") == "validation loss"
    assert M.label("test_accuracy") == "test accuracy"             # a held-out score (score_test, bundles)
    assert "test_loss" not in M.HISTORY_KEYS and "val_loss" in M.HISTORY_KEYS
    assert M.label("f1", task="multiclass") == "F1 (macro)" and M.label("f1", task="binary") == "F1"
    assert M.label("motif_recovery") == "motif_recovery"          # not a metric: left as it is
    from playground.lessons import LABELS
    from playground.runs import METRIC_LABELS

    assert set(METRIC_LABELS) == set(M.HISTORY_KEYS)
    for k in M.HISTORY_KEYS:
        assert LABELS[k] == METRIC_LABELS[k] == M.label(k)


def test_metric_names_are_written_in_one_table():
    """No page or library module keeps its own copy of the metric names."""
    pattern = re.compile(r"""["'](test_)?auroc["']\s*:\s*["'][^"']*AUROC""")
    files = [*(ROOT / "playground").rglob("*.py"), *(ROOT / "pages").glob("*.py"), ROOT / "app.py"]
    hits = [p.relative_to(ROOT).as_posix() for p in files if pattern.search(p.read_text())]
    assert hits == ["playground/metrics.py"]
