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
    assert '<th scope="col"><button type="button" title="sort by this column">b &lt; c</button></th>' in page
    assert "<td>1</td><td>2</td>" in page and "---" not in page
    assert "<li>first item continued</li>" in page and "<li>second</li>" in page
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in page
    assert "(image nope.png not found)" in page and "BEGIN GENERATED" not in page


def test_an_image_alone_is_a_figure_that_other_markup_may_replace(tmp_path):
    (tmp_path / "c.png").write_bytes(PNG)
    page = to_html("![the curves](c.png)\n\n![kept](c.png)\n", tmp_path, figures={"c.png": "<div id=chart></div>"},
                   script="var plotted = 1;")
    assert "<figure>\n<div id=chart></div>\n<figcaption>the curves</figcaption>\n</figure>" in page
    assert "<script>var plotted = 1;</script></head>" in page and "<p><figure>" not in page
    assert page.count("<figure>") == 2 and '<html lang="en">' in page
