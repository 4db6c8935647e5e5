"""2-D ``db4`` wavelet transform with symmetric boundaries (PyWavelets layout).

The residual needs a 4-level decomposition and its inverse with exactly the
coefficient layout of ``pywt.wavedec2(x, 'db4', mode='symmetric')``, because
the adaptive Wiener rule depends on the boundary coefficients.

PyWavelets' own transforms are the bottleneck of the residual, so this
module reimplements them with Numba kernels that follow PyWavelets'
arithmetic (float32 data, float32 taps, float32 accumulation in the same
tap order, rows before columns on the way down and columns before rows on
the way up); on x86-64 the coefficients and reconstructions are
bit-identical to PyWavelets' (the tests allow float32 rounding). Only the
filter taps come from :mod:`pywt`.

Layout, for an input of ``N`` samples along an axis:

- one decomposition level gives ``floor((N + 7) / 2)`` coefficients per
  axis: output ``o`` is ``sum_k f[k] * x[2 o + 1 - k]`` with ``x`` extended
  by half-sample symmetry (``x[-1] = x[0]``, ``x[N] = x[N - 1]``, repeated
  for signals shorter than the filter);
- one reconstruction level from ``n`` coefficients gives ``2 n - 6``
  samples, and a multi-level reconstruction crops the approximation to the
  detail shape of the next level, as :func:`pywt.waverec2` does.

Each level is one kernel over a range of output rows: the decomposition
filters an output row along axis 0 into a row buffer and immediately along
axis 1, so no half-transformed image is ever stored; the reconstruction
does the same in reverse (through a ring of four rows) and can write, or
add weighted, its output straight into a caller's array, cropped, which the
residual uses to build the gray image without a colour residual in memory.

The module also holds the kernels of the residual's adaptive Wiener rule
("WaveNoise", window means from summed-area tables, :func:`wiener_rows`)
and :func:`denoise_plane`, which decomposes a plane, filters every detail
band, drops the approximation and reconstructs in a single call. They live
here, beside the transforms they call, because Numba's on-disk cache is
invalidated per source file: a cached kernel calling kernels of another
module would not notice when those change.

Parallelism
-----------
Large arrays are split into chunks of rows run by
:func:`dippas.threads.parallel_for` (see :mod:`dippas.threads` for why not
Numba's ``prange``).
"""

from __future__ import annotations

import numba as nb
import numpy as np
import pywt

from .threads import parallel_for, use_parallel

WAVELET = "db4"
MODE = "symmetric"

_WAVELET = pywt.Wavelet(WAVELET)
#: Decomposition low-pass taps, float32 as PyWavelets uses for float32 data.
DEC_LO = np.asarray(_WAVELET.dec_lo, dtype=np.float32)
#: Decomposition high-pass taps.
DEC_HI = np.asarray(_WAVELET.dec_hi, dtype=np.float32)
#: Reconstruction low-pass taps.
REC_LO = np.asarray(_WAVELET.rec_lo, dtype=np.float32)
#: Reconstruction high-pass taps.
REC_HI = np.asarray(_WAVELET.rec_hi, dtype=np.float32)
#: The kernels are written for 8 taps (db4).
FILTER_LENGTH = 8
if not all(f.size == FILTER_LENGTH for f in (DEC_LO, DEC_HI, REC_LO, REC_HI)):  # pragma: no cover
    raise ImportError(f"{WAVELET} is expected to have {FILTER_LENGTH} taps")

#: Samples of symmetric extension on each side of a row buffer.
_PAD = FILTER_LENGTH - 1

#: Output selectors of :func:`idwt2_level`.
STORE, STORE_WEIGHTED, ADD_WEIGHTED = 0, 1, 2

#: Number of wavelet levels of the noise residual.
WAVELET_LEVELS = 4
#: Window sides of the adaptive Wiener rule.
WIENER_WINDOWS = (3, 5, 7, 9)
#: Half side of the largest Wiener window.
_RADIUS = max(WIENER_WINDOWS) // 2
#: 1 / side**2 of the windows of half side 1..4 (index 0 unused).
_INV_AREA = np.array([0.0] + [1.0 / (k * k) for k in WIENER_WINDOWS], dtype=np.float64)
#: Smallest number of rows per summed-area table of the Wiener rule (each
#: table also holds a halo of _RADIUS rows on either side).
WIENER_STRIP = 32
#: Float64 entries per summed-area table: 1 MiB, to stay in the core's cache.
_TABLE_SIZE = 1 << 17


# ---------------------------------------------------------------------------

@nb.njit(cache=True, nogil=True)
def dwt_length(n: int) -> int:
    """Coefficients per axis after one decomposition level of ``n`` samples."""
    return (n + FILTER_LENGTH - 1) // 2


@nb.njit(cache=True, nogil=True)
def idwt_length(n: int) -> int:
    """Samples per axis after one reconstruction level of ``n`` coefficients."""
    return 2 * n - FILTER_LENGTH + 2


# ---------------------------------------------------------------------------
# 1-D helpers (inlined into the kernels)
# ---------------------------------------------------------------------------

@nb.njit(cache=True, nogil=True, inline="always")
def _sym(i, n):
    """Index ``i`` of a length-``n`` signal under half-sample symmetric extension."""
    p = 2 * n
    i = i % p
    if i >= n:
        i = p - 1 - i
    return i


@nb.njit(cache=True, nogil=True)
def _pad_symmetric(buf, n):
    """Fill the ``_PAD`` samples either side of ``buf[_PAD:_PAD + n]`` by symmetry."""
    for p in range(_PAD):
        buf[p] = buf[_PAD + _sym(p - _PAD, n)]
        q = _PAD + n + p
        buf[q] = buf[_PAD + _sym(q - _PAD, n)]


@nb.njit(cache=True, nogil=True, inline="always")
def _tap(k, c, n):
    """Index of the tap that PyWavelets adds ``k``-th into the sum at position ``c``.

    PyWavelets adds the taps in ascending order, except where the filter
    overhangs the right end (``c >= n``): there it first adds taps
    ``c - n, ..., 0`` (the mirrored samples), then ``c - n + 1, ..., 7``.
    """
    t = c - n
    if t >= 0 and k <= t:
        return t - k
    return k


@nb.njit(cache=True, nogil=True)
def _dec_columns(x, c, f, g, out_f, out_g):
    """Axis-0 analysis of one output row, from input rows ``c - k`` (k = 0..7).

    ``out_f[_PAD + j] = sum_k f[k] * x[c - k, j]`` and likewise with ``g``,
    rows taken by symmetric extension; float32 sums in PyWavelets' tap order.
    """
    h, w = x.shape
    k0, k1, k2, k3 = _tap(0, c, h), _tap(1, c, h), _tap(2, c, h), _tap(3, c, h)
    k4, k5, k6, k7 = _tap(4, c, h), _tap(5, c, h), _tap(6, c, h), _tap(7, c, h)
    r0 = x[_sym(c - k0, h)]
    r1 = x[_sym(c - k1, h)]
    r2 = x[_sym(c - k2, h)]
    r3 = x[_sym(c - k3, h)]
    r4 = x[_sym(c - k4, h)]
    r5 = x[_sym(c - k5, h)]
    r6 = x[_sym(c - k6, h)]
    r7 = x[_sym(c - k7, h)]
    f0, f1, f2, f3, f4, f5, f6, f7 = f[k0], f[k1], f[k2], f[k3], f[k4], f[k5], f[k6], f[k7]
    g0, g1, g2, g3, g4, g5, g6, g7 = g[k0], g[k1], g[k2], g[k3], g[k4], g[k5], g[k6], g[k7]
    zero = np.float32(0.0)
    for j in range(w):
        v0 = r0[j]
        v1 = r1[j]
        v2 = r2[j]
        v3 = r3[j]
        v4 = r4[j]
        v5 = r5[j]
        v6 = r6[j]
        v7 = r7[j]
        a = zero + f0 * v0
        a += f1 * v1
        a += f2 * v2
        a += f3 * v3
        a += f4 * v4
        a += f5 * v5
        a += f6 * v6
        a += f7 * v7
        d = zero + g0 * v0
        d += g1 * v1
        d += g2 * v2
        d += g3 * v3
        d += g4 * v4
        d += g5 * v5
        d += g6 * v6
        d += g7 * v7
        out_f[_PAD + j] = a
        out_g[_PAD + j] = d


@nb.njit(cache=True, nogil=True)
def _dec_row(buf, n, f, g, out_f, out_g):
    """Axis-1 analysis of a padded row: ``out[q] = sum_k f[k] * x[2 q + 1 - k]``.

    ``buf[_PAD + i]`` holds ``x[i]`` for ``-_PAD <= i < n + _PAD``.
    """
    f0, f1, f2, f3, f4, f5, f6, f7 = f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]
    g0, g1, g2, g3, g4, g5, g6, g7 = g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]
    zero = np.float32(0.0)
    nq = out_f.shape[0]
    nfast = min(nq, n // 2)  # outputs with 2 q + 1 < n: taps in ascending order
    for q in range(nfast):
        b = 2 * q + 1  # x[2q + 1 - k] is buf[b + _PAD - k]
        v0 = buf[b + 7]
        v1 = buf[b + 6]
        v2 = buf[b + 5]
        v3 = buf[b + 4]
        v4 = buf[b + 3]
        v5 = buf[b + 2]
        v6 = buf[b + 1]
        v7 = buf[b]
        a = zero + f0 * v0
        a += f1 * v1
        a += f2 * v2
        a += f3 * v3
        a += f4 * v4
        a += f5 * v5
        a += f6 * v6
        a += f7 * v7
        d = zero + g0 * v0
        d += g1 * v1
        d += g2 * v2
        d += g3 * v3
        d += g4 * v4
        d += g5 * v5
        d += g6 * v6
        d += g7 * v7
        out_f[q] = a
        out_g[q] = d
    for q in range(nfast, nq):
        c = 2 * q + 1
        a = zero
        d = zero
        for i in range(FILTER_LENGTH):
            k = _tap(i, c, n)
            v = buf[_PAD + c - k]
            a += f[k] * v
            d += g[k] * v
        out_f[q] = a
        out_g[q] = d


@nb.njit(cache=True, nogil=True)
def _rec_row(c, f, out, add):
    """Axis-1 synthesis of one row, PyWavelets' ``upsampling_convolution_valid_sf``.

    ``out[2 m] (+)= sum_j f[2 j] * c[m + 3 - j]`` and
    ``out[2 m + 1] (+)= sum_j f[2 j + 1] * c[m + 3 - j]``, j = 0..3, the sums
    formed first and then stored (``add`` False) or added (``add`` True).
    """
    f0, f1, f2, f3, f4, f5, f6, f7 = f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]
    zero = np.float32(0.0)
    for m in range(out.shape[0] // 2):
        c3 = c[m + 3]
        c2 = c[m + 2]
        c1 = c[m + 1]
        c0 = c[m]
        e = zero + f0 * c3
        e += f2 * c2
        e += f4 * c1
        e += f6 * c0
        o = zero + f1 * c3
        o += f3 * c2
        o += f5 * c1
        o += f7 * c0
        if add:
            out[2 * m] += e
            out[2 * m + 1] += o
        else:
            out[2 * m] = e
            out[2 * m + 1] = o


# ---------------------------------------------------------------------------
# One level, both axes
# ---------------------------------------------------------------------------

@nb.njit(cache=True, nogil=True)
def dwt2_rows(x, lo, hi, ca, ch, cv, cd, o0, o1):
    """Output rows ``o0 <= o < o1`` of one 2-D analysis level, both axes (Numba kernel).

    ``x`` is C-contiguous float32 (H, W); ``ca, ch, cv, cd`` are preallocated
    C-contiguous float32 bands of shape ``(dwt_length(H), dwt_length(W))``;
    ``lo, hi`` are :data:`DEC_LO` and :data:`DEC_HI`.
    """
    w = x.shape[1]
    buf_a = np.empty(w + 2 * _PAD, dtype=np.float32)
    buf_d = np.empty(w + 2 * _PAD, dtype=np.float32)
    for o in range(o0, o1):
        _dec_columns(x, 2 * o + 1, lo, hi, buf_a, buf_d)
        _pad_symmetric(buf_a, w)
        _pad_symmetric(buf_d, w)
        _dec_row(buf_a, w, lo, hi, ca[o], cv[o])  # 'aa', 'ad'
        _dec_row(buf_d, w, lo, hi, ch[o], cd[o])  # 'da', 'dd'


@nb.njit(cache=True, nogil=True)
def idwt2_rows(a, ch, cv, cd, rlo, rhi, has_a, out, mode, weight, m0, m1):
    """Output row pairs ``m0 <= m < m1`` of one 2-D synthesis level (Numba kernel).

    ``a`` (read only if ``has_a``) may be larger than the (h, w) detail
    bands; ``rlo, rhi`` are :data:`REC_LO` and :data:`REC_HI`; ``out`` is
    at most ``(2h - 6, 2w - 6)`` and may be a strided view; all float32.

    Axis 1 first ('aa' + 'ad' -> 'a', 'da' + 'dd' -> 'd'), into a ring of the
    four rows that output pair ``m`` needs (``m .. m + 3``), then axis 0.
    Rows ``2 m`` and ``2 m + 1`` below ``out.shape[0]`` are emitted, cropped
    to ``out.shape[1]`` columns: ``mode`` :data:`STORE` writes the level's
    output, :data:`STORE_WEIGHTED` writes ``output * weight`` and
    :data:`ADD_WEIGHTED` adds ``output * weight``, in float32.
    """
    w = ch.shape[1]
    wr = 2 * w - FILTER_LENGTH + 2
    hout = out.shape[0]
    wout = min(out.shape[1], wr)
    ring_a = np.empty((4, wr), dtype=np.float32)
    ring_d = np.empty((4, wr), dtype=np.float32)
    line = np.empty(wr, dtype=np.float32)
    for r in range(m0, m1 + 3):
        k = r % 4
        if has_a:
            _rec_row(a[r], rlo, ring_a[k], False)
            _rec_row(cv[r], rhi, ring_a[k], True)
        else:
            _rec_row(cv[r], rhi, ring_a[k], False)
        _rec_row(ch[r], rlo, ring_d[k], False)
        _rec_row(cd[r], rhi, ring_d[k], True)
        m = r - 3
        if m < m0:
            continue
        for parity in range(2):
            i = 2 * m + parity
            if i < hout:
                _rec_column_pair(ring_a, ring_d, m, parity, rlo, rhi, line, wout)
                _emit_row(line, out[i], wout, mode, weight)


@nb.njit(cache=True, nogil=True)
def synthesis_pairs(h, hout):
    """Output row pairs of a synthesis level of ``h`` rows cropped to ``hout`` rows.

    The ``m1`` bound of :func:`idwt2_rows` for a whole level.
    """
    return (min(hout, 2 * h - FILTER_LENGTH + 2) + 1) // 2


@nb.njit(cache=True, nogil=True)
def _rec_column_pair(ring_a, ring_d, m, parity, rlo, rhi, line, n):
    """Axis-0 synthesis of output row ``2 m + parity`` into ``line``.

    ``ring_a[r % 4]`` and ``ring_d[r % 4]`` hold rows ``r = m .. m + 3`` of
    the axis-1 synthesis.
    """
    a3, a2, a1, a0 = ring_a[(m + 3) % 4], ring_a[(m + 2) % 4], ring_a[(m + 1) % 4], ring_a[m % 4]
    d3, d2, d1, d0 = ring_d[(m + 3) % 4], ring_d[(m + 2) % 4], ring_d[(m + 1) % 4], ring_d[m % 4]
    l0, l1, l2, l3 = rlo[parity], rlo[parity + 2], rlo[parity + 4], rlo[parity + 6]
    h0, h1, h2, h3 = rhi[parity], rhi[parity + 2], rhi[parity + 4], rhi[parity + 6]
    zero = np.float32(0.0)
    for j in range(n):
        s = zero + l0 * a3[j]
        s += l1 * a2[j]
        s += l2 * a1[j]
        s += l3 * a0[j]
        u = zero + h0 * d3[j]
        u += h1 * d2[j]
        u += h2 * d1[j]
        u += h3 * d0[j]
        line[j] = (zero + s) + u


@nb.njit(cache=True, nogil=True)
def _emit_row(line, dst, n, mode, weight):
    """Store ``line[:n]`` into ``dst``: plain, weighted, or weighted and added."""
    if mode == STORE:
        for j in range(n):
            dst[j] = line[j]
    elif mode == STORE_WEIGHTED:
        for j in range(n):
            dst[j] = line[j] * weight
    else:
        for j in range(n):
            dst[j] = dst[j] + line[j] * weight


# ---------------------------------------------------------------------------
# Adaptive Wiener rule ("WaveNoise") on strip-wise summed-area tables
# ---------------------------------------------------------------------------

@nb.njit(cache=True, nogil=True, error_model="numpy")
def _row_prefix(row, out):
    """Zero-padded running sum of ``row**2``, float64.

    ``out[j + _RADIUS + 1]`` is the sum of ``row[:j + 1]**2``; the first
    ``_RADIUS + 1`` entries are 0 and the last ``_RADIUS`` repeat the full
    sum (the zero padding).
    """
    w = row.shape[0]
    for b in range(_RADIUS + 1):
        out[b] = 0.0
    acc = 0.0
    for j in range(w):
        v = np.float64(row[j])
        acc += v * v
        out[j + _RADIUS + 1] = acc
    for b in range(w + _RADIUS + 1, out.shape[0]):
        out[b] = acc


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _row_prefix4(r0, r1, r2, r3, o0, o1, o2, o3):
    """:func:`_row_prefix` of four rows at once (four independent sums in flight)."""
    w = r0.shape[0]
    for b in range(_RADIUS + 1):
        o0[b] = 0.0
        o1[b] = 0.0
        o2[b] = 0.0
        o3[b] = 0.0
    a0 = a1 = a2 = a3 = 0.0
    for j in range(w):
        v0 = np.float64(r0[j])
        v1 = np.float64(r1[j])
        v2 = np.float64(r2[j])
        v3 = np.float64(r3[j])
        a0 += v0 * v0
        a1 += v1 * v1
        a2 += v2 * v2
        a3 += v3 * v3
        o0[j + _RADIUS + 1] = a0
        o1[j + _RADIUS + 1] = a1
        o2[j + _RADIUS + 1] = a2
        o3[j + _RADIUS + 1] = a3
    for b in range(w + _RADIUS + 1, o0.shape[0]):
        o0[b] = a0
        o1[b] = a1
        o2[b] = a2
        o3[b] = a3


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _strip_energy_table(x, top, s):
    """Summed-area table of ``x**2`` for rows ``top, top + 1, ...``, zero padded.

    ``s[a, b]`` is the float64 sum of ``x[i, j]**2`` over rows
    ``top <= i < top + a`` and columns ``-_RADIUS <= j < b - _RADIUS``, rows
    and columns outside ``x`` counting as zeros, so that no window needs
    clipping. ``s`` has shape ``(nrows + 1, W + 2 * _RADIUS + 1)``. Each
    entry is ``s[a - 1, b] + (row prefix sum)``, the same additions as a
    table over the whole image built row by row.
    """
    h = x.shape[0]
    ncol = s.shape[1]
    nrows = s.shape[0]
    for b in range(ncol):
        s[0, b] = 0.0
    # Row prefix sums, four rows at a time where all four are inside x.
    a = 1
    while a < nrows:
        i = top + a - 1
        if a + 3 < nrows and i >= 0 and i + 3 < h:
            _row_prefix4(x[i], x[i + 1], x[i + 2], x[i + 3], s[a], s[a + 1], s[a + 2], s[a + 3])
            a += 4
            continue
        if 0 <= i < h:
            _row_prefix(x[i], s[a])
        else:
            for b in range(ncol):
                s[a, b] = 0.0
        a += 1
    # Then down the columns.
    for a in range(1, nrows):
        prev = s[a - 1]
        cur = s[a]
        for b in range(ncol):
            cur[b] = prev[b] + cur[b]


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _wiener_row(xrow, s, t, noise_var, inv_area, out, gain):
    """Wiener rule for one row, ``t`` rows below the table's first image row.

    With ``gain`` False the output is the filtered value
    ``float32(x * nv / (var + nv))``; with ``gain`` True it is the float32
    ratio of that value to ``x`` (0 where ``x`` is 0), which is what
    :func:`wiener_dft` multiplies the spectrum by. Written with selects
    rather than branches so that it vectorises.
    """
    c = t + _RADIUS  # table row just above the row itself
    n1, p1 = s[c - 1], s[c + 2]
    n2, p2 = s[c - 2], s[c + 3]
    n3, p3 = s[c - 3], s[c + 4]
    n4, p4 = s[c - 4], s[c + 5]
    q1, q2, q3, q4 = inv_area[1], inv_area[2], inv_area[3], inv_area[4]
    for j in range(xrow.shape[0]):
        b = j + _RADIUS  # column of the table just left of the pixel
        m1 = (p1[b + 2] - n1[b + 2] - p1[b - 1] + n1[b - 1]) * q1
        m2 = (p2[b + 3] - n2[b + 3] - p2[b - 2] + n2[b - 2]) * q2
        m3 = (p3[b + 4] - n3[b + 4] - p3[b - 3] + n3[b - 3]) * q3
        m4 = (p4[b + 5] - n4[b + 5] - p4[b - 4] + n4[b - 4]) * q4
        m12 = m1 if m1 < m2 else m2
        m34 = m3 if m3 < m4 else m4
        var = (m12 if m12 < m34 else m34) - noise_var
        var = var if var > 0.0 else 0.0
        den = var + noise_var
        ratio = noise_var / den if den > 0.0 else 0.0
        v = xrow[j]
        filtered = np.float32(v * ratio)
        if gain:
            out[j] = filtered / v if v != 0 else np.float32(0.0)
        else:
            out[j] = filtered


@nb.njit(cache=True, nogil=True, error_model="numpy")
def wiener_rows(x, noise_var, out, gain, r0, r1):
    """Adaptive Wiener rule ("WaveNoise") of rows ``r0 <= i < r1`` (Numba kernel).

    For every element of the C-contiguous float32 array ``x``, the local
    signal variance is ``max(0, mean(x**2) - noise_var)`` over zero-padded
    windows of 3, 5, 7 and 9, taking the minimum; ``out`` gets
    ``x * noise_var / (var + noise_var)`` (or, with ``gain``, that over
    ``x``; see :func:`_wiener_row`). Window sums come from summed-area
    tables, one per strip of rows as tall as fits :data:`_TABLE_SIZE` (at
    least :data:`WIENER_STRIP` rows), so a small band gets a single table.
    """
    w = x.shape[1]
    strip = wiener_strip_height(w)
    s = np.empty((min(strip, r1 - r0) + 2 * _RADIUS + 1, w + 2 * _RADIUS + 1), dtype=np.float64)
    for top in range(r0, r1, strip):
        bottom = min(r1, top + strip)
        table = s[:bottom - top + 2 * _RADIUS + 1]
        _strip_energy_table(x, top - _RADIUS, table)
        for i in range(top, bottom):
            _wiener_row(x[i], table, i - top, noise_var, _INV_AREA, out[i], gain)


@nb.njit(cache=True, nogil=True)
def wiener_strip_height(w):
    """Rows per summed-area table of :func:`wiener_rows` for rows of ``w`` elements."""
    return max(WIENER_STRIP, _TABLE_SIZE // (w + 2 * _RADIUS + 1) - 2 * _RADIUS - 1)


@nb.njit(cache=True, nogil=True)
def wiener_strips(x, noise_var, out, gain, s0, s1):
    """:func:`wiener_rows` of strips ``s0 <= s < s1`` of :func:`wiener_strip_height` rows.

    Splitting the work by whole strips keeps every table, hence every
    rounding, the same however the strips are shared among threads.
    """
    strip = wiener_strip_height(x.shape[1])
    wiener_rows(x, noise_var, out, gain, s0 * strip, min(x.shape[0], s1 * strip))


# ---------------------------------------------------------------------------
# One plane, all levels: decompose, filter the details, reconstruct
# ---------------------------------------------------------------------------

@nb.njit(cache=True, nogil=True)
def _wiener_band(band, noise_var):
    """:func:`wiener_rows` of a whole band, on this thread, into a new array."""
    out = np.empty_like(band)
    wiener_rows(band, noise_var, out, False, 0, band.shape[0])
    return out


@nb.njit(cache=True, nogil=True)
def denoise_plane(plane, noise_var, out, mode, weight):
    """Wavelet-Wiener residual of one plane, on one thread (Numba kernel).

    Decomposes the C-contiguous float32 ``plane`` over
    :data:`WAVELET_LEVELS` levels, filters every detail band with the
    adaptive Wiener rule (:func:`wiener_rows`, noise variance
    ``noise_var``), zeroes the approximation and reconstructs; the last
    level is cropped to ``out`` and emitted with ``mode`` and ``weight``
    as in :func:`idwt2_rows`. Equal to ``waverec2`` of the filtered
    ``wavedec2`` coefficients, without going back to Python in between.
    """
    bands_h = []
    bands_v = []
    bands_d = []
    approx = plane
    for _ in range(WAVELET_LEVELS):
        shape = (dwt_length(approx.shape[0]), dwt_length(approx.shape[1]))
        ca = np.empty(shape, dtype=np.float32)
        ch = np.empty(shape, dtype=np.float32)
        cv = np.empty(shape, dtype=np.float32)
        cd = np.empty(shape, dtype=np.float32)
        dwt2_rows(approx, DEC_LO, DEC_HI, ca, ch, cv, cd, 0, shape[0])
        bands_h.append(_wiener_band(ch, noise_var))
        bands_v.append(_wiener_band(cv, noise_var))
        bands_d.append(_wiener_band(cd, noise_var))
        approx = ca
    recon = bands_h[-1]  # placeholder: the zeroed approximation is never read
    for level in range(WAVELET_LEVELS - 1, 0, -1):
        ch, cv, cd = bands_h[level], bands_v[level], bands_d[level]
        nxt = np.empty((idwt_length(ch.shape[0]), idwt_length(ch.shape[1])), dtype=np.float32)
        idwt2_rows(recon, ch, cv, cd, REC_LO, REC_HI, level != WAVELET_LEVELS - 1, nxt,
                   STORE, np.float32(1.0), 0, synthesis_pairs(ch.shape[0], nxt.shape[0]))
        recon = nxt
    ch, cv, cd = bands_h[0], bands_v[0], bands_d[0]
    idwt2_rows(recon, ch, cv, cd, REC_LO, REC_HI, WAVELET_LEVELS > 1, out, mode, weight, 0,
               synthesis_pairs(ch.shape[0], out.shape[0]))


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------

def dwt2_level(
    x: np.ndarray, parallel: bool | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One level of :func:`pywt.dwt2` (``'db4'``, ``'symmetric'``) on float32 data.

    Parameters
    ----------
    x : ndarray, shape (H, W)
        Converted to C-contiguous float32 if it is not.
    parallel : bool, optional
        Split the rows over threads (True) or not (False); by default decided
        by :func:`use_parallel` from the size of ``x``.

    Returns
    -------
    cA : ndarray, shape (floor((H+7)/2), floor((W+7)/2)), float32
    (cH, cV, cD) : tuple of ndarray, same shape as ``cA``
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {x.shape}")
    shape = (dwt_length(x.shape[0]), dwt_length(x.shape[1]))
    ca, ch, cv, cd = (np.empty(shape, dtype=np.float32) for _ in range(4))
    parallel_for(dwt2_rows, shape[0], x, DEC_LO, DEC_HI, ca, ch, cv, cd,
                 parallel=use_parallel(x.size, parallel))
    return ca, (ch, cv, cd)


def idwt2_level(
    ca: np.ndarray | None,
    details: tuple[np.ndarray, np.ndarray, np.ndarray],
    out: np.ndarray | None = None,
    mode: int = STORE,
    weight: float = 1.0,
    parallel: bool | None = None,
) -> np.ndarray:
    """One level of :func:`pywt.idwt2` (``'db4'``, ``'symmetric'``) on float32 data.

    Parameters
    ----------
    ca : ndarray or None
        Approximation band; may be one larger than the details per axis
        (cropped as :func:`pywt.waverec2` does). ``None`` stands for zeros,
        with identical results.
    details : (cH, cV, cD)
        C-contiguous float32 detail bands of shape ``(h, w)``.
    out : ndarray, optional
        Destination, float32, at most ``(2h - 6, 2w - 6)``; the output is
        cropped to its shape. It may be a strided view (e.g. one channel of
        an ``(H, W, 3)`` array). Allocated at full size when omitted.
    mode : int
        :data:`STORE`, :data:`STORE_WEIGHTED` (``out = y * weight``) or
        :data:`ADD_WEIGHTED` (``out += y * weight``), all in float32.
    weight : float
    parallel : bool, optional
        Split the rows over threads (True) or not (False); by default decided
        by :func:`use_parallel` from the output size.

    Returns
    -------
    ndarray
        ``out``.
    """
    ch, cv, cd = (np.ascontiguousarray(d, dtype=np.float32) for d in details)
    h, w = ch.shape
    if cv.shape != (h, w) or cd.shape != (h, w):
        raise ValueError("All detail shapes must be the same.")
    if h < FILTER_LENGTH // 2 or w < FILTER_LENGTH // 2:
        raise ValueError(f"detail bands of {h}x{w} are too small to reconstruct")
    full = (idwt_length(h), idwt_length(w))
    if out is None:
        out = np.empty(full, dtype=np.float32)
    elif out.ndim != 2 or out.shape[0] > full[0] or out.shape[1] > full[1]:
        raise ValueError(f"out has shape {out.shape}; at most {full} is possible")
    if ca is None:
        a = ch  # never read
    else:
        a = np.ascontiguousarray(ca, dtype=np.float32)
        if a.shape[0] < h or a.shape[1] < w:
            raise ValueError(f"approximation {a.shape} is smaller than the details {(h, w)}")
    parallel_for(idwt2_rows, synthesis_pairs(h, out.shape[0]), a, ch, cv, cd, REC_LO, REC_HI,
                 ca is not None, out, int(mode), np.float32(weight),
                 parallel=use_parallel(out.size, parallel), min_chunk=32)
    return out


def wavedec2(x: np.ndarray, levels: int, parallel: bool | None = None) -> list:
    """Multi-level 2-D decomposition, ``[cA_n, (cH_n, cV_n, cD_n), ..., (cH_1, cV_1, cD_1)]``.

    Parameters
    ----------
    x : ndarray, shape (H, W), float32
    levels : int
    parallel : bool, optional
        Forwarded to :func:`dwt2_level` at every level.

    Returns
    -------
    list
        Same layout and values (to float32 rounding) as
        ``pywt.wavedec2(x, 'db4', 'symmetric', levels)``.
    """
    if levels < 0:
        raise ValueError(f"levels must be non-negative, got {levels}")
    a = np.ascontiguousarray(x, dtype=np.float32)
    details = []
    for _ in range(levels):
        a, d = dwt2_level(a, parallel)
        details.append(d)
    return [a] + details[::-1]


def waverec2(coeffs: list, parallel: bool | None = None) -> np.ndarray:
    """Inverse of :func:`wavedec2` (may be one pixel larger than the input on odd sides).

    Parameters
    ----------
    coeffs : list
        ``[cA_n, (cH_n, cV_n, cD_n), ..., (cH_1, cV_1, cD_1)]``.
    parallel : bool, optional
        Forwarded to :func:`idwt2_level` at every level.

    Returns
    -------
    ndarray, float32
        As ``pywt.waverec2(coeffs, 'db4', 'symmetric')``, to float32 rounding.
    """
    if not coeffs:
        raise ValueError("Coefficient list too short (minimum 1 array required).")
    a = np.asarray(coeffs[0], dtype=np.float32)
    for d in coeffs[1:]:
        if not isinstance(d, (list, tuple)) or len(d) != 3:
            raise ValueError("detail coefficients must be (cH, cV, cD) tuples")
        a = idwt2_level(a, tuple(d), parallel=parallel)
    return a
