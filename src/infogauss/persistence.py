r"""Model files for every fitted estimator: arrays + JSON metadata, checksummed, never pickled.

One format family for :class:`~infogauss.GaussianModel`, :class:`~infogauss.MahalanobisOOD`,
:class:`~infogauss.GaussianLikelihoodDetector` and the other estimators that offer ``save``:

* an ``.npz`` archive (a zip of ``.npy`` files) holding only numeric, boolean or string
  arrays — read back with ``allow_pickle=False``, so loading a file never runs code;
* one entry ``__infogauss_meta__``: JSON with ``magic``, ``format_version``, the estimator
  ``kind`` (class name), the ``infogauss_version`` that wrote it, its constructor ``params``,
  its scalar fitted attributes, and ``sha256``;
* ``sha256`` covers the metadata (all of it but the digest itself, canonical JSON) **and**
  every array (name, dtype, shape, bytes), so an edited count, a changed parameter or a
  flipped bit is refused;
* written atomically (:mod:`infogauss._io`), with a plain file's permissions.

:func:`load` reads any of them and returns the right class; ``Kind.load(path)`` does the same
and refuses a file of another kind. Every low-level failure (truncation, a bad zip, a bit flip,
a missing entry, a wrong shape, invariants that do not hold) raises
:class:`ModelFileError`: ``corrupt or incompatible model file: <path>: <what>``.

Compatibility rule
------------------
A file records the ``format_version`` it was written in. This infogauss reads every format
version up to :data:`FORMAT_VERSION` (GaussianModel files of version 1, whose checksum covered
the arrays only, still load) and refuses newer ones with a message to upgrade. The format
version is raised whenever a file written by this version could be misread by an older
reader; unknown parameters or attributes are refused, never ignored.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from . import _io

__all__ = ["FORMAT_VERSION", "ModelFileError", "load", "save_state", "read_state"]

#: Format version written by this infogauss (readers accept every version up to it).
FORMAT_VERSION = 2
_META_KEY = "__infogauss_meta__"
_MAGIC = "infogauss"
# kind -> (module, class); the classes implement _state() and _from_state(...)
_KINDS = {
    "GaussianModel": ("infogauss.model", "GaussianModel"),
    "MahalanobisOOD": ("infogauss.ood", "MahalanobisOOD"),
    "LocalGaussianOOD": ("infogauss.ood", "LocalGaussianOOD"),
    "GaussianMixtureOOD": ("infogauss.ood", "GaussianMixtureOOD"),
    "KernelDensityOOD": ("infogauss.ood", "KernelDensityOOD"),
    "EnsembleOOD": ("infogauss.ood", "EnsembleOOD"),
    "NormAwareOOD": ("infogauss.ood", "NormAwareOOD"),
    "GaussianLikelihoodDetector": ("infogauss.anomaly", "GaussianLikelihoodDetector"),
    "CalibratedRetriever": ("infogauss.retrieval", "CalibratedRetriever"),
    "Gaussianizer": ("infogauss.gaussianize", "Gaussianizer"),
}


class ModelFileError(ValueError):
    """A model file that is corrupt, tampered with, of another kind, or from a newer format."""

    def __init__(self, path: str | os.PathLike, what: str) -> None:
        self.path, self.what = str(path), what
        super().__init__(f"corrupt or incompatible model file: {str(path)!r}: {what}")


def _package_version() -> str:
    from ._version import __version__

    return __version__


def digest(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over the metadata (without ``sha256``, canonical JSON) and every array."""
    h = hashlib.sha256()
    body = {k: v for k, v in meta.items() if k != "sha256"}
    h.update(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _check_array(name: str, a: Any) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "biufcU" or a.dtype.hasobject:
        raise TypeError(
            f"cannot save array {name!r} of dtype {a.dtype}: model files hold numeric, boolean "
            "or string arrays only (no pickled objects)"
        )
    return a


def save_state(
    path: str | os.PathLike,
    kind: str,
    params: dict[str, Any],
    attrs: dict[str, Any],
    arrays: dict[str, np.ndarray],
) -> Path:
    """Write one estimator's state as a model file (atomic; no pickle).

    Parameters
    ----------
    path : str or path-like
        Destination (its directory must exist).
    kind : str
        The estimator's class name (one of the kinds :func:`load` knows).
    params : dict
        Constructor parameters (JSON-serialisable).
    attrs : dict
        Scalar fitted attributes (JSON-serialisable).
    arrays : dict of str to ndarray
        Fitted arrays (numeric, boolean or string dtypes).

    Returns
    -------
    Path
    """
    if kind not in _KINDS:
        raise ValueError(f"`kind` must be one of {sorted(_KINDS)}, got {kind!r}")
    arrays = {k: _check_array(k, v) for k, v in arrays.items()}
    meta = {
        "magic": _MAGIC,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "infogauss_version": _package_version(),
        "params": params,
        "attrs": attrs,
        "arrays": sorted(arrays),
    }
    try:
        json.dumps(meta, allow_nan=True)
    except TypeError as exc:
        raise TypeError(f"cannot save {kind}: a parameter or attribute is not JSON: {exc}") from exc
    meta["sha256"] = digest(meta, arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays, **{_META_KEY: np.array(json.dumps(meta, sort_keys=True))})
    return _io.write_bytes(path, buf.getvalue(), name="path")


def read_state(
    path: str | os.PathLike, kind: str | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and verify a model file; return ``(meta, arrays)``.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ModelFileError
        Anything else wrong with the file, including a ``kind`` other than the one asked for.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model file at {str(path)!r}")
    if path.is_dir():
        raise ModelFileError(path, "is a directory, not a model file")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            path, "is not a readable infogauss model file: not an .npz archive (truncated, or "
            "not written by save())"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            if _META_KEY not in names:
                raise ModelFileError(path, f"is not an infogauss model file (no {_META_KEY} entry)")
            meta = json.loads(str(npz[_META_KEY][()]))
            arrays = {k: npz[k] for k in names if k != _META_KEY}
    except ModelFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile/zlib/numpy raise many types on corruption
        raise ModelFileError(
            path, f"is not a readable infogauss model file ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(meta, dict):
        raise ModelFileError(path, "its metadata is not a JSON object")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(path, f"has no valid format_version (got {version!r})")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            path, f"uses model format {version}, but this infogauss ({_package_version()}) reads "
            f"formats up to {FORMAT_VERSION}; upgrade infogauss to read it"
        )
    if version == 1:
        meta = _upgrade_v1(path, meta, arrays)
    if meta.get("magic") != _MAGIC:
        raise ModelFileError(path, "is not an infogauss model file (wrong magic)")
    if meta.get("sha256") != digest(meta, arrays):
        raise ModelFileError(path, "failed its checksum: the file was modified or corrupted")
    if sorted(arrays) != meta.get("arrays"):
        raise ModelFileError(path, "its arrays do not match the list in its metadata")
    found = meta.get("kind")
    if found not in _KINDS:
        raise ModelFileError(path, f"holds an unknown estimator kind {found!r}")
    if kind is not None and found != kind:
        raise ModelFileError(path, f"holds a {found}, not a {kind}; use infogauss.load(path)")
    for key in ("params", "attrs"):
        if not isinstance(meta.get(key), dict):
            raise ModelFileError(path, f"its metadata has no {key!r} object")
    return meta, arrays


def _upgrade_v1(path: Path, meta: dict, arrays: dict) -> dict:
    """GaussianModel files of format 1: checksum over the arrays only; same contents."""
    if meta.get("magic") != "infogauss.GaussianModel":
        raise ModelFileError(path, "is not an infogauss GaussianModel file")
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(key.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    if meta.get("sha256") != h.hexdigest():
        raise ModelFileError(path, "failed its checksum: the file was modified or corrupted")
    new = {
        "magic": _MAGIC, "format_version": 1, "kind": "GaussianModel",
        "infogauss_version": meta.get("infogauss_version"), "params": meta.get("params"),
        "attrs": {
            "n_features_in_": meta.get("n_features_in"),
            "n_samples_seen_": meta.get("n_samples_seen"),
            "shrinkage_": meta.get("shrinkage_"),
            "feature_names_in_": meta.get("feature_names_in"),
        },
        "arrays": sorted(arrays),
    }  # fmt: skip
    new["sha256"] = digest(new, arrays)
    return new


def load(path: str | os.PathLike) -> Any:
    """Load any infogauss model file and return the fitted estimator of the right class.

    Examples
    --------
    >>> import numpy as np, os, tempfile, infogauss
    >>> model = infogauss.GaussianModel().fit(np.random.default_rng(0).normal(size=(50, 3)))
    >>> path = model.save(os.path.join(tempfile.mkdtemp(), "model.npz"))
    >>> type(infogauss.load(path)).__name__
    'GaussianModel'
    """
    meta, arrays = read_state(path)
    module, name = _KINDS[meta["kind"]]
    try:
        cls = getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise ImportError(f"{str(path)!r} holds a {name}, which needs: {exc}") from exc
    return cls._from_state(path, meta, arrays)


def sub_state(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays saved under ``prefix`` (a nested estimator), without the prefix."""
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def prefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``arrays`` with every name prefixed (to nest an estimator's state in another's)."""
    return {prefix + k: v for k, v in arrays.items()}


def check_params(path: Any, cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """Refuse parameters ``cls`` does not take (a file from another version, or edited)."""
    known = set(cls().get_params(deep=False))
    unknown = sorted(set(params) - known)
    if unknown:
        raise ModelFileError(path, f"has parameters {unknown} that {cls.__name__} does not take")
    return params
