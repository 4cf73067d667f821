"""The prompt format: build, parse back, compose; no database, no LLM."""

from __future__ import annotations

from blarify_lab.llm import ExtractiveSummarizer
from blarify_lab.prompts import (
    CYCLE_MARK,
    ERROR_MARK,
    ChildText,
    NodeContent,
    build_prompt,
    compose_text,
    error_description,
    first_error_line,
    parse_prompt,
)

NODE = NodeContent("/pkg/m.py::f", ("FUNCTION",), "f", 'def f(x):\n    """Add one."""\n')


def test_prompt_round_trips_through_the_parser() -> None:
    children = [
        ChildText("/pkg/m.py::f.b", "Second\nline", None),
        ChildText("/pkg/m.py::f.a", "First", "text"),
        ChildText("/pkg/m.py::f.c", None, None),
    ]
    parsed = parse_prompt(build_prompt(NODE, children, max_text_chars=4000))
    assert parsed.path == NODE.path and parsed.labels == ("FUNCTION",) and parsed.name == "f"
    assert parsed.source == NODE.source
    assert parsed.children == [
        ("/pkg/m.py::f.a", "First"),
        ("/pkg/m.py::f.b", "Second line"),  # one line per child
        ("/pkg/m.py::f.c", "(not documented yet: part of a cycle)"),
    ]


def test_prompt_depends_only_on_its_inputs() -> None:
    a = [ChildText("/a", "x", "one text"), ChildText("/b", "y", None)]
    b = [ChildText("/b", "y", "other text"), ChildText("/a", "x", None)]
    assert build_prompt(NODE, a, max_text_chars=4000) == build_prompt(NODE, b, max_text_chars=4000)
    c = [ChildText("/a", "x changed", None), ChildText("/b", "y", None)]
    assert build_prompt(NODE, a, max_text_chars=4000) != build_prompt(NODE, c, max_text_chars=4000)


def test_many_children_are_cut_with_a_count() -> None:
    kids = [ChildText(f"/k{i:04d}", "d" * 100, None) for i in range(500)]
    prompt = build_prompt(NODE, kids, max_text_chars=2000)
    parsed = parse_prompt(prompt)
    assert parsed.more_children == 500 and 0 < len(parsed.children) < 30
    assert "Contains 500:" in ExtractiveSummarizer().get_completion(prompt)


def test_source_is_clipped_with_a_note() -> None:
    big = NodeContent("/big.py", ("FILE",), "big.py", "x = 1\n" * 5000)
    prompt = build_prompt(big, [], max_text_chars=4000)
    assert "more characters" in prompt and len(prompt) < 7000


def test_compose_indents_children_and_stays_bounded() -> None:
    kids = [ChildText(f"/k{i}", "d", f"/k{i}\nline one\nline two") for i in range(100)]
    text = compose_text("/root", " described ", kids, max_text_chars=600)
    assert text.startswith("/root\ndescribed\n  /k0\n  line one")
    assert len(text) <= 700 and "children not shown" in text


def test_error_markers() -> None:
    desc = error_description(RuntimeError("quota\nexceeded"))
    assert desc == f"{ERROR_MARK} RuntimeError: quota exceeded"
    assert first_error_line(f"/x\n{CYCLE_MARK} {desc}") == "RuntimeError: quota exceeded"
    assert first_error_line("/x\nfine") == "failed"


def test_summariser_reads_the_prompt() -> None:
    answer = ExtractiveSummarizer().get_completion(build_prompt(NODE, [], max_text_chars=4000))
    assert answer == "Function `f`. Signature: `f(x)`. Add one."
