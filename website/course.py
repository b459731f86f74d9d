"""What the course website adds to Sphinx and MyST-NB: alt text for figures, open and download links on every
notebook page, and the students' edition (no answers)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from docutils import nodes
from myst_nb.core.render import NbElementRenderer
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform

_render_image = NbElementRenderer.render_image


def render_image(self: NbElementRenderer, data) -> list[nodes.Element]:
    """MyST-NB's image, with the alt text the notebook displayed it with (``fruitlib.plots.show``).

    MyST-NB 1.4 takes an image's alt text only from cell metadata, and falls back to the file's path; the
    notebooks give each figure a sentence in its output's metadata, which this passes on.
    """
    rendered = _render_image(self, data)
    alt = data.output_metadata.get(data.mime_type, {}).get("alt")
    if alt:
        rendered[0]["alt"] = alt
    return rendered


def open_links(app: Sphinx, doctree: nodes.document) -> None:
    """Under a notebook page's title: open it in Colab or Kaggle, or download it."""
    docname = app.env.docname
    if app.env.doc2path(docname).suffix != ".ipynb":
        return
    on_github = f"{app.config.repository}/blob/main/{docname}.ipynb"
    owner_repo = app.config.repository.removeprefix("https://github.com/")
    links = [
        ("Open in Colab", f"https://colab.research.google.com/github/{owner_repo}/blob/main/{docname}.ipynb"),
        ("Open in Kaggle", f"https://kaggle.com/kernels/welcome?src={on_github}"),
        ("Download the notebook (.ipynb)", f"{Path(docname).name}.ipynb"),
    ]
    para = nodes.paragraph(classes=["open-links"])
    for i, (text, uri) in enumerate(links):
        para += nodes.reference(text, text, refuri=uri, classes=[text.split()[-1].strip("().").lower()])
        if i < len(links) - 1:
            para += nodes.Text(" · ")
    section = next(iter(doctree.findall(nodes.section)))
    section.insert(section.first_child_matching_class(nodes.title) + 1, para)


def copy_notebooks(app: Sphinx, exception: Exception | None) -> None:
    """Each notebook beside its page, for the download link."""
    if exception is None and app.builder.format == "html":
        for docname in app.env.found_docs:
            source = Path(app.env.doc2path(docname))
            if source.suffix == ".ipynb":
                shutil.copy2(source, Path(app.outdir) / f"{docname}.ipynb")


def students_index(app: Sphinx, docname: str, source: list[str]) -> None:
    """The students' edition: the index lists no answers."""
    if app.config.students and docname == "index":
        source[0] = re.sub(r"<!-- answers -->.*?<!-- /answers -->", "", source[0], flags=re.S)


class AnswerLinksAsText(SphinxPostTransform):
    """The students' edition: a link to an answers notebook, which it leaves out, becomes its text."""

    default_priority = 5  # before MyST resolves links (10)

    def run(self, **kwargs) -> None:
        if not self.app.config.students:
            return
        for node in list(self.document.findall(addnodes.pending_xref)):
            if "solutions/" in node.get("reftarget", ""):
                node.replace_self(nodes.inline("", node.astext()))


def setup(app: Sphinx) -> dict:
    NbElementRenderer.render_image = render_image
    app.add_config_value("repository", "", "env")
    app.add_config_value("students", False, "env")
    app.connect("doctree-read", open_links)
    app.connect("build-finished", copy_notebooks)
    app.connect("source-read", students_index)
    app.add_post_transform(AnswerLinksAsText)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
