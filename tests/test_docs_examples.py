"""Every Python example in the README and the docs runs (each ```python block on its own, in a fresh
namespace). Fragments that are not meant to run on their own (a protocol's signatures) are fenced ```py."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
BLOCKS = [(page, number, code) for page in PAGES for number, code in enumerate(BLOCK.findall(page.read_text()), 1)]


def test_the_readme_has_examples():
    assert sum(page.name == "README.md" for page, _, _ in BLOCKS) >= 2


@pytest.mark.parametrize(("page", "number", "code"), BLOCKS,
                         ids=[f"{p.relative_to(ROOT)}#{n}" for p, n, _ in BLOCKS])
def test_the_example_runs(page, number, code):
    exec(compile(code, f"{page.name} example {number}", "exec"), {"__name__": "__example__"})


def test_every_public_name_is_on_the_api_page():
    import longrnn
    import longrnn.nn

    page = (ROOT / "docs" / "api.md").read_text()
    missing = [name for name in [*longrnn.__all__, *longrnn.nn.__all__] if f"`{name}" not in page]
    assert not missing, f"docs/api.md does not describe {missing}"
