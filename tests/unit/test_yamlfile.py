"""Rules files: a hostile or mistaken file ends in a clear exit-2 message, fast, before any object is built."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipesync.config import load_config
from pipesync.errors import ConfigError, PipesyncError
from pipesync.yamlfile import MAX_DEPTH, read_yaml


def billion_laughs(levels: int = 9) -> str:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels + 1):
        here, below = chr(97 + i), chr(96 + i)
        lines.append(f"{here}: &{here} [" + ", ".join([f"*{below}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("text", "words"), [
    (billion_laughs(), "aliases"),
    ("x: " + "[" * 5000 + "]" * 5000 + "\n", f"nested more than {MAX_DEPTH} levels"),
    ("- a\n- b\n", "found a list"),
    ("sources:\n  - name: " + "a" * 5000 + "\n    type: csv\n    options: {path: x.csv}\n", "at most 64 characters"),
    ("warehouse: [unclosed\n", "YAML syntax"),
], ids=["alias-bomb", "deep-nesting", "top-level-list", "long-source-name", "syntax"])
def test_a_hostile_config_is_refused_with_exit_2(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "pipesync.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PipesyncError) as caught:
        load_config(path)
    assert caught.value.exit_code == 2
    assert str(path) in str(caught.value) and words in str(caught.value)


def test_aliases_that_stay_small_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("base: &base {weight: 2}\nrules:\n  - *base\n  - *base\n", encoding="utf-8")
    assert [dict(r) for r in read_yaml(path)["rules"]] == [{"weight": 2}, {"weight": 2}]


def test_a_device_is_not_read_as_a_rules_file() -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        read_yaml("/dev/zero")


def test_a_name_too_long_for_the_file_system_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_yaml(tmp_path / ("m" * 5000 + ".yaml"))
