"""Compatibility module: the embedding-set format is :mod:`infogauss.datasets.embeddings`.

Re-exported under its old names for scripts that import ``_embeddings`` from ``benchmarks/``
(``gpu_paper_run.py``).
"""

from infogauss.datasets.embeddings import EmbeddingSet  # noqa: F401
from infogauss.datasets.embeddings import read_embedding_set as load_embeddings  # noqa: F401
from infogauss.datasets.embeddings import write_embedding_set as write_embeddings  # noqa: F401
