"""The grounding check: which names a description uses, and which of them the node has."""

from __future__ import annotations

import math

import pytest

from blarify_lab.grounding import (
    Grounding,
    check_grounding,
    known_identifiers,
    named_identifiers,
    session_ratio,
)

SOURCE = '''class JSONDecoder(object):
    """Simple JSON decoder; see object_hook."""

    def decode(self, s, _w=WHITESPACE.match):
        obj, end = self.raw_decode(s, idx=_w(s, 0).end())  # skip leading_space
        return obj
'''
CHILDREN = ["/json/decoder.py::JSONDecoder.decode", "/json/decoder.py::JSONDecoder.raw_decode"]
PATH = "/json/decoder.py::JSONDecoder"


def test_named_identifiers_finds_each_form_once_in_order() -> None:
    text = (
        "The `JSONDecoder` class decodes with decode() and raw_decode(s); it uses "
        "self.scan_once, json.loads, parse_float and the DecoderState. Again: decode()."
    )
    assert named_identifiers(text) == [
        "JSONDecoder",
        "decode",
        "raw_decode",
        "self.scan_once",
        "json.loads",
        "parse_float",
        "DecoderState",
    ]


def test_common_words_builtins_keywords_files_and_abbreviations_are_not_names() -> None:
    text = (
        "Returns a `dict` or `None` (see e.g. decoder.py); the value(s) are parsed, `str` "
        "and `for` too. It is Fast. Version 1.0 works."
    )
    assert named_identifiers(text) == []


def test_code_spans_and_fences_count_every_identifier() -> None:
    text = "Call `decode(s, idx=0)`:\n```python\nobj = make_scanner(ctx)\n```\nDone."
    assert named_identifiers(text) == ["decode", "idx", "obj", "make_scanner", "ctx"]


def test_known_identifiers_come_from_tokens_strings_comments_and_paths() -> None:
    known = known_identifiers(SOURCE, CHILDREN, PATH)
    assert {"JSONDecoder", "WHITESPACE", "raw_decode", "object_hook", "leading_space"} <= known
    assert {"json", "decoder", "decode"} <= known
    assert "py" not in known


def test_matching_is_exact_not_by_substring() -> None:
    g = check_grounding("It calls `decod` and `raw_decoder`.", SOURCE, CHILDREN, node_path=PATH)
    assert g.named == ("decod", "raw_decoder")
    assert g.ungrounded == ("decod", "raw_decoder")
    assert g.ratio == 0.0


def test_dotted_names_are_grounded_by_their_last_part() -> None:
    text = "Uses self.raw_decode, json.decoder.WHITESPACE and JSONDecoder.parse_object."
    g = check_grounding(text, SOURCE, CHILDREN, node_path=PATH)
    assert g.ungrounded == ("JSONDecoder.parse_object",)
    assert g.ratio == pytest.approx(2 / 3)


def test_ratio_is_none_when_nothing_is_named() -> None:
    g = check_grounding("Decodes a document into Python objects.", SOURCE, CHILDREN)
    assert g == Grounding((), ())
    assert g.ratio is None


def test_other_text_is_tokenised_plainly() -> None:
    broken = "def broken(:\n    return first_value\n"
    g = check_grounding("Returns `first_value`, not `second_value`.", broken)
    assert g.ungrounded == ("second_value",)


def test_session_ratio_counts_names_not_nodes() -> None:
    a = Grounding(("x_a", "y_b", "z_c", "w_d"), ("x_a",))
    b = Grounding(("v_e",), ("v_e",))
    assert session_ratio([a, b, None, Grounding()]) == pytest.approx(3 / 5)
    assert session_ratio([None, Grounding()]) is None
    assert not math.isnan(session_ratio([a]) or 0.0)


def test_a_block_cut_short_is_code_only_when_it_names_its_language() -> None:
    cut = (
        "```python\ndef decode(self, s, sep_keys=None):\n    # Import the helpers\n    return s[idx"
    )
    assert named_identifiers(cut) == ["decode", "sep_keys", "idx"]
    stray = "```\n\nThe code is designed to call `_iterencode_list`."
    assert named_identifiers(stray) == ["_iterencode_list"]
    assert named_identifiers("Parses `YYYY-MM-DD` dates.") == []
