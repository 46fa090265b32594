"""MkDocs hooks for parkit's site (mkdocs.yml, ``hooks:``).

Fix-ups so that the pages read well both on the site and as plain files in the
repository:

* A page whose first line is ``<!-- include PATH -->`` shows that file of the
  repository instead (``docs/changelog.md`` is ``CHANGELOG.md``), so it is
  never stale; the rest of the page is what the repository's readers (and the
  site, if the file is missing) see. The included file's links are made to work
  on the site: to a docs page, to another page that includes a file, or, for a
  file the site does not have (``examples/quickstart.py``), the file's path as
  code instead of a dead link.
* A page's link to a repository file outside ``docs/`` that a page includes
  (``../benchmarks/README.md`` is ``benchmarking.md``) points at that page. Any
  other link out of ``docs/`` stays as it is, and ``mkdocs build --strict``
  fails on it.
* parkit's docstrings are Google style with Markdown inline code, but some name
  other objects the reST way (``:class:`parkit.Lock```). mkdocstrings renders
  the role as text before the code span; it is dropped, keeping the code.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Repository files outside docs/ -> the site page that includes them.
INCLUDED = {
    "benchmarks/README.md": "benchmarking.md",
    "CHANGELOG.md": "changelog.md",
    "examples/README.md": "examples.md",
}

_INCLUDE = re.compile(r"<!-- include (\S+) -->")
_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|exc|data|obj):(?=<code>)")


def _site_target(repo_path: str, anchor: str) -> str | None:
    """The site page (relative to docs/) that shows ``repo_path``, if any."""
    if repo_path.startswith("docs/"):
        return repo_path.removeprefix("docs/") + anchor
    page = INCLUDED.get(repo_path)
    return None if page is None else page + anchor


def _relink(markdown: str, base: str, here: str, included: bool) -> str:
    """Rewrite the links of a file in folder ``base``, shown by a page in ``here``."""

    def one(match: re.Match[str]) -> str:
        text, target = match.group(1), match.group(2)
        if re.match(r"[a-z]+:|#|/", target):
            return match.group(0)  # a URL, an anchor on the page, an absolute path
        path, _, anchor = target.partition("#")
        repo_path = posixpath.normpath(posixpath.join(base, path))
        page = _site_target(repo_path, f"#{anchor}" if anchor else "")
        if page is not None:
            return f"[{text}]({posixpath.relpath(posixpath.join('docs', page), here)})"
        if not included:
            return match.group(0)  # a docs page, or a broken link strict mode reports
        shown = text.strip("`")
        return f"`{repo_path}`" if shown in (path, repo_path) else f"{text} (`{repo_path}`)"

    return _LINK.sub(one, markdown)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Include a repository file where a page asks; fix links out of ``docs/``."""
    here = posixpath.normpath(posixpath.join("docs", posixpath.dirname(page.file.src_uri)))
    include = _INCLUDE.match(markdown)
    if include is not None and (ROOT / include.group(1)).is_file():
        rel = include.group(1)
        text = (ROOT / rel).read_text(encoding="utf-8")
        return _relink(text, posixpath.dirname(rel), here, included=True)
    return _relink(markdown, here, here, included=False)


def on_page_content(html: str, **_: Any) -> str:
    """Remove reST role prefixes in front of code spans."""
    return _ROLE.sub("", html)
