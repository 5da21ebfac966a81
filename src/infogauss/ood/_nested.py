"""Estimators saved inside another estimator's model file (ensemble members, the base model
of :class:`~infogauss.ood.NormAwareOOD`).

A member is written by its own ``save`` (so every kind of :mod:`infogauss.persistence`
nests the same way, with its own invariants) and its metadata and arrays are stored in the
outer file under a prefix; the outer checksum covers them. Loading rebuilds it with its own
``_from_state``.
"""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path
from typing import Any

from .. import persistence


def _kind_class(kind: str) -> type:
    module, name = persistence._KINDS[kind]
    return getattr(importlib.import_module(module), name)


def nested_state(est: Any, what: str) -> tuple[dict, dict]:
    """``({"kind", "params", "attrs"}, arrays)`` of a fitted infogauss estimator ``est``."""
    kind = type(est).__name__
    if kind not in persistence._KINDS or _kind_class(kind) is not type(est):
        raise TypeError(
            f"cannot save {what}: a {type(est).__module__}.{kind} has no infogauss model file "
            "(model files hold infogauss estimators only, never pickles); use infogauss "
            "detectors as members to save the ensemble"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = est.save(Path(tmp) / "member.npz")
        meta, arrays = persistence.read_state(path, kind)
    return {"kind": kind, "params": meta["params"], "attrs": meta["attrs"]}, arrays


def nested_from_state(path: Any, sub: Any, arrays: dict, what: str) -> Any:
    """Rebuild a nested estimator from what :func:`nested_state` stored."""
    err = persistence.ModelFileError
    if not isinstance(sub, dict) or set(sub) != {"kind", "params", "attrs"} \
            or not isinstance(sub["params"], dict) or not isinstance(sub["attrs"], dict):
        raise err(path, f"the metadata of {what} is malformed")
    if sub["kind"] not in persistence._KINDS:
        raise err(path, f"{what} is of an unknown estimator kind {sub['kind']!r}")
    try:
        cls = _kind_class(sub["kind"])
    except ImportError as exc:
        raise ImportError(f"{str(path)!r} holds a {sub['kind']} ({what}), which needs: {exc}") from exc
    return cls._from_state(path, {"params": sub["params"], "attrs": sub["attrs"]}, arrays)
