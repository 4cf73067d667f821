"""An export that is safe to publish: no link followed, no foreign file touched, no name
collision or over-long name, and no HTML, link or image injected by a description."""

from __future__ import annotations

import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt

from blarify_lab import queries as q
from blarify_lab.cli import main
from blarify_lab.db import FalkorDBManager, GraphDB
from blarify_lab.documentation import ExportWarning, export_markdown
from blarify_lab.errors import BlarifyLabError, ExportRefusedError
from blarify_lab.export_files import MANIFEST
from blarify_lab.export_pages import MAX_NAME


def _document(db: GraphDB, nodes: list[tuple[str, str, str]]) -> None:
    """Code nodes ``(label, path, description)``, each with stored documentation."""
    for label, path, description in nodes:
        name = path.rsplit("::", 1)[-1].rsplit("/", 1)[-1]
        rows = db.run_query(q.create_nodes_query(label), {"rows": [{"path": path, "name": name}]})
        db.run_query(
            "MATCH (n) WHERE id(n) = $id "
            "CREATE (:DOCUMENTATION {node_id: $id, description: $d, model: 'm'})-[:DESCRIBES]->(n)",
            {"id": rows[0]["node_id"], "d": description},
        )


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (links listed as ``-> target``), by relative path."""
    found: dict[str, str] = {}
    for here, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(here, d))]:
            path = Path(here, name)
            rel = path.relative_to(root).as_posix()
            found[rel] = f"-> {os.readlink(path)}" if path.is_symlink() else path.read_text()
    return found


SIMPLE = [
    ("FOLDER", "/pkg", "The package."),
    ("FILE", "/pkg/a.py", "Module a."),
    ("FUNCTION", "/pkg/a.py::f", "Function f."),
    ("FOLDER", "/pkg/sub", "A subfolder."),
    ("FILE", "/pkg/sub/b.py", "Module b."),
]


def test_a_link_inside_out_is_never_followed(db_manager: GraphDB, tmp_path: Path) -> None:
    _document(db_manager, SIMPLE)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("precious\n")
    out = tmp_path / "docs"
    out.mkdir()
    (out / "a.py.md").symlink_to(outside / "victim.txt")
    (out / "sub").symlink_to(outside)
    before = _tree(outside)
    with pytest.warns(ExportWarning, match="hash suffix"):
        pages = export_markdown(db_manager, "/pkg", out, force=True)
    assert _tree(outside) == before, "nothing outside --out was written"
    assert (out / "a.py.md").is_symlink() and (out / "sub").is_symlink(), "links left alone"
    assert all(not p.is_symlink() and p.resolve().is_relative_to(out.resolve()) for p in pages)
    assert len(pages) == 4
    _assert_links_resolve(pages)

    # a folder an earlier export made, swapped for a link: left alone, never written through
    ours = next(p.parent for p in pages if p.name == "b.py.md")
    shutil.rmtree(ours)
    ours.symlink_to(outside)
    with pytest.warns(ExportWarning):
        again = export_markdown(db_manager, "/pkg", out, force=True)
    assert _tree(outside) == before and ours.is_symlink()
    assert len(again) == 4
    _assert_links_resolve(again)


def test_a_folder_that_is_not_empty_needs_force_and_foreign_files_stay(
    db_manager: GraphDB, tmp_path: Path
) -> None:
    _document(db_manager, SIMPLE)
    out = tmp_path / "site"
    out.mkdir()
    (out / "index.md").write_text("# My hand-written home\n")
    (out / "notes.txt").write_text("mine\n")
    with pytest.raises(ExportRefusedError) as caught:
        export_markdown(db_manager, "/pkg", out)
    assert isinstance(caught.value, BlarifyLabError) and isinstance(caught.value, FileExistsError)
    assert "--force" in str(caught.value) and "force=True" in str(caught.value)
    assert _tree(out) == {"index.md": "# My hand-written home\n", "notes.txt": "mine\n"}

    with pytest.warns(ExportWarning):
        first = export_markdown(db_manager, "/pkg", out, force=True)
    assert (out / "index.md").read_text() == "# My hand-written home\n"
    assert (out / "notes.txt").read_text() == "mine\n"
    names = {p.relative_to(out).as_posix() for p in first}
    assert "index.md" not in names and "a.py.md" in names and "sub/b.py.md" in names
    manifest = json.loads((out / MANIFEST).read_text())
    assert set(manifest["pages"]) == names
    _assert_links_resolve(first)

    # /pkg/sub/b.py loses its documentation: its page goes, and so does the folder we made
    db_manager.run_query(
        "MATCH (d:DOCUMENTATION)-[:DESCRIBES]->(n) WHERE n.path STARTS WITH '/pkg/sub' "
        "DETACH DELETE d",
        {},
    )
    (out / "sub" / "keep.txt").write_text("also mine\n")
    with pytest.warns(ExportWarning):
        second = export_markdown(db_manager, "/pkg", out, force=True)
    assert not (out / "sub" / "b.py.md").exists()
    assert not (out / "sub" / "index.md").exists()
    assert (out / "sub" / "keep.txt").read_text() == "also mine\n", "a foreign file stays"
    assert (out / "index.md").read_text() == "# My hand-written home\n"
    assert {p.relative_to(out).as_posix() for p in second} == set(
        json.loads((out / MANIFEST).read_text())["pages"]
    )


def test_names_never_collide_and_stay_short(db_manager: GraphDB, tmp_path: Path) -> None:
    cyrillic = "ж" * 50 + ".py"
    _document(
        db_manager,
        [
            ("FOLDER", "/pkg", "Root."),
            ("FILE", "/pkg/x.py", "File x.py."),
            ("FOLDER", "/pkg/x.py.md", "A folder named x.py.md."),
            ("FILE", "/pkg/x.py.md/y.py", "Inside it."),
            ("FILE", "/pkg/index", "A file named index."),
            ("FILE", "/pkg/A.py", "Upper case."),
            ("FILE", "/pkg/a.py", "Lower case."),
            ("FILE", f"/pkg/{cyrillic}", "Long."),
            ("FOLDER", f"/pkg/{'д' * 60}", "A long folder."),
            ("FILE", f"/pkg/{'д' * 60}/{cyrillic}", "Long, twice."),
        ],
    )
    out = tmp_path / "md"
    with pytest.warns(ExportWarning) as warned:
        pages = export_markdown(db_manager, "/pkg", out)
    assert "/pkg/index" in str(warned[0].message)
    assert len(pages) == len({p.as_posix().casefold() for p in pages}) == 10
    assert (out / "index.md").read_text().startswith("# pkg\n"), "the folder keeps index.md"
    for page in pages:
        assert all(len(part.encode()) <= MAX_NAME for part in page.relative_to(out).parts)
    texts = {page.read_text().split("\n", 3)[2] for page in pages}
    assert len(texts) == 10, "each page documents its own node"
    _assert_links_resolve(pages)


def test_a_page_never_lands_on_a_folder_an_earlier_export_made(
    db_manager: GraphDB, tmp_path: Path
) -> None:
    _document(db_manager, [("FOLDER", "/pkg", "Root."), ("FOLDER", "/pkg/x.md", "A folder.")])
    _document(db_manager, [("FILE", "/pkg/x.md/y.py", "Inside.")])
    out = tmp_path / "md"
    export_markdown(db_manager, "/pkg", out)
    assert (out / "x.md" / "y.py.md").is_file()
    db_manager.run_query("MATCH (n) WHERE n.path STARTS WITH '/pkg/x.md' DETACH DELETE n", {})
    _document(db_manager, [("FILE", "/pkg/x", "A file named x.")])
    with pytest.warns(ExportWarning):
        pages = export_markdown(db_manager, "/pkg", out, force=True)
    assert len(pages) == 2 and not (out / "x.md").exists(), "the old folder is gone"
    _assert_links_resolve(pages)


# ------------------------------------------------------------------------------- injection

HOSTILE = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[click](javascript:alert(1)) and ![i](javascript:alert(2))",
    "<javascript:alert(3)> <a href='javascript:alert(4)'>a</a>",
    "[ref]\n\n[ref]: javascript:alert(5)",
    "| a | b |\n|---|---|\n| `x|<img src=y onerror=alert(6)>` | y |",
    "```\ncode\n```\n<script>alert(7)</script>",
    "- item\n\n  ```\n<script>alert(8)</script>",
    "&lt;script&gt; `<b>inline code</b>` \\<script>alert(9)</script>",
    "`unclosed <iframe src=javascript:alert(10)>",
]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.code: list[str] = []
        self._in_code = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_code = tag == "code"
        if self._in_code:
            self.code.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_code = False

    def handle_data(self, data: str) -> None:
        if self._in_code:
            self.code[-1] += data


SAFE_TAGS = {"h1", "h2", "h3", "h4", "h5", "h6", "p", "ul", "ol", "li", "a", "code", "pre"}
SAFE_TAGS |= {"em", "strong", "hr", "br", "blockquote", "table", "thead", "tbody", "tr"}
SAFE_TAGS |= {"th", "td", "s"}


def _render(text: str) -> _Tags:
    """HTML of ``text`` from a real renderer that trusts its input: raw HTML on, tables on,
    and no filtering of link schemes (as some renderers do not filter)."""
    renderer = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    renderer.validateLink = lambda url: True  # pyright: ignore[reportAttributeAccessIssue]
    parser = _Tags()
    parser.feed(renderer.render(text))
    return parser


def test_descriptions_and_names_cannot_inject_html_or_links(
    db_manager: GraphDB, tmp_path: Path
) -> None:
    nodes = [("FOLDER", "/pkg", "Root: " + HOSTILE[0])]
    nodes += [("FILE", f"/pkg/m{i}.py", text) for i, text in enumerate(HOSTILE)]
    nodes += [("FUNCTION", f"/pkg/m{i}.py::f{i}", text) for i, text in enumerate(HOSTILE)]
    nodes += [("FILE", "/pkg/a`b<i>.py", "A name with a backtick.")]
    nodes += [("CLASS", "/pkg/a`b<i>.py::C`<script>", "A class.")]
    _document(db_manager, nodes)
    pages = export_markdown(db_manager, "/pkg", tmp_path / "out")
    assert len(pages) == len(HOSTILE) + 2
    for page in pages:
        text = page.read_text()
        html = _render(text)
        tags = {tag for tag, _ in html.tags}
        assert tags <= SAFE_TAGS, (page.name, tags - SAFE_TAGS, text)
        for tag, attrs in html.tags:
            if tag == "a":
                href = dict(attrs)["href"] or ""
                assert href.endswith(".md") and (page.parent / unquote(href)).is_file(), href
            assert all(name == "href" for name, _ in attrs) and not (tag != "a" and attrs)
        if "a%60b" in page.name:
            assert html.code[0] == "/pkg/a`b<i>.py", "the path stays in its code span"
            assert "C`<script> (class)" in text.replace("\\", "")


def test_cli_export_refuses_a_used_folder_in_one_line(
    db_manager: GraphDB,
    db_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if not isinstance(db_manager, FalkorDBManager):
        pytest.skip("the CLI is pointed at the graph by URI; done on FalkorDB")
    _document(db_manager, SIMPLE)
    out = tmp_path / "site"
    out.mkdir()
    (out / "README.md").write_text("mine\n")
    uri = db_env["BLARIFY_LAB_URI"]
    assert main(["export", "/pkg", "--out", str(out), "--uri", uri]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "database" not in line]
    assert len(err) == 1 and "not empty" in err[0] and "--force" in err[0]
    assert main(["export", "/pkg", "--out", str(out), "--uri", uri, "--force"]) == 0
    assert (out / "README.md").read_text() == "mine\n" and (out / "index.md").is_file()


def _assert_links_resolve(pages: list[Path]) -> None:
    import re

    for page in pages:
        for target in re.findall(r"\]\(([^)]+)\)", page.read_text()):
            assert (page.parent / unquote(target)).is_file(), (page, target)
