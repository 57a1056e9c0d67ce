"""docs/benchmarks.md is a user's record that `make bench` rewrites in place: each benchmark
writes only the generated block between its own markers, and every hand-written line (headings,
readings, the summary) stays where it is. The rule: markers on lines of their own, one start
and one end per name, no section's markers inside another's, and no headings or markers inside
a generated block."""

from __future__ import annotations

import ast
import re
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
NOTES = REPO / "docs" / "dev" / "performance-notes.md"
WRITERS = sorted([*(REPO / "benchmarks").glob("*.py"), *(REPO / "scripts").glob("*.py")])

sys.path.insert(0, str(REPO / "benchmarks"))
import sections  # noqa: E402


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == name)
            or (isinstance(node.func, ast.Attribute) and node.func.attr == name)
        )
    ]


def _constants(tree: ast.Module) -> dict[str, ast.expr]:
    return {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def writer_sections() -> dict[str, list[str]]:
    """{script: the section names it writes}, read from the source: a writer names its
    sections in a module constant, `SECTION = "..."` or `SECTIONS = (...)`, and passes
    `SECTION` to write_section, or `args.name` when its `--name` choices are `SECTIONS`."""
    found: dict[str, list[str]] = {}
    for path in WRITERS:
        if path.name == "sections.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = _calls(tree, "write_section")
        if not calls:
            continue
        constants = _constants(tree)
        names: list[str] = []
        for call in calls:
            arg = call.args[1]
            if isinstance(arg, ast.Name) and arg.id == "SECTION":
                names.append(ast.literal_eval(constants["SECTION"]))
            elif isinstance(arg, ast.Attribute) and arg.attr == "name":
                names += list(ast.literal_eval(constants["SECTIONS"]))
            else:
                raise AssertionError(
                    f"{path.name}:{call.lineno}: write_section's name must be SECTION or "
                    "args.name (with --name choices=SECTIONS), so the docs test can find it"
                )
        found[path.name] = list(dict.fromkeys(names))
    return found


def outside_lines(text: str) -> list[str]:
    """The hand-written lines: every line outside the generated blocks (markers included)."""
    spans = sorted(sections.blocks(text).values())
    kept, at = [], 0
    for start, end in spans:
        kept.append(text[at:start])
        at = end
    kept.append(text[at:])
    return "".join(kept).splitlines()


def test_the_doc_markers_are_flat_pairs_around_generated_text_only() -> None:
    text = DOC.read_text(encoding="utf-8")
    spans = sections.blocks(text)  # raises on a missing, duplicated or nested marker
    starts = re.findall(r"<!-- ([\w.-]+):start -->", text)
    assert sorted(starts) == sorted(spans)
    for name, (start, end) in spans.items():
        block = text[start:end]
        sections.check_body(name, block)  # no heading, no marker inside
        assert block.strip(), f"section {name!r} is empty"


def test_every_writer_section_is_in_the_doc() -> None:
    found = writer_sections()
    # the writers of `make bench` and the other bench targets, at least
    expected = {"prepare_bench.py", "train_bench.py", "decode_bench.py", "ddp_bench.py"}
    assert expected | {"peers_bench.py", "serve_load.py", "train_ab.py"} <= set(found)
    spans = sections.blocks(DOC.read_text(encoding="utf-8"))
    for script, names in found.items():
        for name in names:
            assert name in spans, f"{script} writes section {name!r}, which the doc lacks"


def test_the_writers_leave_every_hand_written_line_in_place(tmp_path: Path) -> None:
    copy = tmp_path / "benchmarks.md"
    shutil.copy(DOC, copy)
    before = copy.read_text(encoding="utf-8")
    names = [name for names in writer_sections().values() for name in names]
    for name in names:
        sections.write_section(copy, name, f"SENTINEL {name}\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    after = copy.read_text(encoding="utf-8")
    assert outside_lines(after) == outside_lines(before)
    spans = sections.blocks(after)
    for name in names:
        start, end = spans[name]
        assert after[start:end].startswith(f"SENTINEL {name}\n")
    assert len(spans) == len(sections.blocks(before))  # nothing appended, nothing lost


BROKEN = {
    "nested": "<!-- a:start -->\nx\n<!-- b:start -->\ny\n<!-- b:end -->\n<!-- a:end -->\n",
    "overlapping": "<!-- a:start -->\nx\n<!-- b:start -->\n<!-- a:end -->\ny\n<!-- b:end -->\n",
    "two starts": "<!-- a:start -->\nx\n<!-- a:end -->\n\n<!-- a:start -->\ny\n<!-- a:end -->\n",
    "no end": "## A\n\n<!-- a:start -->\nx\n\n## B\n\ntext\n",
    "no start": "## A\n\nx\n<!-- a:end -->\n",
    "end before start": "<!-- a:end -->\nx\n<!-- a:start -->\n",
    "marker inside a line": "text <!-- a:start --> x\n<!-- a:end -->\n",
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_write_section_refuses_broken_markers_and_writes_nothing(case: str, tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_text("# Title\n\nhand-written\n\n" + BROKEN[case], encoding="utf-8")
    before = path.read_bytes()
    for name in ("a", "b", "new"):
        with pytest.raises(sections.MarkerError):
            sections.write_section(path, name, "generated")
        assert path.read_bytes() == before


@pytest.mark.parametrize(
    "body", ["## A heading\n\ntext", "text\n<!-- b:start -->\n<!-- b:end -->", "# Title"]
)
def test_write_section_refuses_a_block_with_headings_or_markers(body: str, tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_text("## A\n\n<!-- a:start -->\nold\n<!-- a:end -->\n", encoding="utf-8")
    with pytest.raises(sections.MarkerError):
        sections.write_section(path, "a", body)
    assert path.read_text(encoding="utf-8").count("old") == 1


def test_write_section_replaces_only_between_its_markers(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    doc = "## A\n\nreading of A\n\n<!-- a:start -->\nold\n<!-- a:end -->\n\nafter A\n"
    path.write_text(doc, encoding="utf-8")
    body = "new\n\n```bash\n# a comment in a code block is not a heading\n```"
    sections.write_section(path, "a", body)
    assert path.read_text(encoding="utf-8") == doc.replace("old\n", body + "\n")
    sections.write_section(path, "b", "fresh")  # neither marker: appended at the end
    text = path.read_text(encoding="utf-8")
    assert text.endswith("after A\n\n<!-- b:start -->\nfresh\n<!-- b:end -->\n")


def test_commands_in_the_docs_show_repository_paths_only(tmp_path: Path) -> None:
    argv = [str(tmp_path / "corpus"), "--work", str(REPO / "runs" / "bench" / "m30")]
    argv += ["--venvs", str(tmp_path), "--set", f"train.init_from={tmp_path}/avg.pt"]
    argv += ["--set", "train.lr=0.0005", "--model", str(REPO / ".gpu" / "avg.pt")]
    argv += ["--out", str(DOC), "--settings", "50:100", "20:50"]
    assert sections.shown_command("multi30k_bench.py", argv, positional=["CORPUS"]) == (
        ".venv/bin/python benchmarks/multi30k_bench.py CORPUS --work runs/bench/m30 "
        "--venvs VENVS --set train.init_from=INIT_FROM --set train.lr=0.0005 --model MODEL "
        "--out docs/benchmarks.md --settings 50:100 20:50"
    )


def test_writers_generate_no_headings() -> None:
    """A heading in a generated block would be refused after the benchmark ran: the writers'
    text holds none (headings are hand-written in the doc). Functions that write another page
    themselves (`write_text`, e.g. multi30k_bench's part of docs/length-study.md) are left out."""
    for path in WRITERS:
        if path.name == "sections.py" or "write_section(" not in path.read_text():
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for top in tree.body:
            if isinstance(top, ast.FunctionDef) and _calls(top, "write_text"):
                continue
            for node in ast.walk(top):
                if isinstance(node, ast.JoinedStr) and node.values:
                    node = node.values[0]
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    assert not re.match(r"#{1,6} ", node.value), f"{path.name}: {node.value[:40]!r}"


WORDS = re.compile(r"\b(issues?|sessions?)\b|/tmp/|\.gpu/", re.IGNORECASE)


@pytest.mark.parametrize("page", [DOC, NOTES], ids=lambda p: p.name)
def test_the_pages_speak_of_measurements_not_of_how_they_were_worked_on(page: Path) -> None:
    bad = [
        f"{page.name}:{number}: {line.strip()[:80]}"
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if WORDS.search(line)
    ]
    assert not bad, "\n".join(bad)


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lowercased, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lstrip("#").strip().lower())
    return text.replace(" ", "-")


def test_every_link_to_a_section_of_the_doc_finds_its_heading() -> None:
    text = DOC.read_text(encoding="utf-8")
    anchors = {_anchor(h) for h in sections.headings(text)}
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert links, "the summary links its rows to their sections"
    assert not sorted(set(links) - anchors)
    notes = re.findall(r"\]\(dev/performance-notes\.md(?:#([^)]*))?\)", text)
    note_anchors = {_anchor(h) for h in sections.headings(NOTES.read_text(encoding="utf-8"))}
    assert not sorted({a for a in notes if a} - note_anchors)
