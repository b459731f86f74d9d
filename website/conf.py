"""Sphinx configuration of the course website (``make site``; ``website/build.py`` stages the pages)."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
PROJECT = tomllib.loads((HERE.parent / "pyproject.toml").read_text())["project"]

project = "From ImageNet to fruit"
author = "the fruitlib authors"
copyright = "2026, the fruitlib authors; photos: the Grocery Store Dataset (MIT licence)"
release = PROJECT["version"]
repository = PROJECT["urls"]["Repository"]  # the one place the repository's address is set
students = os.environ.get("FRUITLIB_SITE_STUDENTS") == "1"

extensions = ["myst_nb", "course"]
exclude_patterns = ["README.md"]
nb_execution_mode = "off"  # the committed outputs are the ones shown
nb_ipywidgets_js = {}  # no widget scripts from a CDN
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
suppress_warnings = ["mystnb.unknown_mime_type"]

html_theme = "sphinx_book_theme"
html_title = "From ImageNet to fruit"
html_static_path = [str(HERE.parent / "build" / "site-static")]  # MathJax, put there by build.py
html_show_sourcelink = False
html_context = {"default_mode": "light"}  # without it the theme logs an error on a first visit
html_theme_options = {
    "repository_url": repository,
    "use_repository_button": True,
    "use_download_button": False,  # each notebook page has its own download link (course.py)
    "home_page_in_toc": True,
    "show_toc_level": 2,
}
mathjax_path = "mathjax/tex-svg-full.js"  # served from the site itself: maths typesets offline and from file://
