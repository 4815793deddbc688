"""The README and docs/ stand alone: every relative link resolves to a file (and heading) in the repository,
and nothing points at the design notes outside it (`../shared`, DESIGN.md, the reference pages)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
# Files that exist only next to the repository, never in it: a link or a mention breaks for every reader.
OUTSIDE = ("../shared", "DESIGN.md", "STYLE.md", "segment-sources.md", "hyperline-api.md", "airflow3.md", "peers.md")

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.MULTILINE)
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def prose(text: str) -> str:
    """The text a reader follows links in: fenced code blocks and code spans removed."""
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    body = prose(text)
    return [m.group(1) for m in _INLINE_LINK.finditer(body)] + [m.group(1) for m in _REFERENCE_DEF.finditer(body)]


def is_external(target: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) is not None  # http:, https:, mailto:


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        anchor, n = base, 0
        while anchor in found:  # GitHub numbers repeated headings: name, name-1, name-2
            n += 1
            anchor = f"{base}-{n}"
        found.add(anchor)
    return found


def broken_links(page: Path, root: Path = REPO) -> list[str]:
    problems = []
    for target in links(page.read_text(encoding="utf-8")):
        if is_external(target):
            continue
        path_part, _, fragment = target.partition("#")
        resolved = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not resolved.is_relative_to(root):
            problems.append(f"{target}: outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            problems.append(f"{target}: no heading #{fragment} in {resolved.relative_to(root)}")
    return problems


def test_there_are_pages_to_check():
    names = {p.relative_to(REPO).as_posix() for p in PAGES}
    assert {"README.md", "docs/architecture.md", "docs/operations.md", "docs/adr/README.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(page: Path):
    assert not broken_links(page), f"{page.relative_to(REPO)}: broken links: {broken_links(page)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_page_refers_to_files_outside_the_repository(page: Path):
    text = page.read_text(encoding="utf-8")
    found = [name for name in OUTSIDE if name in text]
    assert not found, f"{page.relative_to(REPO)} mentions {found}: carry the facts here, in the repository"


def test_the_checker_catches_what_it_is_for(tmp_path: Path):
    """A broken file link, a missing heading and a link out of the repository are caught;
    links in code, external links and good anchors are not."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## Its part\n", encoding="utf-8")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Title\n\n## Some heading: with `code`\n\n"
        "[ok](other.md) [ok](other.md#its-part) [ok](#some-heading-with-code) [ok](https://example.com/x.md)\n"
        "[bad](nowhere.md) [bad](other.md#no-such-heading) [bad](../../outside.md)\n"
        "`[in code](missing.md)`\n```\n[in a block](missing.md)\n```\n",
        encoding="utf-8",
    )
    problems = broken_links(page, root=tmp_path)
    assert [p.split(":")[0] for p in problems] == ["nowhere.md", "other.md#no-such-heading", "../../outside.md"]
