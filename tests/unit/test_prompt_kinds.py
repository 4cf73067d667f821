"""Prompts per kind: templates with named fields, a system message, overrides, the hash."""

from __future__ import annotations

import pytest

from blarify_lab.prompt_kinds import GENERIC_PROMPTS, KIND_PROMPTS, PromptSet, kind_of
from blarify_lab.prompts import ChildText, NodeContent, build_prompt, input_hash, parse_prompt

FUNC = NodeContent("/p/m.py::f", ("FUNCTION",), "f", "def f(a, b):\n    return a + b\n")
CLASS = NodeContent("/p/m.py::C", ("CLASS",), "C", "class C:\n    pass\n")
FILE = NodeContent("/p/m.py", ("FILE",), "m.py", "import os\n")
FOLDER = NodeContent("/p", ("FOLDER",), "p", None)
KIDS = [ChildText("/p/m.py::C.run", "Runs it.", None)]


def test_each_kind_is_asked_its_own_questions() -> None:
    ps = PromptSet()
    users = {
        n.labels[0]: ps.render(n, KIDS, max_text_chars=4000).user
        for n in (FUNC, CLASS, FILE, FOLDER)
    }
    assert "parameters" in users["FUNCTION"] and "raises" in users["FUNCTION"]
    assert "main methods" in users["CLASS"]
    assert "public" in users["FILE"]
    assert "parts" in users["FOLDER"]
    assert len(set(users.values())) == 4
    assert "`f`" in users["FUNCTION"]


def test_the_body_is_the_prompt_sections_and_parses_back() -> None:
    rendered = PromptSet().render(FUNC, KIDS, max_text_chars=4000)
    parsed = parse_prompt(rendered.text)
    assert parsed.path == "/p/m.py::f" and parsed.labels == ("FUNCTION",)
    assert "return a + b" in parsed.source
    assert parsed.child_paths == ["/p/m.py::C.run"]
    assert rendered.system and rendered.text.startswith(rendered.system + "\n\n")


def test_generic_prompts_are_the_earlier_prompt_byte_for_byte() -> None:
    rendered = PromptSet(GENERIC_PROMPTS).render(FUNC, KIDS, max_text_chars=4000)
    assert rendered.system == ""
    assert rendered.text == build_prompt(FUNC, KIDS, max_text_chars=4000)
    assert rendered.hash("m") == input_hash("m", rendered.text)


def test_overrides_replace_one_kind_and_change_the_hash() -> None:
    custom = PromptSet(
        {"method": "Explain {name} ({kind}) at {path}:\n{body}", "SYSTEM": "Be terse."}
    )
    default = PromptSet()
    a = custom.render(FUNC, [], max_text_chars=4000)
    b = default.render(FUNC, [], max_text_chars=4000)
    assert a.user.startswith("Explain f (FUNCTION) at /p/m.py::f:\n## Node")
    assert a.system == "Be terse."
    assert a.hash("m") != b.hash("m")
    assert custom.render(CLASS, [], max_text_chars=4000) == PromptSet(
        {"SYSTEM": "Be terse."}
    ).render(CLASS, [], max_text_chars=4000)
    assert PromptSet({"SYSTEM": "x"}).render(FUNC, [], max_text_chars=4000).hash("m") != b.hash("m")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"FUNCTION": "{body} {nope}"}, "unknown field"),
        ({"FUNCTION": "no body here"}, "must contain {body}"),
        ({"FUNCTION": "{body} {"}, "not a valid template"),
        ({"WIDGET": "{body}"}, "unknown prompt kind"),
        ({"SYSTEM": "hello {name}"}, "takes no fields"),
    ],
)
def test_bad_templates_are_refused_with_what_to_do(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PromptSet(overrides)


def test_literal_braces_and_kinds_from_labels() -> None:
    rendered = PromptSet({"FILE": 'Answer as JSON {{"doc": ...}}\n{body}'}).render(
        FILE, [], max_text_chars=4000
    )
    assert rendered.user.startswith('Answer as JSON {"doc": ...}')
    assert kind_of(("METHOD",)) == "FUNCTION" and kind_of(("PACKAGE",)) == "FOLDER"
    assert kind_of(("MODULE",)) == "FILE" and kind_of(("Thing",)) == "DEFAULT"
    assert set(KIND_PROMPTS) == {"SYSTEM", "FUNCTION", "CLASS", "FILE", "FOLDER", "DEFAULT"}
