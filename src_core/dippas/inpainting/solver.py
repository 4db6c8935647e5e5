"""Regularised inversion of one selector mask, hole by hole (ICIP 2017, step 2).

For a mask and a colour plane ``y``, the inpainted plane ``x`` keeps the
visible pixels (``x = y`` there) and minimises

    ``sum_h w_h (x[i, j + d] - x[i, j])**2 + sum_v w_v (x[i + d, j] - x[i, j])**2``

over the hidden pixels, with ``d = delta``; the sums run over the pairs
whose two pixels lie inside the image (terms that would leave the image are
dropped; see :mod:`dippas.inpainting.masks`).

* ``reg='l2'`` (Tikhonov): all weights are 1, one linear least-squares
  problem.
* ``reg='tv'`` (total variation, anisotropic L1 penalty on the same
  differences): iteratively reweighted least squares. Round 1 uses unit
  weights (it *is* the L2 solution); each further round recomputes
  ``w = 1 / max(|difference|, eps)`` from the current estimate and solves
  again. ``tv_rounds`` counts all the weighted solves (default 4, the
  authors' number of IRLS rounds). With ``tv_weights='iso'`` the weights
  are the authors' isotropic ones instead: every pair starting at pixel
  ``s`` gets ``g / (g**2 + eps)``, ``g = sqrt(dx(s)**2 + dy(s)**2)`` from
  the forward differences at ``s`` on [0, 1] data. A pair's weight then
  depends on the hole and on visible pixels only (the forward neighbours
  of a visible pixel next to a hole are never in another hole of the same
  mask), so holes stay independent.

Holes of one mask are never coupled by the penalty (proof in
:mod:`dippas.inpainting.masks`), so the problem splits into one tiny
least-squares problem per hole: at most ``B**2`` unknowns, whose normal
equations ``A x = b`` form a weighted graph Laplacian restricted to the
hole (Dirichlet data from the visible pixels within ``delta``). They are
solved by Cholesky in Numba, in parallel (``prange``) over the rows of
holes of all the masks of a plane. With unit weights (L2, and TV round 1)
every interior hole has the same matrix, factored once and reused; holes
cut by the border, or whose differences are, get their own factorization,
as does every TV round after the first (its weights differ per hole).

The matrix is positive definite as long as every hole pixel is linked,
through differences, to a visible pixel; :func:`inpaint_plane` checks that
at run time (a failed factorization raises) and the tests check every
image size from one period up.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from ..errors import DippasInputError
from .masks import check_hole_delta, hole_period, holes_decoupled, mask_index_map

#: Accepted names of the regularisers, mapped to their canonical name.
REGULARISERS = {"l2": "l2", "tikhonov": "l2", "tv": "tv", "l1": "tv"}

#: Default number of IRLS rounds of the TV regulariser (the authors' choice).
DEFAULT_TV_ROUNDS = 4

#: Default IRLS floor of the TV weights ``1 / max(|d|, eps)``, in 0-255 units.
#: One grey level: the quantisation step of 8-bit images. Differences below
#: it are not real structure (a flat or saturated patch has exact zeros,
#: which would give infinite weights), so they are penalised quadratically,
#: as in a Huber penalty with a one-level knee; above it the penalty is L1.
#: It is also well below the sensor noise (sigma of about 3), so genuine
#: steps keep their L1 treatment.
DEFAULT_TV_EPS = 1.0

#: IRLS weight schemes of the TV regulariser: ``'aniso'`` (ours, per pair,
#: ``1 / max(|d|, eps)`` in 0-255 units) and ``'iso'`` (the authors',
#: ``g / (g**2 + eps)`` per pixel, ``g = sqrt(dx**2 + dy**2)`` on [0, 1] data).
TV_WEIGHTS = ("aniso", "iso")

#: ``eps`` of the authors' isotropic weights ``g / (g**2 + eps)`` on [0, 1]
#: data. Not given in the slides; 1e-4 puts the weight's maximum at
#: ``g = 0.01``, 2.55 grey levels, just under the sensor noise (sigma of
#: about 3), so real steps get the L1 treatment and noise-level ones are
#: smoothed.
ISO_TV_EPS = 1e-4

#: Floor of the isotropic weights. ``g / (g**2 + eps)`` is 0 on an exactly
#: flat patch (a saturated sky), which would leave a hole with no link to
#: its neighbours and a singular system; the floor (1e-6 of the largest
#: weight, 50 for ``eps = 1e-4``) only acts there.
ISO_WEIGHT_FLOOR = 5e-5

#: Border treatments: ``'drop'`` (differences leaving the image are
#: dropped) or ``'symmetric'`` (the authors': the plane is padded by one
#: period with mirrored pixels, inpainted, and cropped back).
BORDERS = ("drop", "symmetric")


def check_regulariser(reg: str) -> str:
    """Canonical regulariser name, ``'l2'`` or ``'tv'``.

    Raises
    ------
    DippasInputError
        On an unknown name.
    """
    key = str(reg).lower() if isinstance(reg, str) else None
    if key not in REGULARISERS:
        raise DippasInputError(
            f"unknown regulariser {reg!r}; choose 'l2' (Tikhonov) or 'tv' (total variation)"
        )
    return REGULARISERS[key]


@nb.njit(cache=True, nogil=True)
def _cholesky(a, n):
    """In-place lower Cholesky factor of ``a[:n, :n]``; False if not positive definite."""
    for j in range(n):
        s = a[j, j]
        for k in range(j):
            s -= a[j, k] * a[j, k]
        if not s > 0.0:
            return False
        d = math.sqrt(s)
        a[j, j] = d
        for i in range(j + 1, n):
            s = a[i, j]
            for k in range(j):
                s -= a[i, k] * a[j, k]
            a[i, j] = s / d
    return True


@nb.njit(cache=True, nogil=True)
def _cho_solve(fac, b, n, z, x):
    """Solve ``L L^T x = b`` with the lower factor ``fac[:n, :n]``."""
    for i in range(n):
        s = b[i]
        for k in range(i):
            s -= fac[i, k] * z[k]
        z[i] = s / fac[i, i]
    for i in range(n - 1, -1, -1):
        s = z[i]
        for k in range(i + 1, n):
            s -= fac[k, i] * x[k]
        x[i] = s / fac[i, i]


@nb.njit(cache=True, nogil=True)
def _value(y, x, i, j, r0, r1, c0, c1):
    """Current value of pixel ``(i, j)``: the estimate in the hole, the data elsewhere."""
    if r0 <= i < r1 and c0 <= j < c1:
        return x[(i - r0) * (c1 - c0) + (j - c0)]
    return np.float64(y[i, j])


@nb.njit(cache=True, nogil=True)
def _iso_weight(y, x, si, sj, r0, r1, c0, c1, delta, eps):
    """Isotropic IRLS weight ``g / (g**2 + eps)`` of the pair(s) starting at ``(si, sj)``.

    ``g = sqrt(dx**2 + dy**2)`` with the forward differences at distance
    ``delta`` on data scaled to [0, 1]; a difference leaving the image is 0.
    """
    h, w = y.shape
    v = _value(y, x, si, sj, r0, r1, c0, c1)
    dx = 0.0
    dy = 0.0
    if sj + delta < w:
        dx = (_value(y, x, si, sj + delta, r0, r1, c0, c1) - v) / 255.0
    if si + delta < h:
        dy = (_value(y, x, si + delta, sj, r0, r1, c0, c1) - v) / 255.0
    g = math.sqrt(dx * dx + dy * dy)
    return max(g / (g * g + eps), ISO_WEIGHT_FLOOR)


@nb.njit(cache=True, nogil=True)
def _build_system(y, x, r0, r1, c0, c1, delta, unit, eps, iso, a, b, build_a):
    """Normal equations of one hole ``[r0, r1) x [c0, c1)``.

    With ``unit`` the weights are 1; else, from the current estimate ``x``
    (hole, row-major) and the visible pixels of ``y``, either
    ``1 / max(|x_u - x_v|, eps)`` per pair (anisotropic, 0-255 units) or,
    with ``iso``, the isotropic weight of the pair's first pixel
    (:func:`_iso_weight`). Only ``b`` is built when ``build_a`` is False.
    """
    h, w = y.shape
    hc = c1 - c0
    n = (r1 - r0) * hc
    if build_a:
        for u in range(n):
            for v in range(n):
                a[u, v] = 0.0
    for u in range(n):
        b[u] = 0.0
    for li in range(r1 - r0):
        i = r0 + li
        for lj in range(hc):
            j = c0 + lj
            u = li * hc + lj
            for d in range(4):
                if d == 0:
                    ii = i
                    jj = j + delta
                elif d == 1:
                    ii = i
                    jj = j - delta
                elif d == 2:
                    ii = i + delta
                    jj = j
                else:
                    ii = i - delta
                    jj = j
                if ii < 0 or ii >= h or jj < 0 or jj >= w:
                    continue  # the difference would leave the image: dropped
                inside = r0 <= ii < r1 and c0 <= jj < c1
                if inside:
                    v = (ii - r0) * hc + (jj - c0)
                    xv = x[v]
                else:
                    v = -1
                    xv = np.float64(y[ii, jj])
                if unit:
                    wt = 1.0
                elif iso:
                    # the pair's first pixel (smaller coordinate) carries the weight
                    if d == 0 or d == 2:
                        wt = _iso_weight(y, x, i, j, r0, r1, c0, c1, delta, eps)
                    else:
                        wt = _iso_weight(y, x, ii, jj, r0, r1, c0, c1, delta, eps)
                else:
                    diff = abs(x[u] - xv)
                    wt = 1.0 / (diff if diff > eps else eps)
                if build_a:
                    a[u, u] += wt
                    if inside:
                        a[u, v] -= wt
                if not inside:
                    b[u] += wt * xv
    return n


@nb.njit(cache=True, nogil=True)
def _interior_factor(hole, delta):
    """Cholesky factor of the unit-weight normal matrix of an interior hole."""
    n = hole * hole
    size = hole + 2 * delta
    y = np.zeros((size, size), dtype=np.float32)
    a = np.zeros((n, n))
    b = np.zeros(n)
    x = np.zeros(n)
    _build_system(y, x, delta, delta + hole, delta, delta + hole, delta, True, 1.0, False, a, b, True)
    ok = _cholesky(a, n)
    return a, ok


@nb.njit(cache=True, nogil=True)
def _solve_hole(y, out, r0, r1, c0, c1, delta, rounds, eps, iso, fac_int, a, b, x, z):
    """Inpaint one hole ``[r0, r1) x [c0, c1)`` of ``y`` into ``out``; False on failure."""
    h, w = y.shape
    n_full = fac_int.shape[0]  # B * B
    interior = (r1 - r0) * (c1 - c0) == n_full and r0 - delta >= 0 and r1 - 1 + delta < h \
        and c0 - delta >= 0 and c1 - 1 + delta < w
    n = (r1 - r0) * (c1 - c0)
    for rnd in range(rounds):
        unit = rnd == 0
        if unit and interior:
            _build_system(y, x, r0, r1, c0, c1, delta, True, eps, iso, a, b, False)
            _cho_solve(fac_int, b, n, z, x)
        else:
            _build_system(y, x, r0, r1, c0, c1, delta, unit, eps, iso, a, b, True)
            if not _cholesky(a, n):
                return False
            _cho_solve(a, b, n, z, x)
    hc = c1 - c0
    for li in range(r1 - r0):
        for lj in range(hc):
            out[r0 + li, c0 + lj] = x[li * hc + lj]
    return True


@nb.njit(cache=True, parallel=True)
def _inpaint_kernel(y, out, offsets, hole, period, delta, rounds, eps, iso, fac_int):
    """Fill the holes of the masks at ``offsets`` (rows of (dr, dc)) of ``y`` into ``out``.

    One parallel loop over all (mask, hole row) pairs; the holes of distinct
    masks are disjoint and each hole is solved from ``y`` alone, so the
    tasks are independent. Returns the number of failed factorizations.
    """
    h, w = y.shape
    n_masks = offsets.shape[0]
    n_rows = np.zeros(n_masks + 1, dtype=np.int64)
    for m in range(n_masks):
        r_off = offsets[m, 0]
        n_rows[m + 1] = n_rows[m] + (0 if r_off >= h else (h - r_off + period - 1) // period)
    n_tasks = n_rows[n_masks]
    nmax = hole * hole
    failures = np.zeros(max(n_tasks, 1), dtype=np.int64)
    for t in nb.prange(n_tasks):
        m = 0
        while n_rows[m + 1] <= t:
            m += 1
        kr = t - n_rows[m]
        a = np.empty((nmax, nmax))
        b = np.empty(nmax)
        x = np.zeros(nmax)
        z = np.empty(nmax)
        r0 = offsets[m, 0] + kr * period
        r1 = min(r0 + hole, h)
        c_off = offsets[m, 1]
        n_c = 0 if c_off >= w else (w - c_off + period - 1) // period
        for kc in range(n_c):
            c0 = c_off + kc * period
            c1 = min(c0 + hole, w)
            if not _solve_hole(y, out, r0, r1, c0, c1, delta, rounds, eps, iso, fac_int, a, b, x, z):
                failures[t] += 1
    return failures.sum()


def _prepare(plane: np.ndarray, hole: int, delta: int, reg: str, tv_rounds: int, tv_eps: float,
             out: np.ndarray | None) -> tuple:
    hole, delta = check_hole_delta(hole, delta)
    reg = check_regulariser(reg)
    rounds, eps = check_tv_options(tv_rounds, tv_eps)
    if reg == "l2":
        rounds = 1
    period = hole_period(hole, delta)
    if not holes_decoupled(hole, period, delta):  # pragma: no cover - excluded by the period rule
        raise AssertionError("holes of one mask are coupled; the per-hole solver does not apply")
    y = np.ascontiguousarray(plane, dtype=np.float32)
    if y.ndim != 2:
        raise DippasInputError(f"plane must be 2-D, got shape {y.shape}")
    if not np.isfinite(y).all():
        raise DippasInputError("plane contains NaN or infinite values")
    if out is None:
        out = y.copy()
    elif out.shape != y.shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise DippasInputError("out must be a C-contiguous float32 array shaped like plane")
    return hole, delta, period, rounds, eps, y, out


def check_tv_weights(weights: str) -> str:
    """Validate the IRLS weight scheme, ``'aniso'`` or ``'iso'``."""
    if weights not in TV_WEIGHTS:
        raise DippasInputError(f"unknown TV weights {weights!r}; choose one of {', '.join(TV_WEIGHTS)}")
    return weights


def check_border(border: str) -> str:
    """Validate the border treatment, ``'drop'`` or ``'symmetric'``."""
    if border not in BORDERS:
        raise DippasInputError(f"unknown border treatment {border!r}; choose one of {', '.join(BORDERS)}")
    return border


def _run(y, out, offsets, hole, period, delta, rounds, eps, iso=False) -> np.ndarray:
    fac, ok = _interior_factor(hole, delta)
    if not ok:  # pragma: no cover - the interior matrix is a Dirichlet Laplacian
        raise AssertionError("interior normal matrix is not positive definite")
    offs = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    failed = _inpaint_kernel(y, out, offs, hole, period, delta, int(rounds), float(eps), bool(iso), fac)
    if failed:
        raise DippasInputError(
            f"image of {y.shape[0]}x{y.shape[1]} pixels is too small for holes of {hole} "
            f"with delta {delta}: {failed} hole(s) have no visible neighbour"
        )
    return out


def inpaint_mask(plane: np.ndarray, offset: tuple[int, int], hole: int = 5, delta: int = 3,
                 reg: str = "l2", tv_rounds: int = DEFAULT_TV_ROUNDS,
                 tv_eps: float = DEFAULT_TV_EPS, out: np.ndarray | None = None,
                 tv_weights: str = "aniso") -> np.ndarray:
    """Inpaint the holes of one selector mask in one plane.

    Parameters
    ----------
    plane : ndarray, shape (H, W)
        One colour plane, 0-255 units. Its hidden pixels are never read.
    offset : (int, int)
        Row and column offset of the mask's holes, from
        :func:`dippas.inpainting.masks.mask_offsets`.
    hole : int, optional
        Hole side ``B``, 3 or 5 (default 5).
    delta : int, optional
        Derivative step of the penalty (default 3).
    reg : {'l2', 'tv'}, optional
        Tikhonov or total-variation penalty (default ``'l2'``).
    tv_rounds : int, optional
        Weighted least-squares solves of TV's IRLS, the first with unit
        weights (default 4). Ignored for L2.
    tv_eps : float, optional
        Floor of ``|difference|`` in the IRLS weights, 0-255 units
        (default 1.0). Ignored for L2.
    out : ndarray, shape (H, W), float32, optional
        Where to write the inpainted hidden pixels; its other pixels are
        left untouched. A copy of ``plane`` is made when omitted.
    tv_weights : {'aniso', 'iso'}, optional
        IRLS weights of TV (default ``'aniso'``); with ``'iso'``, ``tv_eps``
        is the ``eps`` of ``g / (g**2 + eps)`` on [0, 1] data
        (:data:`ISO_TV_EPS`).

    Returns
    -------
    ndarray, shape (H, W), float32
        ``out``: the hidden pixels of the mask hold the inversion, the others
        are those of ``out`` (``plane`` when ``out`` is omitted).
    """
    iso = check_tv_weights(tv_weights) == "iso"
    hole, delta, period, rounds, eps, y, out = _prepare(plane, hole, delta, reg, tv_rounds, tv_eps, out)
    return _run(y, out, [offset], hole, period, delta, rounds, eps, iso)


def inpaint_plane(plane: np.ndarray, hole: int = 5, delta: int = 3, reg: str = "l2",
                  tv_rounds: int = DEFAULT_TV_ROUNDS, tv_eps: float = DEFAULT_TV_EPS,
                  out: np.ndarray | None = None, tv_weights: str = "aniso",
                  border: str = "drop", rescale: bool = False) -> np.ndarray:
    """Inpaint every selector mask of a plane and merge (steps 2 and 3).

    Every output pixel is taken from the inversion of the mask that hid it,
    so it never depends on its own input value (with ``border='drop'``).
    All masks run in one parallel loop over their hole rows.

    Parameters
    ----------
    plane : ndarray, shape (H, W)
        One colour plane, 0-255 units, at least one period a side.
    hole, delta, reg, tv_rounds, tv_eps, tv_weights
        As in :func:`inpaint_mask`.
    out : ndarray, shape (H, W), float32, optional
        Where to write the result (may not be ``plane`` itself).
    border : {'drop', 'symmetric'}, optional
        ``'drop'`` (default): differences leaving the image are dropped.
        ``'symmetric'`` (the authors'): the plane is padded by one period
        with mirrored pixels before the inversion. A mirrored copy of a
        hidden pixel is visible in the padding, so pixels within ``delta``
        of the border can see their own value (row and column 1 do for
        ``delta = 3``): the authors' border keeps some PRNU there.
    rescale : bool, optional
        The authors' per-mask rescaling: each mask's inverted plane is
        mapped linearly onto the range (min, max) of the original plane
        before its hidden pixels are merged (default False).

    Returns
    -------
    ndarray, shape (H, W), float32
    """
    from .masks import mask_offsets

    iso = check_tv_weights(tv_weights) == "iso"
    border = check_border(border)
    hole, delta, period, rounds, eps, y, out = _prepare(plane, hole, delta, reg, tv_rounds, tv_eps, out)
    if np.shares_memory(y, out):
        raise DippasInputError("out must not share memory with plane")
    offsets = mask_offsets(hole, delta)
    if border == "drop" and not rescale:
        return _run(y, out, offsets, hole, period, delta, rounds, eps, iso)
    pad = period if border == "symmetric" else 0
    # A pad of one period keeps the grid anchored on the original pixel (0, 0).
    src = np.pad(y, pad, mode="symmetric") if pad else y
    core = (slice(pad, pad + y.shape[0]), slice(pad, pad + y.shape[1]))
    if not rescale:
        full = np.empty_like(src)
        _run(src, full, offsets, hole, period, delta, rounds, eps, iso)
        out[...] = full[core]
        return out
    lo, hi = float(y.min()), float(y.max())
    idx = mask_index_map(y.shape, hole, delta)
    for k, off in enumerate(offsets):
        res = src.copy()
        _run(src, res, [off], hole, period, delta, rounds, eps, iso)
        r = res[core]
        rlo, rhi = float(r.min()), float(r.max())
        hid = idx == k
        if rhi > rlo:
            out[hid] = (r[hid] - rlo) * np.float32((hi - lo) / (rhi - rlo)) + np.float32(lo)
        else:
            out[hid] = r[hid]
    return out


def check_tv_options(tv_rounds: int, tv_eps: float) -> tuple[int, float]:
    """Validate the IRLS options of the TV regulariser.

    Raises
    ------
    DippasInputError
        If ``tv_rounds`` is not a positive integer or ``tv_eps`` is not a
        positive finite number.
    """
    if isinstance(tv_rounds, bool) or not isinstance(tv_rounds, (int, np.integer)) or tv_rounds < 1:
        raise DippasInputError(f"tv_rounds must be a positive integer, got {tv_rounds!r}")
    try:
        eps = float(tv_eps)
    except (TypeError, ValueError):
        raise DippasInputError(f"tv_eps must be a positive number, got {tv_eps!r}") from None
    if not math.isfinite(eps) or eps <= 0:
        raise DippasInputError(f"tv_eps must be a positive number, got {tv_eps!r}")
    return int(tv_rounds), eps
