"""Build the course website into ``site/`` from the notebooks' committed outputs (nothing is executed).

    python website/build.py [--students] [--out site]

It stages the pages in ``build/site-src`` (the notebooks, the answers unless ``--students``, the teaching plan,
the glossary, the data's README, the benchmarks' README, the article summary, and this folder's pages), puts
MathJax 3 among the site's own files (from npm's registry, kept in ``build/npm``), and runs Sphinx with MyST-NB
and the book theme, warnings as errors. Configuration: ``website/conf.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MATHJAX = "mathjax@3.2.2"  # one file, tex-svg-full.js: every TeX extension and its glyphs, no fonts to fetch
PAGES = [
    "notebooks/[0-9][0-9]-*.ipynb",
    "docs/teaching.md",
    "docs/glossary.md",
    "docs/reference-article.md",
    "data/README.md",
    "benchmarks/*",
    "benchmarks/results/*",
    "README.md",
]  # README.md: only its command-line sections are shown
ANSWERS = ["solutions/[0-9][0-9]-*-answers.ipynb", "solutions/README.md"]


def fail(message: str) -> None:
    sys.exit(f"make site: {message}")


def stage(src: Path, students: bool) -> None:
    """Copy what the site shows into ``src``, with the repository's layout, so that relative links keep working."""
    shutil.rmtree(src, ignore_errors=True)
    for pattern in PAGES + ([] if students else ANSWERS):
        for path in sorted(ROOT.glob(pattern)):
            if path.is_file():
                (src / path.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, src / path.relative_to(ROOT))
    for path in (ROOT / "website").glob("*.md"):
        shutil.copy2(path, src / path.name)


def mathjax(static: Path) -> None:
    """MathJax 3's SVG build into ``static/mathjax``, so that maths typesets with no network at view time."""
    cache = ROOT / "build" / "npm"
    tarball = next(cache.glob("mathjax-3*.tgz"), None)
    if tarball is None:
        cache.mkdir(parents=True, exist_ok=True)
        if shutil.which("npm") is None:
            fail("MathJax comes from npm's registry, and npm is missing: install Node.js (apt-get install npm)")
        done = subprocess.run(
            ["npm", "pack", MATHJAX, "--pack-destination", str(cache), "--silent"], capture_output=True, text=True
        )
        tarball = next(cache.glob("mathjax-3*.tgz"), None)
        if done.returncode or tarball is None:
            fail(f"could not fetch {MATHJAX} from npm's registry: {done.stderr.strip() or done.stdout.strip()}")
    with tarfile.open(tarball) as archive:
        member = archive.getmember("package/es5/tex-svg-full.js")
        (static / "mathjax").mkdir(parents=True, exist_ok=True)
        (static / "mathjax" / "tex-svg-full.js").write_bytes(archive.extractfile(member).read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", action="store_true", help="leave the exercise answers out")
    parser.add_argument("--out", default=str(ROOT / "site"), help="the folder to write the site into")
    args = parser.parse_args()
    began = time.perf_counter()
    src = ROOT / "build" / "site-src"
    stage(src, args.students)
    mathjax(ROOT / "build" / "site-static")
    out, html = Path(args.out), ROOT / "build" / "site-html"  # built in build/, where MyST-NB puts its own files
    shutil.rmtree(html, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-W",
        "--keep-going",
        "-q",
        "-E",
        "-b",
        "html",
        "-c",
        str(ROOT / "website"),
        "-d",
        str(ROOT / "build" / "site-doctrees"),
        str(src),
        str(html),
    ]
    env = os.environ | ({"FRUITLIB_SITE_STUDENTS": "1"} if args.students else {})
    if subprocess.run(command, env=env).returncode:
        fail("Sphinx stopped on the warnings above; fix them (the site builds with warnings as errors)")
    shutil.rmtree(out, ignore_errors=True)  # a clean site: no page left over from an earlier build
    shutil.move(html, out)
    pages = [
        p
        for p in out.rglob("*.html")
        if not p.relative_to(out).as_posix().startswith("_") and p.name not in ("genindex.html", "search.html")
    ]
    print(
        f"site: {out}/index.html, {len(pages)} pages (and search), built in {time.perf_counter() - began:.0f} s"
        + (" (students' edition: no answers)" if args.students else "")
    )


if __name__ == "__main__":
    main()
