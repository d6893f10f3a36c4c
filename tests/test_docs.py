"""What the code and the README point to is in the repository.

Every ``docs/physics.md §x`` or ``docs/anatomy.md §x`` the code, the tests, the examples
and the tissue library cite names a section of that file; nothing points to files outside
the clone (the team's ``shared/`` folder, ``DESIGN.md``); every relative link of the README
and of ``docs/`` opens a file.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITING = [
    *sorted((ROOT / "src" / "ablasim").rglob("*.py")),
    *sorted((ROOT / "src" / "ablasim").rglob("*.toml")),
    *sorted((ROOT / "tests").glob("*.py")),
    *sorted((ROOT / "benchmarks").glob("*")),
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]


#: A file outside the clone, or a docs/ file named without its folder (a markdown link
#: inside docs/, ``[physics.md](physics.md)``, is fine).
OUTSIDE = (
    r"shared/reference|\.\./shared|DESIGN\.md|STYLE\.md"
    r"|(?<![/\w\[(])physics\.md|(?<![/\w\[(])anatomy\.md"
)


def _sections(doc: Path) -> set[str]:
    """Section numbers of a markdown file: ``## 2. Damage`` -> 2, ``### 4a. ...`` -> 4a."""
    text = doc.read_text(encoding="utf-8")
    return set(re.findall(r"^#{2,4} (\d+(?:\.\d+)?[a-z]?)\.? ", text, re.M))


def _citations():
    """(file, doc name, section) for every ``docs/NAME.md §x[, §y]`` cited."""
    for f in CITING:
        if f.name == "test_docs.py" or not f.is_file():
            continue
        text = f.read_text(encoding="utf-8")
        for m in re.finditer(r"docs/(physics|anatomy)\.md((?:[ ,]*§\s?[\dA-Za-z.]+)*)", text):
            for sec in re.findall(r"§\s?(\d+(?:\.\d+)?[a-z]?)", m.group(2)):
                yield f.relative_to(ROOT), m.group(1), sec


def test_every_cited_section_exists():
    sections = {name: _sections(ROOT / "docs" / f"{name}.md") for name in ("physics", "anatomy")}
    assert {"0", "1.1", "1.2", "1.5", "2.1", "2.4", "3.1", "3.5", "4a", "4b"} <= sections["physics"]
    cited = list(_citations())
    assert len(cited) > 100  # the library's sources alone cite it on most rows
    missing = sorted({(str(f), n, s) for f, n, s in cited if s not in sections[n]})
    assert not missing, f"cited sections missing from docs/: {missing}"


def test_nothing_points_outside_the_repository():
    bad = []
    for f in CITING:
        if f.name == "test_docs.py" or not f.is_file():
            continue
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(OUTSIDE, line) and "docs/" not in line:
                bad.append(f"{f.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not bad, "\n".join(bad)


def test_relative_links_open_files():
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"
