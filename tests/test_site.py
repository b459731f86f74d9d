"""The course website, read as a reader would: built from the committed notebooks, opened from disk in a real browser.

The browser is the system's Chromium (Debian's ``chromium``), driven by Playwright over ``file://`` with every
request that leaves the disk refused. Without that browser the browser tests are skipped, saying what to install.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = ROOT / "build" / "screenshots"


def test_the_repository_address_is_the_same_everywhere():
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb")):
        installs = re.findall(r'fruitlib @ git\+([^"\\]+)', notebook.read_text())
        assert installs == [REPOSITORY], notebook.name  # its install cell, and nothing else
    readme = (ROOT / "README.md").read_text()
    assert set(re.findall(r"https://github\.com/[\w-]+/fruit-transfer", readme)) == {REPOSITORY}


def build(out: Path, students: bool = False) -> Path:
    command = [sys.executable, str(ROOT / "website" / "build.py"), "--out", str(out)]
    command += ["--students"] if students else []
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr  # warnings are errors: any warning fails the build
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("site"))


def test_the_students_edition_leaves_the_answers_out(tmp_path):
    out = build(tmp_path / "site", students=True)
    assert not (out / "solutions").exists()
    assert "answers" not in (out / "index.html").read_text().lower().split("<main", 1)[1].split("</main>")[0]
    assert (out / "notebooks" / "04-transfer-run.html").is_file()


def test_every_page_is_there_and_each_notebook_downloads(site):
    names = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    notebooks = [p.stem for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))]
    assert {f"notebooks/{n}.html" for n in notebooks} <= names
    assert {"index.html", "docs/teaching.html", "docs/glossary.html", "command-line.html", "data/README.html"} <= names
    assert len([n for n in names if n.startswith("solutions/")]) == 7
    for n in notebooks:
        assert (site / "notebooks" / f"{n}.ipynb").read_bytes() == (ROOT / "notebooks" / f"{n}.ipynb").read_bytes()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no system Chromium: install it (apt-get install chromium) to run the browser tests")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (make setup does)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def local_target(page_url: str, href: str) -> tuple[Path, str] | None:
    """The file (and fragment) a link on a ``file://`` page points to, or None for links that leave the site."""
    if re.match(r"^(https?|mailto|javascript):", href):
        return None
    parts = urlsplit(urljoin(page_url, href))
    return Path(unquote(parts.path)).resolve(), parts.fragment


def offline_page(browser, refused: list[str], errors: list[str]):
    """A browser tab that refuses every request leaving the disk (noting it) and notes console errors."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith("file://")
            else (refused.append(route.request.url), route.abort())
        ),
    )
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page


def read(page, path: Path, name: str) -> tuple[list[str], int]:
    """Open ``path`` as a reader would: what is wrong with it, and how many formulas it typeset."""
    problems, typeset = [], 0
    page.goto(path.as_uri(), wait_until="load")
    maths = page.locator("span.math, div.math").count()
    if maths:
        page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000)
        page.evaluate("MathJax.startup.promise")
        typeset = page.locator("mjx-container").count()
        if typeset < maths:
            problems.append(f"{name}: {maths - typeset} of {maths} formulas not typeset")
    for image in page.locator("img").all():
        src, alt = image.get_attribute("src"), image.get_attribute("alt") or ""
        if not image.evaluate("img => img.complete && img.naturalWidth > 0"):
            problems.append(f"{name}: image {src} did not load")
        if len(alt.split()) < 3 or re.search(r"\.(png|jpe?g|svg)\b", alt):
            problems.append(f"{name}: image {src} has no alt text that says what it shows ({alt!r})")
    for href in set(page.locator("a[href]").evaluate_all("links => links.map(a => a.getAttribute('href'))")):
        target = local_target(page.url, href)
        if target is None:
            continue
        file, fragment = target
        if not file.is_file():
            problems.append(f"{name}: link {href} leads nowhere")
        elif fragment and file.suffix == ".html" and f'id="{fragment}"' not in file.read_text():
            problems.append(f"{name}: link {href} has no anchor #{fragment}")
    return problems, typeset


def pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if not p.relative_to(site).as_posix().startswith("_"))


def test_every_page_reads_offline_in_a_real_browser(site, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems, refused, errors, typeset = [], [], [], 0
    page = offline_page(browser, refused, errors)
    for path in pages(site):
        name, errors[:] = path.relative_to(site).as_posix(), []
        found, formulas = read(page, path, name)
        problems += found + [f"{name}: console error: {e}" for e in errors]
        typeset += formulas
        if name.startswith(("notebooks/", "solutions/")) and not name.endswith("README.html"):
            colab = page.locator("a.colab").get_attribute("href")
            if not colab.endswith(f"/blob/main/{name.removesuffix('.html')}.ipynb"):
                problems.append(f"{name}: its Colab link opens {colab}")
        if name in ("index.html", "notebooks/04-transfer-run.html"):
            shot = SHOTS / f"{name.replace('/', '-').removesuffix('.html')}.png"
            page.screenshot(path=str(shot))
            print(f"screenshot: {shot}")
    assert problems == [] and refused == [], "\n".join(problems + refused)
    assert typeset > 0  # the course has maths, and it was typeset


def test_the_bundle_unpacks_into_a_course_that_opens_from_disk(site, browser, tmp_path):
    data = tmp_path / "GroceryStoreDataset"
    (data / "dataset").mkdir(parents=True)
    (data / "LICENSE").write_text("MIT")
    (data / "dataset" / "classes.csv").write_text("Apple,0\n")
    weights = tmp_path / "resnet50-0676ba61.pth"
    weights.write_bytes(b"not really weights")
    archive = tmp_path / "course.zip"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "website" / "bundle.py"),
            "--data",
            str(data),
            "--weights",
            str(weights),
            "--site",
            str(site),
            "--out",
            str(archive),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    unpacked = tmp_path / "unpacked"
    shutil.unpack_archive(archive, unpacked)
    course = unpacked / "fruit-course"
    assert sorted(p.name for p in course.iterdir()) == ["README.txt", "course", "data", "site", "weights"]
    assert (course / "data" / "GroceryStoreDataset" / "dataset" / "classes.csv").read_text() == "Apple,0\n"
    assert (course / "weights" / weights.name).read_bytes() == weights.read_bytes()
    assert (course / "course" / "notebooks" / "04-transfer-run.ipynb").is_file()
    assert "FRUITLIB_WEIGHTS" in (course / "README.txt").read_text()
    refused, errors, typeset = [], [], 0
    page = offline_page(browser, refused, errors)
    problems = []
    for name in ("index.html", "notebooks/01-transfer-learning-concepts.html", "notebooks/04-transfer-run.html"):
        found, formulas = read(page, course / "site" / name, name)
        problems += found + [f"{name}: console error: {e}" for e in errors]
        typeset += formulas
    assert problems == [] and refused == [] and typeset > 0, "\n".join(problems + refused)


def test_the_bundle_says_what_is_wrong_with_its_input(site, tmp_path):
    def bundle(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, str(ROOT / "website" / "bundle.py"), "--site", str(site), *args],
            capture_output=True,
            text=True,
        )
        assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        return done.stderr

    assert "is not a folder" in bundle("--data", str(tmp_path / "missing"))
    assert "must be .pth files" in bundle("--data", str(tmp_path), "--weights", str(tmp_path / "w.bin"))
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o555)
    if not os.access(read_only, os.W_OK):  # root writes anywhere
        assert "could not write" in bundle("--data", str(tmp_path), "--out", str(read_only / "c.zip"))
