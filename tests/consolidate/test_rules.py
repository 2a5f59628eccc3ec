"""Match rules are data: the defaults load, a broken rules file is refused line by line."""

from __future__ import annotations

import pytest

from pipesync.consolidate.rules import load_rules
from pipesync.errors import FileErrors


def test_the_default_rules_load_and_cap_candidate_pairs_at_ten_per_deal():
    rules = load_rules()
    assert rules.max_pairs_per_deal == 10
    assert {c.name for c in rules.comparisons} >= {"account", "deal type", "subject", "amount", "close date"}


def test_a_broken_rules_file_names_each_problem_with_its_line(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(
        "blocking:\n"
        "  - {name: by company, on: [company], sort: [contacts]}\n"
        "prior: -3\n"
        "comparisons:\n"
        "  - name: name\n"
        "    levels:\n"
        "      - {label: close, test: fuzzy, key: name, weight: 2}\n"
        "      - {label: other, test: else, weight: -1}\n"
        "      - {label: never, test: exact, key: colour, weight: 1}\n"
        "survivorship:\n"
        "  fields:\n"
        "    colour: {rule: most_recent}\n",
        encoding="utf-8",
    )
    with pytest.raises(FileErrors) as err:
        load_rules(path)
    message = str(err.value)
    assert "line 2" in message and "cannot sort by a set" in message
    assert "line 7" in message and "min_similarity" in message
    assert "line 9" in message and "colour" in message
    assert "unknown deal field 'colour'" in message


def test_a_lexicon_path_is_relative_to_the_rules_file(tmp_path):
    (tmp_path / "rules.yaml").write_text(
        "lexicon: my-lexicon.yaml\n"
        "blocking: [{name: b, on: [company]}]\n"
        "prior: -3\n"
        "comparisons: [{name: c, levels: [{label: x, test: else, weight: 0}]}]\n",
        encoding="utf-8",
    )
    assert load_rules(tmp_path / "rules.yaml").lexicon == str(tmp_path / "my-lexicon.yaml")
