"""report.html on a folder of mixed runs, opened in a real browser (headless Chromium, Debian's package,
driven by Playwright): no console error, every picture loaded, one interactive chart per panel, legends that
tell every configuration apart, sortable tables, and axe-core's contrast and alt-text rules pass. The
screenshot is saved beside the report. Skips, saying why, where Chromium or axe-core is not installed
(`make setup` installs both)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from longrnn.reporting import curves
from longrnn.reporting.report import load_runs, report
from longrnn.runs.config import RunConfig, apply_overrides
from longrnn.training import train

ROOT = Path(__file__).parents[1]
AXE = Path(os.environ.get("LONGRNN_AXE", ROOT / ".venv" / "axe" / "node_modules" / "axe-core" / "axe.min.js"))
BASE = ["task.seq_len=10", "task.validation_size=32", "task.test_size=32", "model.hidden_size=16",
        "train.batch_size=8", "train.threads=1", "train.stop_when_solved=false", "train.eval_every=10",
        "train.diagnostics=false"]
RUNS = {  # the cases the report must draw: two optimizers, several seeds, one evaluation, a divergence
    "adam s0": ["task.name=copy", "model.cell=lstm", "train.steps=30", "train.seed=0"],
    "adam s1": ["task.name=copy", "model.cell=lstm", "train.steps=30", "train.seed=1"],
    "sgd": ["task.name=copy", "model.cell=lstm", "train.steps=30", "train.optimizer=sgd", "train.lr=0.3"],
    "one evaluation": ["task.name=copy", "model.cell=gru", "train.steps=10"],
    "diverged": ["task.name=copy", "model.cell=plrnn", "train.steps=30", "train.optimizer=sgd",
                 "train.momentum=0", "train.lr=1e20", "train.clip=0"],
    "other task": ["task.name=adding", "model.cell=gru", "train.steps=20"],
}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mixed")
    for overrides in RUNS.values():
        train(apply_overrides(RunConfig(out=str(out / "runs")), [*BASE, *overrides]), quiet=True)
    return out


def test_the_panels_tell_every_configuration_apart_and_mark_what_happened(mixed):
    pytest.importorskip("matplotlib")
    adding, copy = curves.panels(load_runs([str(mixed / "runs")]))
    assert (adding.task, copy.task) == ("adding", "copy")
    labels = {s.label for s in copy.series}
    assert len(labels) == 4, "adam, sgd, gru and the diverged plrnn: four configurations, four names"
    assert any("optimizer=sgd" in label for label in labels) and any("optimizer=adam" in label for label in labels)
    assert copy.common.endswith("unless named: steps=30, momentum=0.9, clip=1.0")  # what most runs share
    assert [len(s.steps) for s in copy.series if "gru" in s.label] == [1]
    (diverged,) = [s for s in copy.series if s.diverged_at is not None]
    assert diverged.steps == [] and diverged.diverged_at >= 1
    assert copy.baseline is not None and adding.baseline is not None
    assert "no memoryless baseline" not in copy.alt and "1 diverged" in copy.alt


def test_report_html_in_a_real_browser(mixed):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (extra dev)")
    pytest.importorskip("plotly")
    browser_path = shutil.which("chromium") or shutil.which("chromium-headless-shell")
    if browser_path is None:
        pytest.skip("no Chromium on this machine: apt-get install chromium (make setup does where it can)")
    if not AXE.is_file():
        pytest.skip(f"axe-core is not at {AXE}: npm install --prefix .venv/axe axe-core (make setup does)")
    report([str(mixed / "runs")], out=mixed / "report", html=True)
    page_file = mixed / "report" / "report.html"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems = []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
            page.goto(page_file.as_uri())
            page.wait_for_load_state("load")
            assert problems == []
            images = page.eval_on_selector_all("img", "els => els.map(e => [e.alt, e.complete && e.naturalWidth > 0])")
            assert all(alt and loaded for alt, loaded in images), images  # none missing, none without alt text
            assert page.locator(".js-plotly-plot").count() == 4, "per (task, T) panel: its curves and its scores"
            dots = page.evaluate("() => document.getElementById('scores-1').data.filter(t => t.mode === 'markers')"
                                 ".map(t => [t.y[0], t.x.length])")
            assert sorted(n for _, n in dots) == [1, 1, 1, 1, 1, 2], dots  # a dot per finished seed, a mean each
            legend = page.locator("#curves-1 .legendtext").all_text_contents()
            assert len(legend) == len(set(legend)) >= 5  # 3 lines + the diverged run + the baseline
            assert any("diverged at step" in t for t in legend) and any("memoryless baseline" in t for t in legend)

            table = page.locator("table").first
            column = [h.strip() for h in table.locator("thead th").all_text_contents()].index("test (mean ± std)")
            table.locator("thead th button").nth(column).click()
            cells = table.locator(f"tbody tr td:nth-child({column + 1})").all_text_contents()
            numbers = [float(c.split()[0]) for c in cells if c[0] != "—"]
            assert numbers == sorted(numbers) and cells[-1].startswith("—"), cells  # missing values last
            table.locator("thead th button").nth(column).click()
            cells = table.locator(f"tbody tr td:nth-child({column + 1})").all_text_contents()
            assert [float(c.split()[0]) for c in cells if c[0] != "—"] == sorted(numbers, reverse=True)

            page.add_script_tag(path=str(AXE))
            found = page.evaluate("""() => axe.run(document, {runOnly: {type: "rule",
                values: ["color-contrast", "image-alt", "svg-img-alt", "html-has-lang", "document-title"]}})""")
            assert found["violations"] == [], [(v["id"], [n["target"] for n in v["nodes"]][:3])
                                               for v in found["violations"]]
            page.screenshot(path=str(mixed / "report" / "screenshot.png"), full_page=True)
            assert problems == []
        finally:
            browser.close()
