"""The Markdown subset that reports and results pages use, rendered to self-contained HTML."""

import base64

from longrnn.reporting.html import to_html

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def test_headings_tables_lists_paragraphs_and_inline_marks(tmp_path):
    (tmp_path / "c.png").write_bytes(PNG)
    text = """# Title

Some **bold** text with `code`
that goes on, and a [link](https://example.org).

<!-- BEGIN GENERATED -->
| a | b < c |
|---|---|
| 1 | 2 |

* first item
  continued
* second

![curves](c.png) and ![missing](nope.png)
"""
    page = to_html(text, tmp_path)
    assert "<h1>Title</h1>" in page
    assert "<p>Some <strong>bold</strong> text with <code>code</code> that goes on, and a " in page
    assert '<a href="https://example.org">link</a>' in page
    assert "<th>b &lt; c</th>" in page and "<td>1</td><td>2</td>" in page and "---" not in page
    assert "<li>first item continued</li>" in page and "<li>second</li>" in page
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in page
    assert "(image nope.png not found)" in page and "BEGIN GENERATED" not in page
