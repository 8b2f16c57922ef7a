"""Self-contained HTML from the Markdown that `longrnn report` and results pages write.

`to_html(markdown, base)` understands the subset those pages use: ``#`` headings, pipe tables,
``*`` bullet lists, paragraphs, ``**bold**``, `` `code` ``, links, and images ``![alt](file.png)``,
which are read from ``base`` and embedded as data URIs — so the one file opens anywhere, without
Python, the run directories or a network. Every table sorts by a column when its header is clicked
(numbers as numbers, missing values last; `SORT_SCRIPT`). An image that stands alone in a paragraph is a
figure with its alt text as caption; ``figures`` may replace it by other markup (an interactive chart),
and ``script`` is inlined once in the page's head (the chart library).
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f3f3f3; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; }
code { background: #f3f3f3; padding: 0 0.2rem; }
figure { margin: 1.5rem 0; }
figcaption { font-size: 0.85rem; color: #444; }
th button { all: inherit; border: 0; padding: 0; cursor: pointer; }
th button:focus-visible { outline: 2px solid #1f5fa8; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
"""

SORT_SCRIPT = """
function sortKey(text) {
  var m = text.replace(/,/g, "").match(/^\\s*[-+]?(\\d+\\.?\\d*|\\.\\d+)(e[-+]?\\d+)?/i);
  return m ? parseFloat(m[0]) : null;
}
function missing(text) { return text === "" || text.charAt(0) === "\u2014" || /^nan/i.test(text); }
function sortTable(table, col, th) {
  var ascending = th.getAttribute("aria-sort") !== "ascending";
  table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
  th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = a.cells[col].textContent.trim(), y = b.cells[col].textContent.trim();
    var nx = sortKey(x), ny = sortKey(y), missingX = missing(x), missingY = missing(y);
    if (missingX !== missingY) { return missingX ? 1 : -1; }
    var c = (nx !== null && ny !== null) ? nx - ny : x.localeCompare(y);
    return ascending ? c : -c;
  });
  rows.forEach(function (r) { body.appendChild(r); });
}
document.querySelectorAll("table").forEach(function (table) {
  table.querySelectorAll("thead th button").forEach(function (button, col) {
    button.addEventListener("click", function () { sortTable(table, col, button.parentNode); });
  });
});
"""


def inline(text: str, base: Path) -> str:
    """Escape ``text`` and render bold, code, images (embedded) and links."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", lambda m: _image(m.group(1), m.group(2), base), out)
    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', out)


def _image(alt: str, src: str, base: Path) -> str:
    path = base / html.unescape(src)
    if not path.is_file():
        return f"<em>(image {html.escape(src)} not found)</em>"
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{alt}" src="data:image/png;base64,{data}">'


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def _table(rows: list[str], base: Path) -> str:
    head, body = _cells(rows[0]), [_cells(r) for r in rows[2:]]  # rows[1] is the |---| line
    lines = ["<table>", "<thead><tr>" + "".join(f'<th scope="col"><button type="button" title="sort by this '
                                                  f'column">{inline(c, base)}</button></th>' for c in head)
             + "</tr></thead>", "<tbody>"]
    lines += ["<tr>" + "".join(f"<td>{inline(c, base)}</td>" for c in row) + "</tr>" for row in body]
    return "\n".join(lines + ["</tbody>", "</table>"])


ALONE = re.compile(r"^!\[([^\]]*)\]\(([^)]+)\)$")  # a paragraph that is one image


def _figure(alt: str, src: str, base: Path, figures: dict) -> str:
    shown = figures[src] if src in figures else inline(f"![{alt}]({src})", base)
    return f"<figure>\n{shown}\n<figcaption>{html.escape(alt)}</figcaption>\n</figure>"


def _blocks(markdown: str) -> list[list[str]]:
    """Consecutive non-blank lines, split where a table, list or heading starts or ends."""
    blocks: list[list[str]] = []
    for line in markdown.splitlines():
        kind = _kind(line)
        if kind == "blank":
            blocks.append([])
        elif blocks and blocks[-1] and (_kind(blocks[-1][0]) == kind
                                        or (kind == "text" and _kind(blocks[-1][0]) == "list")):
            blocks[-1].append(line)
        else:
            blocks.append([line])
    return [b for b in blocks if b]


def _kind(line: str) -> str:
    stripped = line.strip()
    if not stripped or stripped.startswith("<!--"):
        return "blank"
    if stripped.startswith("#"):
        return "heading"
    if stripped.startswith("|"):
        return "table"
    if stripped.startswith(("* ", "- ")):
        return "list"
    return "text"


def _render(block: list[str], base: Path, figures: dict) -> str:
    kind = _kind(block[0])
    if kind == "text" and len(block) == 1 and (alone := ALONE.match(block[0].strip())):
        return _figure(alone.group(1), alone.group(2), base, figures)
    if kind == "heading":
        level = min(len(block[0]) - len(block[0].lstrip("#")), 6)
        return f"<h{level}>{inline(block[0].lstrip('#').strip(), base)}</h{level}>"
    if kind == "table":
        return _table(block, base)
    if kind == "list":
        items, current = [], []
        for line in block:
            if _kind(line) == "list" and current:
                items.append(" ".join(current))
                current = []
            current.append(line.strip().lstrip("*-").strip() if _kind(line) == "list" else line.strip())
        items.append(" ".join(current))
        return "<ul>\n" + "\n".join(f"<li>{inline(i, base)}</li>" for i in items) + "\n</ul>"
    return f"<p>{inline(' '.join(line.strip() for line in block), base)}</p>"


def to_html(markdown: str, base: str | Path, title: str = "longrnn report", figures: dict | None = None,
            script: str | None = None) -> str:
    """A complete HTML document for ``markdown``; images are read relative to ``base``. ``figures`` maps an
    image's file name to the markup shown instead of it (its alt text stays the caption); ``script`` is
    inlined in the head."""
    body = "\n".join(_render(block, Path(base), figures or {}) for block in _blocks(markdown))
    head = f"<script>{script}</script>" if script else ""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style>{head}</head>\n<body>\n<main>\n{body}\n</main>\n"
            f"<script>{SORT_SCRIPT}</script>\n</body></html>\n")
