"""The one check every user-given name that becomes a path component goes through (fileio.check_component)."""

from __future__ import annotations

import unicodedata

import pytest

from robustbench_labelaug import UserError
from robustbench_labelaug.fileio import MAX_COMPONENT_CHARS, check_component


@pytest.mark.parametrize("name", ["digits_adv", "a", "x.y-z_1", "é", "ResNet50 (ours)", "a" * MAX_COMPONENT_CHARS])
def test_safe_names_pass_unchanged(name):
    assert check_component(name, "model") == name


@pytest.mark.parametrize("name, problem", [
    ("", "is empty"), (".", "dots alone"), ("..", "dots alone"), ("...", "dots alone"),
    ("a/b", "separator"), ("../x", "separator"), ("a\\b", "separator"), ("/abs", "separator"),
    ("a\x00b", "control"), ("a\nb", "control"), (" a", "white space"), ("a ", "white space"),
    ("a" * (MAX_COMPONENT_CHARS + 1), "characters long"), (unicodedata.normalize("NFD", "é"), "NFC"),
])
def test_unsafe_names_are_one_line(name, problem):
    with pytest.raises(UserError) as err:
        check_component(name, "model name")
    msg = str(err.value)
    assert problem in msg and "\n" not in msg and msg.startswith("model name")


def test_non_strings_are_refused():
    for value in (3, None, b"x", ["a"]):
        with pytest.raises(UserError, match="must be a name"):
            check_component(value, "experiment")
