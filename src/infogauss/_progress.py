"""Progress bars: the only module that imports tqdm (an optional dependency)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def progress(iterable: Iterable | None = None, *, enabled: bool = True, **kwargs: Any):
    """Wrap ``iterable`` in a tqdm bar when ``enabled`` and tqdm is installed.

    Without tqdm (or with ``enabled=False``) a silent stand-in with the same small API
    (``update``, ``set_postfix``, ``close``, iteration, context manager) is returned.
    """
    if enabled:
        try:
            from tqdm.auto import tqdm
        except ImportError:  # pragma: no cover - tqdm is in the train extra
            pass
        else:
            return tqdm(iterable, **kwargs)
    return _Silent(iterable)


class _Silent:
    def __init__(self, iterable: Iterable | None) -> None:
        self._iterable = iterable
        self.n = 0

    def __iter__(self) -> Iterator:
        return iter(self._iterable if self._iterable is not None else ())

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_description(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass
