"""The Triton kernel that :mod:`cwsc.hydro.engines.cuda` launches (imported only when
Triton is present: the jitted helpers must live at module level for Triton to resolve them)."""

# ruff: noqa
import triton
import triton.language as tl


@triton.jit
def _log1p01(u):
    s = u / (2.0 + u)
    z = s * s
    return s * (
        2.0000000077 + z * (0.66666320406 + z * (0.40024651334 + z * (0.27964344705 + z * 0.28161453759)))
    )


@triton.jit
def _expm1_small(v):
    return v * (
        0.99999998811
        + v
        * (
            0.50000129344
            + v * (0.16664426024 + v * (0.041806532255 + v * (0.0079453771204 + v * 0.0018695509321)))
        )
    )


@triton.jit
def _fu(phi, a, inv_a):
    phi = tl.maximum(phi, 1e-30)
    lp = tl.log(phi)
    u = tl.exp(-a * tl.abs(lp))
    g = _expm1_small(_log1p01(u) * inv_a)
    m = tl.maximum(phi, 1.0)
    return tl.maximum((phi + 1.0 - m) - m * g, 0.0)


@triton.jit
def _pow(x, y):
    return tl.where(x > 0.0, tl.exp(y * tl.log(tl.maximum(x, 1e-37))), 0.0)


@triton.jit
def _dwbm_month(f_ptr, off, stride_f, s, g, sc, a1, a2, ia1, ia2, kg, mask, empty, CONSERVING: tl.constexpr):
    p = tl.load(f_ptr + off, mask=mask, other=0.0)
    pw = tl.load(f_ptr + stride_f + off, mask=mask, other=0.0)
    pd = tl.load(f_ptr + 2 * stride_f + off, mask=mask, other=0.0)
    ip = tl.load(f_ptr + 3 * stride_f + off, mask=mask, other=0.0)
    e0 = tl.load(f_ptr + 4 * stride_f + off, mask=mask, other=0.0)
    x = _fu(tl.maximum((e0 + sc - s) * ip, 0.0), a1, ia1) * pw + pd
    if CONSERVING:
        x = tl.minimum(x, p)
    qd = p - x
    w = x + s
    e0w = tl.minimum(e0, 50.0 * w)
    inv_w = tl.where(w > empty, 1.0 / tl.where(w > empty, w, 1.0), 0.0)
    y = _fu((e0w + sc) * inv_w, a2, ia2) * w
    e = _fu(e0w * inv_w, a2, ia2) * w
    if CONSERVING:
        y = tl.minimum(y, w)
        e = tl.minimum(e, y)
    s_new = y - e
    if not CONSERVING:
        s_new = tl.maximum(s_new, 0.0)
    qb = kg * g
    g_new = (g - qb) + (w - y)
    return qd + qb, s_new, g_new


@triton.jit
def _bucket_month(
    f_ptr, off, stride_f, w, c1, c2, isc, xe, xq, mask, seed_eps, TVGM: tl.constexpr, CONSERVING: tl.constexpr
):
    p = tl.load(f_ptr + off, mask=mask, other=0.0)
    e0 = tl.load(f_ptr + stride_f + off, mask=mask, other=0.0)
    w0 = w + p
    if TVGM:
        e = e0 * _pow(w0 * isc, xe)
        q = c1 * _pow(w * isc, xq) * p + c2 * (w + w0)
    else:
        e = e0 * w0 * isc
        q = c1 * isc * w * p + c2 * w
    if CONSERVING:
        demand = q + e
        over = demand > w0
        scale = tl.where(over, w0 / tl.where(over, demand, 1.0), 1.0)
        q = q * scale
        e = e * scale
        w_new = tl.where(over, 0.0, tl.maximum(w0 - q - e, 0.0))
    else:
        w_new = tl.maximum(w0 - q - e, seed_eps)
    return q, w_new


@triton.jit
def score(
    cell_ptr,
    f_ptr,
    total_months,
    cols,
    prm_ptr,
    n,
    months,
    first,
    w_ptr,
    oc_ptr,
    sc_floor,
    empty,
    seed_eps,
    out_ptr,
    MODEL: tl.constexpr,
    CONSERVING: tl.constexpr,
    BLOCK: tl.constexpr,
):
    j = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = j < n
    c = tl.load(cell_ptr + j, mask=mask, other=0)
    # Offsets in int64 blocks: months x cells x forcing arrays can pass 2**31 on fine grids,
    # and Triton passes small integer arguments as int32.
    cols_b = tl.zeros_like(c) + cols
    stride_f = cols_b * total_months
    acc_s = tl.zeros((BLOCK,), dtype=tl.float64)
    acc_ss = tl.zeros((BLOCK,), dtype=tl.float64)
    acc_so = tl.zeros((BLOCK,), dtype=tl.float64)
    if MODEL == 0:
        sc = tl.maximum(tl.load(prm_ptr + j, mask=mask, other=1.0), sc_floor)
        a1 = tl.load(prm_ptr + n + j, mask=mask, other=2.0)
        a2 = tl.load(prm_ptr + 2 * n + j, mask=mask, other=2.0)
        kg = tl.load(prm_ptr + 3 * n + j, mask=mask, other=0.5)
        ia1 = 1.0 / a1
        ia2 = 1.0 / a2
        s = 0.1 * sc
        g = tl.zeros((BLOCK,), dtype=tl.float32) + 0.001
        for t in range(0, first):
            q, s, g = _dwbm_month(
                f_ptr, t * cols_b + c, stride_f, s, g, sc, a1, a2, ia1, ia2, kg, mask, empty, CONSERVING
            )
        for t in range(first, months):
            q, s, g = _dwbm_month(
                f_ptr, t * cols_b + c, stride_f, s, g, sc, a1, a2, ia1, ia2, kg, mask, empty, CONSERVING
            )
            o = (t - first) * cols_b + c
            wq = tl.load(w_ptr + o, mask=mask, other=0.0).to(tl.float64) * q.to(tl.float64)
            acc_s += wq
            acc_ss += wq * q.to(tl.float64)
            acc_so += wq * tl.load(oc_ptr + o, mask=mask, other=0.0).to(tl.float64)
    else:
        if MODEL == 2:  # TVGM: g1, g2, kr, sc, gamma
            c1 = tl.load(prm_ptr + j, mask=mask, other=0.1)
            xq = tl.load(prm_ptr + n + j, mask=mask, other=1.0)
            c2 = 0.5 * tl.load(prm_ptr + 2 * n + j, mask=mask, other=0.01)
            isc = 1.0 / tl.maximum(tl.load(prm_ptr + 3 * n + j, mask=mask, other=1.0), sc_floor)
            xe = tl.load(prm_ptr + 4 * n + j, mask=mask, other=1.0)
        else:  # SWBM: ks, kg, sc
            c1 = tl.load(prm_ptr + j, mask=mask, other=0.1)
            c2 = tl.load(prm_ptr + n + j, mask=mask, other=0.1)
            isc = 1.0 / tl.maximum(tl.load(prm_ptr + 2 * n + j, mask=mask, other=1.0), sc_floor)
            xq = tl.zeros((BLOCK,), dtype=tl.float32) + 1.0
            xe = xq
        w = tl.zeros((BLOCK,), dtype=tl.float32) + 50.0
        for t in range(0, first):
            q, w = _bucket_month(
                f_ptr,
                t * cols_b + c,
                stride_f,
                w,
                c1,
                c2,
                isc,
                xe,
                xq,
                mask,
                seed_eps,
                MODEL == 2,
                CONSERVING,
            )
        for t in range(first, months):
            q, w = _bucket_month(
                f_ptr,
                t * cols_b + c,
                stride_f,
                w,
                c1,
                c2,
                isc,
                xe,
                xq,
                mask,
                seed_eps,
                MODEL == 2,
                CONSERVING,
            )
            o = (t - first) * cols_b + c
            wq = tl.load(w_ptr + o, mask=mask, other=0.0).to(tl.float64) * q.to(tl.float64)
            acc_s += wq
            acc_ss += wq * q.to(tl.float64)
            acc_so += wq * tl.load(oc_ptr + o, mask=mask, other=0.0).to(tl.float64)
    tl.store(out_ptr + j, acc_s, mask=mask)
    tl.store(out_ptr + n + j, acc_ss, mask=mask)
    tl.store(out_ptr + 2 * n + j, acc_so, mask=mask)
