"""Sphinx configuration of the infogauss documentation.

Build with ``make docs`` (``python -m sphinx -W --keep-going -b html docs docs/_build/html``);
``tests/test_docs.py`` builds it the same way. Needs the ``docs`` extra and, for the API
reference, every optional dependency (``pip install -e ".[all,docs]"``): autodoc imports each
module it documents.
"""

from __future__ import annotations

import importlib.metadata
import re

project = "infogauss"
author = "The infogauss developers"
copyright = "The infogauss developers"  # noqa: A001 - the name Sphinx reads
release = importlib.metadata.version("infogauss")
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",  # the Markdown pages (architecture.md, security.md, the user guide)
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",  # the numpydoc docstrings of the package (STYLE.md, rule 9)
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# -- autodoc / autosummary -------------------------------------------------------------------
# One page per public module (docs/api/*.rst): ``automodule`` with ``:members:`` documents
# exactly the module's ``__all__``, so a name added to ``__all__`` appears without editing the
# docs. autosummary only draws the summary table of docs/api/index.rst; it generates no stub
# files (nothing generated lands in the source tree).
autosummary_generate = False
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    # methods a class inherits from an infogauss base (the detectors of ``infogauss.ood``
    # share ``ood._base.CalibratedDetector``) are documented on the class; the walk up the
    # MRO stops at the first of these third-party or builtin bases
    "inherited-members": "BaseEstimator, OutlierMixin, TransformerMixin, "
    "ClassNamePrefixFeaturesOutMixin, BaseDetector, Module, tuple, BaseException, object",
}
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc Parameters sections carry the types
autodoc_inherit_docstrings = False  # scikit-learn's get_params/set_params stay out
autodoc_preserve_defaults = True
add_module_names = False

# -- numpydoc --------------------------------------------------------------------------------
numpydoc_show_class_members = False  # autodoc documents the members in full below the class
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# -- MyST ------------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# -- HTML ------------------------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"infogauss {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Gaussian models of contrastive embeddings",
    "fixed_sidebar": True,
}

# -- members left out of the API reference ---------------------------------------------------
# Methods a class inherits from scikit-learn, PyOD, torch or the builtins
# (``get_metadata_routing``, ``set_output``, ``fit_transform``, ...) and the
# ``set_fit_request``/``set_predict_request`` methods scikit-learn generates for every
# estimator whose methods take metadata are not part of the infogauss API: their docstrings
# are those projects' own (with references into their own glossaries). Methods defined by an
# infogauss class, including a shared infogauss base, stay.
_SKLEARN_GENERATED = re.compile(r"^set_\w+_request$")


def _skip_member(app, what, name, obj, skip, options):
    if what not in ("class", "exception"):
        return None
    if _SKLEARN_GENERATED.match(name):
        return True
    target = obj.fget if isinstance(obj, property) else obj
    target = getattr(target, "__func__", target)  # classmethods, staticmethods
    if isinstance(obj, property) or callable(target):
        if not (getattr(target, "__module__", None) or "").startswith("infogauss"):
            return True
    return None


def _public_bases(app, name, obj, options, bases):
    """Show a private infogauss base class (``ood._base.CalibratedDetector``) as its bases."""
    i = 0
    while i < len(bases):
        base = bases[i]
        module = getattr(base, "__module__", "")
        private = any(part.startswith("_") for part in module.split("."))
        if module.startswith("infogauss.") and (private or base.__name__.startswith("_")):
            bases[i:i + 1] = [b for b in base.__bases__ if b not in bases]
        else:
            i += 1


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("autodoc-process-bases", _public_bases)
