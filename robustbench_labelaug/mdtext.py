"""Text from files (model names, class names, model_info text, titles) written into Markdown: ``leaderboard.md``
and ``rbla compare --markdown``. Markdown renderers (MkDocs, GitHub) pass raw HTML through, so every such value is
escaped as the HTML page escapes it (Jinja2's autoescape: no tag renders, no script runs), plus the characters
Markdown gives a meaning (``|`` ends a table cell, ``[``/``]`` start a link, `````, ``*`` and ``\\``), and kept on
one line (a line break would end the table row). Links are written only for http(s) URLs (as the page does), with
the characters that could end the link target percent-encoded. Imports nothing heavy."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote

_MARKDOWN = re.compile(r"([\\`*\[\]|])")
_URL_SAFE = ":/?#@!$&+,;=%~-._*"  # what a link target keeps as it is; ( ) < > " ' | [ ] \ ` and spaces are encoded


def md_text(value: Any) -> str:
    """``value`` as literal text in Markdown (a table cell, a heading, a list item): white space runs (line breaks
    included) become one space, ``&``, ``<`` and ``>`` become HTML entities, and Markdown's own characters are
    backslash-escaped. The one escaping function of every Markdown file the package writes."""
    text = " ".join(str(value).split())
    return _MARKDOWN.sub(r"\\\1", html.escape(text, quote=False))


def md_code(value: Any) -> str:
    """``value`` as a code span (an id, a file name): one line, no backtick inside (it would end the span), ``|``
    escaped (GitHub's tables split on it even there). Renderers escape a code span's HTML themselves."""
    text = " ".join(str(value).split()).replace("`", "'").replace("|", "\\|")
    return f"`{text}`"


def md_link(text: Any, url: Any) -> str:
    """``[text](url)`` with ``text`` escaped by :func:`md_text`; just the escaped text where ``url`` is not an
    http(s) URL (``javascript:``, ``data:``, ... are dropped, as on the HTML page)."""
    shown = md_text(text)
    if not shown or not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return shown
    return f"[{shown}]({quote(url.strip(), safe=_URL_SAFE)})"


__all__ = ["md_code", "md_link", "md_text"]
