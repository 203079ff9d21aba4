"""R's ``uniroot`` (Brent's method as R's C ``R_zeroin2``), for many brackets at once.

The score interval of a quantile (R's ``ffullerCI``) searches a step function: where the
search stops decides which data value a limit lands on, so matching R means taking R's steps
exactly, not just finding a root to the same tolerance. The iteration below is R's, run in
lockstep over domains (one vectorised evaluation of ``f`` per step for all of them).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_EPSILON = np.finfo(float).eps
_MAX_ITER = 1000  # uniroot's default maxiter


def brent_roots(
    f: Callable[[np.ndarray], np.ndarray],
    lower: np.ndarray,
    upper: np.ndarray,
    tol: np.ndarray | float,
) -> np.ndarray:
    """``uniroot(f, c(lower, upper), tol=tol)$root`` for every element (NaN where R stops
    with an error: a bracket whose ends have the same sign or an undefined value)."""
    lower = np.asarray(lower, dtype=float)
    upper = np.asarray(upper, dtype=float)
    tol = np.broadcast_to(np.asarray(tol, dtype=float), lower.shape)
    with np.errstate(all="ignore"):
        f_lower = f(lower)
        f_upper = f(upper)
    root = np.full(lower.shape, np.nan)
    usable = (
        np.isfinite(lower)
        & np.isfinite(upper)
        & np.isfinite(f_lower)
        & np.isfinite(f_upper)
        & ~(f_lower * f_upper > 0)
    )
    a, b = lower.copy(), upper.copy()
    fa, fb = f_lower.copy(), f_upper.copy()
    c, fc = a.copy(), fa.copy()
    active = usable.copy()
    at_a = active & (fa == 0)
    root[at_a] = a[at_a]
    active &= ~at_a
    at_b = active & (fb == 0)
    root[at_b] = b[at_b]
    active &= ~at_b
    with np.errstate(all="ignore"):
        for _ in range(_MAX_ITER + 1):
            if not active.any():
                break
            prev_step = b - a
            swap = np.abs(fc) < np.abs(fb)
            a = np.where(swap, b, a)
            b = np.where(swap, c, b)
            c = np.where(swap, a, c)
            fa = np.where(swap, fb, fa)
            fb = np.where(swap, fc, fb)
            fc = np.where(swap, fa, fc)
            tol_act = 2 * _EPSILON * np.abs(b) + tol / 2
            new_step = (c - b) / 2
            done = active & ((np.abs(new_step) <= tol_act) | (fb == 0))
            root[done] = b[done]
            active &= ~done
            interpolate = (np.abs(prev_step) >= tol_act) & (np.abs(fa) > np.abs(fb))
            cb = c - b
            t1_linear = fb / fa
            p_linear = cb * t1_linear
            q_linear = 1.0 - t1_linear
            q0 = fa / fc
            t1 = fb / fc
            t2 = fb / fa
            p_quad = t2 * (cb * q0 * (q0 - t1) - (b - a) * (t1 - 1.0))
            q_quad = (q0 - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            two_points = a == c
            p = np.where(two_points, p_linear, p_quad)
            q = np.where(two_points, q_linear, q_quad)
            q = np.where(p > 0, -q, q)
            p = np.abs(p)
            accept = (p < (0.75 * cb * q - np.abs(tol_act * q) / 2)) & (
                p < np.abs(prev_step * q / 2)
            )
            new_step = np.where(interpolate & accept, p / q, new_step)
            small = np.abs(new_step) < tol_act
            new_step = np.where(small, np.where(new_step > 0, tol_act, -tol_act), new_step)
            a, fa = b.copy(), fb.copy()
            b = np.where(active, b + new_step, b)
            fb_new = f(b)
            fb = np.where(active, fb_new, fb)
            same_sign = ((fb > 0) & (fc > 0)) | ((fb < 0) & (fc < 0))
            c = np.where(same_sign, a, c)
            fc = np.where(same_sign, fa, fc)
    root[active] = b[active]  # did not converge in maxiter: R warns and returns b
    return root
