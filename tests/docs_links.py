#!/usr/bin/env python3
"""Every relative link and image in README.md and docs/ points at a file that exists, and every
#anchor at a heading of that file (GitHub's slugs). Prints each broken link; exit 1 if any.

    python3 tests/docs_links.py
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def slugs(path):
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats."""
    seen, out, fenced = {}, set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if fenced or not line.startswith("#"):
            continue
        text = line.lstrip("#").strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def broken_links(path):
    lines, fenced = [], False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        lines.append("" if fenced or line.startswith("```") else line)
    # Inline code holds no links; blank it out (same length, so offsets keep their lines).
    text = re.sub(r"`[^`\n]*`", lambda m: " " * len(m.group()), "\n".join(lines))
    for match in LINK.finditer(text):
        target, number = match.group(1), text.count("\n", 0, match.start()) + 1
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.exists():
            yield number, target, "no such file"
        elif anchor and resolved.suffix == ".md" and anchor not in slugs(resolved):
            yield number, target, "no such heading"


def main():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    failures = [(page, *b) for page in pages for b in broken_links(page)]
    for page, number, target, why in failures:
        print(f"{page.relative_to(ROOT)}:{number}: {target}: {why}")
    print(f"{len(pages)} pages, {len(failures)} broken links")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
