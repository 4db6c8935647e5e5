"""Ordering rules of candidate blocks (Numba kernels that call each other).

Two rules, chosen by ``signed``:

- ``'rank'`` (``signed=True``): the paper's ordering (§3.3 step 2):
  negatives by increasing ``|x|``, then non-negatives increasing, then NaN.
  It prefers a negative NCC to a smaller positive one, so averaged blocks
  keep a negative bias.
- ``'min-abs'`` (``signed=False``): by increasing ``|x|`` whatever the sign,
  then NaN: the candidates closest to zero, which targets an NCC of zero.
  With one block over the whole image and L = 1 it is the paper's
  no-post-processing selection (§5.3: the snapshot of minimum ``|NCC|``).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from ..errors import DippasInputError


def rank_key(x: float) -> tuple[int, float]:
    """Sort key of one NCC value under the paper's ordering.

    Sorting by ``(rank_key(x), snapshot_index)`` gives the assembly order.

    Returns
    -------
    (int, float)
        ``(0, -x)`` for ``x < 0`` (negatives first, closest to zero first),
        ``(1, x)`` for ``x >= 0`` (then non-negatives, smallest first),
        ``(2, 0.0)`` for NaN (last).
    """
    v = float(x)
    if math.isnan(v):
        return (2, 0.0)
    if v < 0.0:
        return (0, -v)
    return (1, v)


#: Rank-key bit of the non-negative group (see :func:`_rank_keys`).
_NONNEG_BIT = np.uint64(1 << 63)
#: Rank key of NaN: larger than every other key.
_NAN_KEY = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


#: The ordering rules (see the module docstring).
RULES = ("rank", "min-abs")


def check_rule(rule: str) -> bool:
    """``True`` for the signed rule ``'rank'``, ``False`` for ``'min-abs'``.

    Raises
    ------
    DippasInputError
    """
    if rule not in RULES:
        raise DippasInputError(f"unknown ordering rule {rule!r}; use one of {', '.join(RULES)}")
    return rule == "rank"


@nb.njit(cache=True, nogil=True)
def _rank_keys(v, keys, signed):
    """Integer rank keys: sorting them (stably) gives the assembly order.

    The key of a non-NaN value is the IEEE-754 bit pattern of ``|x|``, which
    orders like ``|x|`` as an unsigned integer and stays below ``2**63``;
    the top bit is set for ``x >= 0`` (so every negative comes first), and
    NaN gets the largest key. This is :func:`rank_key` packed in 64 bits.
    Unsigned (``signed`` False), the top bit is never set: order by ``|x|``.
    """
    mag = np.empty(v.shape[0], dtype=np.float64)
    for i in range(v.shape[0]):
        mag[i] = abs(v[i])
    bits = mag.view(np.uint64)
    for i in range(v.shape[0]):
        x = v[i]
        if x < 0.0 or (x >= 0.0 and not signed):
            keys[i] = bits[i]
        elif x >= 0.0:
            keys[i] = bits[i] | _NONNEG_BIT
        else:
            keys[i] = _NAN_KEY
    return keys


@nb.njit(cache=True, nogil=True)
def _order_into(v, out, signed):
    """Write into ``out`` the positions of ``v`` in the assembly order.

    Stable: equal values keep their order in ``v``. ``out`` may be shorter
    than ``v`` (K < n): then only the first K are found, in O(n + K log K)
    (a partition finds the K-th key; ties at it are taken by position).
    """
    n = v.shape[0]
    k = out.shape[0]
    if k == 0:
        return out
    keys = _rank_keys(v, np.empty(n, dtype=np.uint64), signed)
    if k >= n:
        order = np.argsort(keys, kind="mergesort")
        for t in range(n):
            out[t] = order[t]
        return out
    kth = np.partition(keys.copy(), k - 1)[k - 1]
    pos = np.empty(k, dtype=np.int64)
    sub = np.empty(k, dtype=np.uint64)
    j = 0
    for i in range(n):  # strictly below the K-th key: fewer than K of them
        if keys[i] < kth:
            pos[j] = i
            sub[j] = keys[i]
            j += 1
    for i in range(n):  # then ties at the K-th key, lowest position first
        if j >= k:
            break
        if keys[i] == kth:
            pos[j] = i
            sub[j] = kth
            j += 1
    # stable sort of the K keys; ``pos`` is increasing within each key
    order = np.argsort(sub, kind="mergesort")
    for t in range(k):
        out[t] = pos[order[t]]
    return out


@nb.njit(cache=True, nogil=True)
def _order_blocks_kernel(ncc, out, signed):
    """Per-block ordering: ``ncc`` (nby, nbx, M'), ``out`` (nby, nbx, K)."""
    nby, nbx, _ = ncc.shape
    for by in range(nby):
        for bx in range(nbx):
            _order_into(ncc[by, bx], out[by, bx], signed)
    return out


def order_candidates(ncc_values: np.ndarray, rule: str = "rank") -> np.ndarray:
    """Positions of the candidates of one block, in assembly order.

    Parameters
    ----------
    ncc_values : ndarray, shape (M',)
        NCC of each candidate on the block, candidates listed by increasing
        snapshot index.

    Returns
    -------
    ndarray of int64, shape (M',)
        Negatives by increasing ``|x|``, then non-negatives increasing, then
        NaN; ties keep their input order (lowest snapshot index first).
        Same order as sorting by ``(rank_key(x), position)``. With
        ``rule='min-abs'``: by increasing ``|x|``, then NaN.
    """
    signed = check_rule(rule)
    v = np.ascontiguousarray(ncc_values, dtype=np.float64).reshape(-1)
    return _order_into(v, np.empty(v.shape[0], dtype=np.int64), signed)


def order_blocks(block_ncc: np.ndarray, limit: int | None = None, rule: str = "rank") -> np.ndarray:
    """Assembly order of the candidates of every block.

    Parameters
    ----------
    block_ncc : ndarray, shape (M', nby, nbx)
        NCC of each candidate on each block (:func:`block_ncc_from_cells`).
    limit : int, optional
        Keep only the first ``limit`` positions of each block.
    rule : {'rank', 'min-abs'}
        The ordering rule (module docstring).

    Returns
    -------
    ndarray of int64, shape (nby, nbx, K)
        ``K = min(limit, M')``; positions along axis 0 of ``block_ncc``,
        ordered per block as :func:`order_candidates`.
    """
    arr = np.asarray(block_ncc, dtype=np.float64)
    if arr.ndim != 3:
        raise DippasInputError(f"block NCC must have shape (M, nby, nbx), got {arr.shape}")
    bm = np.ascontiguousarray(np.moveaxis(arr, 0, 2))
    return order_blocks_blockmajor(bm, limit, rule)


def order_blocks_blockmajor(bm: np.ndarray, limit: int | None, rule: str = "rank") -> np.ndarray:
    """:func:`order_blocks` on block-major NCC ``(nby, nbx, M')``, C-contiguous float64."""
    signed = check_rule(rule)
    m = bm.shape[2]
    k = m if limit is None else max(0, min(int(limit), m))
    out = np.empty(bm.shape[:2] + (k,), dtype=np.int64)
    return _order_blocks_kernel(bm, out, signed)
