"""Prompts per kind of node: a function, a class, a file and a folder are asked different things.

::

    prompts = PromptSet({"FUNCTION": "Document {name}: ...\\n{body}", "SYSTEM": "You ..."})
    rendered = prompts.render(node, children, max_text_chars=4000)
    rendered.system, rendered.user   # what a chat model gets as its system and user messages
    rendered.text                    # both in one text, for a provider without roles
    rendered.hash(model)             # what reuse compares: model, system message and prompt

A template is plain text with named fields in ``str.format`` style (a literal brace is written
``{{`` or ``}}``): ``{body}`` (the node's path, labels, name, source and children, the sections
``prompts.build_prompt`` writes and ``prompts.parse_prompt`` reads back), ``{path}``,
``{name}``, ``{labels}`` and ``{kind}``. A node's kind comes from its labels: ``FUNCTION``
(also ``METHOD``), ``CLASS``, ``FILE`` (also ``MODULE``), ``FOLDER`` (also ``PACKAGE``), else
``DEFAULT``. The key ``SYSTEM`` holds the system message ("" for none). Overrides are merged
onto ``KIND_PROMPTS``; ``GENERIC_PROMPTS`` asks every node the same (the prompt of earlier
releases, byte for byte). Pure: no database, no LLM.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from .prompts import INSTRUCTION, ChildText, NodeContent, build_prompt, input_hash

__all__ = [
    "FIELDS",
    "GENERIC_PROMPTS",
    "KINDS",
    "KIND_PROMPTS",
    "PromptSet",
    "RenderedPrompt",
    "kind_of",
]

KINDS = ("FUNCTION", "CLASS", "FILE", "FOLDER", "DEFAULT")
FIELDS = frozenset({"body", "path", "name", "labels", "kind"})
_ALIASES = {"METHOD": "FUNCTION", "MODULE": "FILE", "PACKAGE": "FOLDER"}

_NAMES_ONLY = (
    "Name only identifiers that appear in the source or among the children below; "
    "do not invent functions, classes, parameters or modules."
)
KIND_PROMPTS: Mapping[str, str] = MappingProxyType(
    {
        "SYSTEM": (
            "You write short, exact reference documentation for source code. "
            "You describe only what the given code shows. " + _NAMES_ONLY
        ),
        "FUNCTION": (
            "Document the function `{name}` in 2 to 4 sentences: what it does, its parameters "
            "(by their names in the signature), what it returns and what it raises. "
            + _NAMES_ONLY
            + "\n{body}"
        ),
        "CLASS": (
            "Document the class `{name}` in 2 to 4 sentences: its responsibility, how it is "
            "built, and its main methods (listed under Children). " + _NAMES_ONLY + "\n{body}"
        ),
        "FILE": (
            "Document the module `{name}` in 2 to 4 sentences: its purpose and the public "
            "names it defines (listed under Children). " + _NAMES_ONLY + "\n{body}"
        ),
        "FOLDER": (
            "Document the package `{name}` in 2 to 4 sentences: what it is for and what each "
            "of its parts (listed under Children) contributes. " + _NAMES_ONLY + "\n{body}"
        ),
        "DEFAULT": INSTRUCTION + " " + _NAMES_ONLY + "\n{body}",
    }
)
GENERIC_PROMPTS: Mapping[str, str] = MappingProxyType(
    {"SYSTEM": "", **dict.fromkeys(KINDS, INSTRUCTION + "\n{body}")}
)


def kind_of(labels: Sequence[str]) -> str:
    """The kind a node's labels make it (``DEFAULT`` when none is known)."""
    upper = [str(label).upper() for label in labels]
    for label in upper:
        kind = _ALIASES.get(label, label)
        if kind in KINDS and kind != "DEFAULT":
            return kind
    return "DEFAULT"


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """One node's prompt: the system message (``""`` for none) and the user message."""

    system: str
    user: str

    @property
    def text(self) -> str:
        """Both messages in one text, for a provider that takes a single prompt."""
        return f"{self.system}\n\n{self.user}" if self.system else self.user

    def hash(self, model: str) -> str:
        """``prompts.input_hash`` of the model and the whole prompt (system message included):
        change a template, or the system message, and the node is asked again."""
        return input_hash(model, self.text)


def _check_template(key: str, template: object) -> str:
    if not isinstance(template, str):
        raise TypeError(f"prompts[{key!r}] must be a str, got {type(template).__name__}")
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as err:
        raise ValueError(
            f"prompts[{key!r}] is not a valid template ({err}); write a literal brace as {{{{ "
            "or }}}}"
        ) from None
    unknown = sorted(f for f in fields if f not in FIELDS)
    if unknown:
        raise ValueError(
            f"prompts[{key!r}] names unknown field(s) {unknown}; the fields are "
            f"{sorted(FIELDS)} (write a literal brace as {{{{ or }}}})"
        )
    if key != "SYSTEM" and "body" not in fields:
        raise ValueError(f"prompts[{key!r}] must contain {{body}}: the node's source and children")
    if key == "SYSTEM" and fields:
        raise ValueError("prompts['SYSTEM'] is plain text: it takes no fields")
    return template


class PromptSet:
    """The templates of every kind and the system message; ``overrides`` replace some of
    ``base`` (``KIND_PROMPTS`` by default). Keys: ``FUNCTION``, ``CLASS``, ``FILE``,
    ``FOLDER``, ``DEFAULT``, ``SYSTEM``."""

    def __init__(
        self, overrides: Mapping[str, str] | None = None, *, base: Mapping[str, str] = KIND_PROMPTS
    ) -> None:
        merged = dict(base)
        for key, template in (overrides or {}).items():
            upper = str(key).upper()
            upper = _ALIASES.get(upper, upper)
            if upper not in (*KINDS, "SYSTEM"):
                raise ValueError(
                    f"unknown prompt kind {key!r}: use one of {[*KINDS, 'SYSTEM']} "
                    "(METHOD, MODULE and PACKAGE are aliases)"
                )
            merged[upper] = template
        self.templates: Mapping[str, str] = MappingProxyType(
            {key: _check_template(key, t) for key, t in merged.items()}
        )
        self.system = self.templates.get("SYSTEM", "").strip()

    def render(
        self, node: NodeContent, children: Sequence[ChildText], *, max_text_chars: int
    ) -> RenderedPrompt:
        """The node's prompt from its kind's template."""
        generic = build_prompt(node, children, max_text_chars=max_text_chars)
        body = generic.split("\n", 1)[1] if generic.startswith(INSTRUCTION + "\n") else generic
        kind = kind_of(node.labels)
        template = self.templates.get(kind) or self.templates["DEFAULT"]
        name = " ".join((node.name or node.path.rsplit("/", 1)[-1].rsplit("::", 1)[-1]).split())
        user = template.format(
            body=body, path=node.path, name=name, labels=", ".join(node.labels), kind=kind
        )
        return RenderedPrompt(self.system, user)

    def __repr__(self) -> str:
        changed = sorted(k for k, v in self.templates.items() if KIND_PROMPTS.get(k) != v)
        return f"PromptSet(changed={changed})"
