"""Compressed sparse rows on numpy arrays: the adjacency form of the numpy impact engine and its helpers."""

from __future__ import annotations

from typing import Any

import numpy as np

Array = Any  # numpy arrays (numpy is untyped for mypy here)


def gather(indptr: Array, rows: Array) -> tuple[Array, Array]:
    """Positions of every entry of CSR ``rows`` (concatenated), and how many each row has."""
    starts = indptr[rows]
    counts = indptr[rows + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64), counts
    offsets = np.cumsum(counts) - counts
    return np.repeat(starts - offsets, counts) + np.arange(total), counts


def csr(rows: Array, cols: Array, n: int, *extra: Array) -> tuple[Array, ...]:
    """(indptr, cols, *extra) sorted by row (stable), for ``n`` rows."""
    order = np.argsort(rows, kind="stable")
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return (indptr, cols[order], *(e[order] for e in extra))
