"""The course around the notebooks: reading load, answers for every exercise, no unfilled template, shared links."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]-*-answers.ipynb"))
MOST_WORDS, MOST_WORDS_IN_A_CELL = 7500, 250  # the whole series' markdown, and one markdown cell (issue 20)
TEMPLATE = re.compile(r"\b[A-Z]{2,}(?:_[A-Z0-9]+)+\b|\{\{.*?\}\}|\bTODO\b|\bFIXME\b|\bXXX\b")


def cells(notebook: Path, kind: str) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == kind]


def words(markdown: str) -> int:
    """Words of prose: code blocks and display maths left out (as the issue counts them)."""
    return len(re.sub(r"```.*?```|\$\$.*?\$\$", "", markdown, flags=re.S).split())


def exercises(notebook: Path) -> list[int]:
    """The numbers of the exercises listed under the notebook's ``## Exercises`` heading."""
    text = next(c for c in cells(notebook, "markdown") if "## Exercises" in c).split("## Exercises", 1)[1]
    return [int(n) for n in re.findall(r"^(\d+)\.\s", text, flags=re.M)]


def test_the_series_is_short_enough_to_read_in_one_class():
    counts = {nb.name: [words(c) for c in cells(nb, "markdown")] for nb in NOTEBOOKS}
    assert sum(sum(c) for c in counts.values()) <= MOST_WORDS, {k: sum(c) for k, c in counts.items()}
    assert {k: max(c) for k, c in counts.items() if max(c) > MOST_WORDS_IN_A_CELL} == {}


@pytest.mark.parametrize("notebook", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.name)
def test_no_template_token_is_left_in_the_prose_or_the_outputs(notebook):
    found = [m.group() for c in cells(notebook, "markdown") for m in TEMPLATE.finditer(re.sub(r"`[^`]*`", "", c))]
    outputs = [o for c in json.loads(notebook.read_text())["cells"] for o in c.get("outputs", [])]
    printed = "\n".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")) for o in outputs)
    found += [m.group() for m in TEMPLATE.finditer(printed) if m.group() not in ("RUN_FILES",)]
    assert found == []


def test_the_template_check_catches_a_leftover_token():
    assert TEMPLATE.findall("the maps show GRADCAM_READING here, {{ value }} and TODO") == [
        "GRADCAM_READING",
        "{{ value }}",
        "TODO",
    ]
    assert TEMPLATE.findall("ImageNet's 1000 classes, ONNX and t-SNE") == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_has_an_answer_under_its_own_heading(notebook):
    answers = ROOT / "solutions" / notebook.name.replace(".ipynb", "-answers.ipynb")
    assert answers.is_file(), f"no answers for {notebook.name}: write {answers.relative_to(ROOT)}"
    asked = exercises(notebook)
    assert asked == list(range(1, len(asked) + 1)) and asked
    headings = [int(n) for c in cells(answers, "markdown") for n in re.findall(r"^## Exercise (\d+)\b", c, re.M)]
    assert headings == asked


@pytest.mark.parametrize("answers", SOLUTIONS, ids=lambda p: p.name)
def test_an_answers_notebook_runs_on_its_own_like_the_notebooks(answers):
    notebook = ROOT / "notebooks" / answers.name.replace("-answers.ipynb", ".ipynb")
    assert cells(answers, "code")[0] == cells(notebook, "code")[0]  # the same install cell (Colab, Kaggle)
    tags = [c.get("metadata", {}).get("tags", []) for c in json.loads(answers.read_text())["cells"]]
    assert any("parameters" in t for t in tags)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_header_links_to_the_teaching_plan(notebook):
    assert "docs/teaching.md" in cells(notebook, "markdown")[0]
    assert (ROOT / "docs" / "teaching.md").is_file() and (ROOT / "docs" / "glossary.md").is_file()


def test_the_glossary_defines_the_terms_a_beginner_meets_first():
    glossary = (ROOT / "docs" / "glossary.md").read_text().lower()
    for term in (
        "epoch",
        "loss",
        "cross-entropy",
        "logits",
        "softmax",
        "pooling",
        "batch norm",
        "probe",
        "t-sne",
        "principal component",
        "fine-tuning",
        "fixed feature extractor",
        "validation",
        "burst",
    ):
        assert f"**{term}" in glossary, f"the glossary has no entry for {term}"


@pytest.mark.parametrize("notebook", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.name)
def test_every_figure_output_has_alt_text_that_says_what_it_shows(notebook):
    figures = [
        (i, o)
        for i, c in enumerate(json.loads(notebook.read_text())["cells"])
        for o in c.get("outputs", [])
        if any(k.startswith("image/") for k in o.get("data", {}))
    ]
    alts = {
        i: [m.get("alt", "") for k, m in o.get("metadata", {}).items() if k.startswith("image/")] for i, o in figures
    }
    missing = {i: a for i, a in alts.items() if not a or len(a[0].split()) < 6 or re.search(r"\.(png|jpe?g)\b", a[0])}
    assert missing == {}, "display figures with fruitlib.plots.show(fig, alt, ...): a sentence saying what it shows"
