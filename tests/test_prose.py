"""Prose follows outputs: a number stated in the text is printed by an output, or quoted from a named source.

For every notebook and answers notebook (``solutions/``), each percentage, "N points", number of seconds and count
of photos in its markdown cells must appear among the numbers its own outputs print (a percentage may be printed
as a fraction: 0.198 for 19.8%; seconds must be printed as seconds). The README and the teaching plan
(``docs/teaching.md``) are held to the outputs of all the notebooks and answers, and a sentence of theirs that
names the benchmarks to the raw outputs they wrote (``benchmarks/**/*.json``, ``*.txt``).
Numbers quoted from elsewhere are allowed only as listed in QUOTED, and only in a sentence that names their source.
Code (inline or in blocks) and formulas are not prose and are left out.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb")) + sorted(
    (ROOT / "solutions").glob("[0-9][0-9]-*.ipynb")
)
NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)"
STATED = r"(?<![\w.,])(?:" + NUMBER + r"\s?[-\u2013]\s?)?" + NUMBER  # a number, or a range "136-144"
CLAIMS = {  # what a stated number is, by the words after it
    "percentage": STATED + r"\s?%",
    "points": STATED + r"\s(?:percentage\s)?points?\b",
    "seconds": STATED + r"\s?(?:s|sec|seconds?)\b(?![-\w])",
    "photos": STATED + r"\s(?:[A-Za-z-]+\s){0,2}photos?\b",
}
# (kind, number as written, a word its sentence must contain: the source it is quoted from)
QUOTED = [
    ("percentage", "96.2", "article"),
    ("percentage", "71.6", "article"),
    ("percentage", "96", "article"),
    ("photos", "9,000", "article"),
    ("photos", "1.28", "ImageNet"),  # the size of ImageNet's training set
    ("percentage", "95", "interval"),  # the confidence level of an interval, not a result
    ("percentage", "80", "article"),
    ("percentage", "20", "article"),  # the article's 80/20 split
]


def prose(text: str) -> str:
    """Markdown without code blocks, inline code, formulas and link targets."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$", " ", text, flags=re.S)
    return re.sub(r"\]\([^)]*\)", "]", text)


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+|\n\s*\n|\n\s*[-|*]\s", text) if s.strip()]


def value(number: str) -> float:
    return float(number.replace(",", ""))


def claims(text: str) -> list[tuple[str, str, str]]:
    """(kind, number as written, its sentence) for every number the prose states."""
    found = []
    for sentence in sentences(prose(text)):
        for kind, pattern in CLAIMS.items():
            found += [
                (kind, number, sentence.strip())
                for m in re.finditer(pattern, sentence)
                for number in m.groups()
                if number
            ]
    return found


def output_text(notebook: Path) -> str:
    parts = []
    for cell in json.loads(notebook.read_text())["cells"]:
        for out in cell.get("outputs", []):
            parts.append("".join(out.get("text", "")))
            parts.append("".join(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def printed(text: str) -> dict[str, set[float]]:
    """The numbers printed in ``text``: all of them, and those printed as seconds."""
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    return {
        "any": {value(n) for n in re.findall(r"(?<![\w.])\d+(?:\.\d+)?", text)},
        "seconds": {value(n) for n in re.findall(r"(?<![\w.])(\d+(?:\.\d+)?)\s?(?:s|seconds?)\b", text)},
    }


def is_printed(kind: str, number: str, numbers: dict[str, set[float]]) -> bool:
    decimals = len(number.split(".")[1]) if "." in number else 0
    target = round(value(number), decimals)
    pool = numbers["seconds"] if kind == "seconds" else numbers["any"]
    if any(round(n, decimals) == target for n in pool):
        return True
    return kind == "percentage" and any(n <= 1 and round(100 * n, decimals) == target for n in numbers["any"])


def is_quoted(kind: str, number: str, sentence: str) -> bool:
    return any(kind == k and number == n and source.lower() in sentence.lower() for k, n, source in QUOTED)


def unsupported(markdown: str, numbers: dict[str, set[float]]) -> list[str]:
    return [
        f"{number} ({kind}) in: {sentence[:160]}"
        for kind, number, sentence in claims(markdown)
        if not is_printed(kind, number, numbers) and not is_quoted(kind, number, sentence)
    ]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_number_in_a_notebooks_text_is_printed_by_its_outputs(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    markdown = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert unsupported(markdown, printed(output_text(notebook))) == []


def benchmark_numbers() -> dict[str, set[float]]:
    """Every number in the benchmarks' raw outputs; JSON gives seconds without a unit, so any number may be one."""
    files = sorted((ROOT / "benchmarks").rglob("*.json")) + sorted((ROOT / "benchmarks").rglob("*.txt"))
    found = printed("\n".join(f.read_text() for f in files))["any"]
    return {"any": found, "seconds": found}


@pytest.mark.parametrize("document", ["README.md", "docs/teaching.md"])
def test_every_number_in_the_readme_and_the_plan_is_printed_by_a_notebook_or_a_benchmark(document):
    numbers, measured = printed("\n".join(output_text(nb) for nb in NOTEBOOKS)), benchmark_numbers()
    missing = [
        f"{number} ({kind}) in: {sentence[:160]}"
        for kind, number, sentence in claims((ROOT / document).read_text())
        if not is_printed(kind, number, numbers)
        and not is_quoted(kind, number, sentence)
        and not ("benchmark" in sentence.lower() and is_printed(kind, number, measured))
    ]
    assert missing == []


def test_the_check_catches_what_it_should():
    numbers = printed("run time: 37 s\nalways answering 'Apple': 19.8%\naccuracy 0.640\n1142 training photos")
    text = (
        "It took 48 s. The baseline is 19.8% and the probe 64%. Of the 1,142 training photos, 5 photos "
        "per class... The article reports 96.2%. It beats it by 7 points. We claim 96.2% ourselves. "
        "Runs took 30-37 s."
    )
    assert unsupported(text, numbers) == [
        "48 (seconds) in: It took 48 s.",
        "5 (photos) in: Of the 1,142 training photos, 5 photos per class...",
        "7 (points) in: It beats it by 7 points.",
        "96.2 (percentage) in: We claim 96.2% ourselves.",
        "30 (seconds) in: Runs took 30-37 s.",
    ]  # both ends of a range count
    assert unsupported("It took 37 s, `epochs = 48 s`, $p = 7 points$.", numbers) == []
