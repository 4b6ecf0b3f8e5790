/*
 * The calibration objective's month loops on the CPU, for float32 runs.
 *
 * SCE-UA asks for the score of every point it proposes: the model run from the first month
 * to the end of the calibration period, scored over the calibration months. In torch this
 * is a few dozen tensor operations per month; with torch.compile it is one fused kernel per
 * block of months, still bound by the vectorised log/exp of the math library (DWBM takes
 * twelve transcendentals a month) and by the per-call overhead. Here the whole run of a
 * column is one loop whose stores stay in registers, the elementary functions are short
 * polynomials that the compiler inlines and vectorises (2-4 ulp in float32, tested against
 * the torch path), and the scored months are summed on the fly, so no runoff series is
 * written at all.
 *
 * The equations are those of backend/hydro/models.py (both formulations); it stays the
 * reference, and tests/backend/hydro/test_cpu_kernels.py holds the two to the same objective.
 *
 * Built at first use by backend/hydro/cpu_kernels.py with the system C compiler; without one the
 * torch path runs. No Python headers: called through ctypes.
 */

#include <stdint.h>
#include <string.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

/* Columns advanced together: the vector loops run over a block, the month loop inside. */
#define BLOCK 64

enum { DWBM = 0, SWBM = 1, TVGM = 2 };

static inline float f_max(float a, float b) { return a > b ? a : b; }
static inline float f_min(float a, float b) { return a < b ? a : b; }
static inline float f_bits(int32_t i) { float f; memcpy(&f, &i, 4); return f; }
static inline int32_t i_bits(float f) { int32_t i; memcpy(&i, &f, 4); return i; }

/* The polynomials below are near-minimax fits (least squares on Chebyshev nodes, relative
 * error) of the named function on the stated interval; each is within 2e-9 to 8e-8 of it,
 * so float32 rounding (2-4 ulp in all) dominates. */

/* log(x) for finite normal x > 0: x = 2^k m with m in [0.75, 1.5), log m = 2 atanh(s). */
static inline float f_log(float x)
{
    int32_t ix = i_bits(x);
    int32_t k = (ix - 0x3f400000) >> 23;
    float m = f_bits(ix - (k << 23));
    float s = (m - 1.0f) / (m + 1.0f);
    float z = s * s;
    float p = 1.9999999952f + z * (0.66667046572f + z * (0.39952793973f + z * 0.30432909577f));
    return (float)k * 0.69314718056f + s * p;
}

/* exp(x); x is clamped to [-87, 88] (the float32 range of normal results). */
static inline float f_exp(float x)
{
    x = f_min(f_max(x, -87.0f), 88.0f);
    float kf = __builtin_rintf(x * 1.44269504089f);
    float r = x - kf * 0.693145751953125f - kf * 1.428606765330187e-06f;
    float p = 1.0000000711f + r * (0.99999966601f + r * (0.49998898744f + r * (0.16667663141f
              + r * (0.04191506611f + r * 0.0082917103559f))));
    return p * f_bits(((int32_t)kf + 127) << 23);
}

/* log(1 + u) for u in [0, 1], to full relative precision near 0 (2 atanh(u / (2 + u))). */
static inline float f_log1p01(float u)
{
    float s = u / (2.0f + u);
    float z = s * s;
    return s * (2.0000000077f + z * (0.66666320406f + z * (0.40024651334f + z * (0.27964344705f
           + z * 0.28161453759f))));
}

/* exp(v) - 1 for v in [0, log 2], to full relative precision near 0. */
static inline float f_expm1_small(float v)
{
    return v * (0.99999998811f + v * (0.50000129344f + v * (0.16664426024f + v * (0.041806532255f
           + v * (0.0079453771204f + v * 0.0018695509321f)))));
}

/* x^y for x >= 0 and y > 0 (0^y = 0). */
static inline float f_pow(float x, float y)
{
    return x > 0.0f ? f_exp(y * f_log(f_max(x, 1e-37f))) : 0.0f;
}

/* Fu's curve F(phi; a) = 1 + phi - (1 + phi^a)^(1/a), written as in models._fu:
 * (1 + phi - m) - m expm1(log1p(u) / a), m = max(phi, 1), u = min(phi, 1/phi)^a. */
static inline float fu(float phi, float a, float inv_a)
{
    phi = f_max(phi, 1e-30f);   /* F(0) = 0; keeps the log finite */
    float lp = f_log(phi);
    float u = f_exp(-a * (lp < 0.0f ? -lp : lp));
    float g = f_expm1_small(f_log1p01(u) * inv_a);
    float m = f_max(phi, 1.0f);
    return f_max((phi + 1.0f - m) - m * g, 0.0f);
}

/* Accumulate one month's score terms (double: var = E[s^2] - E[s]^2 must not cancel). */
#define SCORE(t, jj, q)                                                            \
    if ((t) >= first) {                                                            \
        int64_t o_ = ((t) - first) * cols + cl[jj];                                \
        double wq_ = (double)weight[o_] * (double)(q);                             \
        a_s[jj] += wq_;                                                            \
        a_ss[jj] += wq_ * (double)(q);                                             \
        a_so[jj] += wq_ * (double)centred[o_];                                     \
    }

static void dwbm_block(int conserving, int64_t nb, const int64_t *cl, int64_t months,
                       int64_t stride_f, int64_t cols, const float *forcing, const float *prm,
                       int64_t n, int64_t j0, float sc_floor, float empty, int64_t first,
                       const float *weight, const float *centred, double *a_s, double *a_ss,
                       double *a_so)
{
    const float *fp = forcing, *fpw = forcing + stride_f, *fpd = forcing + 2 * stride_f,
                *fip = forcing + 3 * stride_f, *fe = forcing + 4 * stride_f;
    float S[BLOCK], G[BLOCK], SC[BLOCK], A1[BLOCK], A2[BLOCK], IA1[BLOCK], IA2[BLOCK], K[BLOCK];
    float P[BLOCK], PW[BLOCK], PD[BLOCK], IP[BLOCK], E[BLOCK];
    float PH[BLOCK], F1[BLOCK], W[BLOCK], QD[BLOCK], PY[BLOCK], PE[BLOCK], FY[BLOCK], FE[BLOCK];
    for (int64_t jj = 0; jj < BLOCK; jj++) {
        int64_t j = j0 + (jj < nb ? jj : 0);   /* padding lanes repeat the first column */
        float sc = f_max(prm[j], sc_floor);
        SC[jj] = sc;
        A1[jj] = prm[n + j];
        A2[jj] = prm[2 * n + j];
        IA1[jj] = 1.0f / A1[jj];
        IA2[jj] = 1.0f / A2[jj];
        K[jj] = prm[3 * n + j];
        S[jj] = 0.1f * sc;
        G[jj] = 0.001f;
    }
    for (int64_t t = 0; t < months; t++) {
        int64_t row = t * cols;
        for (int64_t jj = 0; jj < BLOCK; jj++) {
            int64_t c = row + cl[jj];
            P[jj] = fp[c]; PW[jj] = fpw[c]; PD[jj] = fpd[c]; IP[jj] = fip[c]; E[jj] = fe[c];
        }
#pragma omp simd
        for (int64_t jj = 0; jj < BLOCK; jj++)
            PH[jj] = f_max((E[jj] + SC[jj] - S[jj]) * IP[jj], 0.0f);
#pragma omp simd
        for (int64_t jj = 0; jj < BLOCK; jj++)
            F1[jj] = fu(PH[jj], A1[jj], IA1[jj]);
#pragma omp simd
        for (int64_t jj = 0; jj < BLOCK; jj++) {
            float x = F1[jj] * PW[jj] + PD[jj];
            if (conserving)
                x = f_min(x, P[jj]);   /* rounding only: F <= 1 */
            QD[jj] = P[jj] - x;
            float w = x + S[jj];
            W[jj] = w;
            float e0w = f_min(E[jj], 50.0f * w);
            float inv_w = w > empty ? 1.0f / w : 0.0f;
            PY[jj] = (e0w + SC[jj]) * inv_w;
            PE[jj] = e0w * inv_w;
        }
#pragma omp simd
        for (int64_t jj = 0; jj < BLOCK; jj++)
            FY[jj] = fu(PY[jj], A2[jj], IA2[jj]);
#pragma omp simd
        for (int64_t jj = 0; jj < BLOCK; jj++)
            FE[jj] = fu(PE[jj], A2[jj], IA2[jj]);
#pragma omp simd
        for (int64_t jj = 0; jj < BLOCK; jj++) {
            float w = W[jj], g = G[jj];
            float y = FY[jj] * w, e = FE[jj] * w;
            if (conserving) {
                y = f_min(y, w);
                e = f_min(e, y);
            }
            float s_new = y - e;
            if (!conserving)
                s_new = f_max(s_new, 0.0f);
            S[jj] = s_new;
            float qb = K[jj] * g;
            G[jj] = (g - qb) + (w - y);
            QD[jj] += qb;   /* the month's runoff */
        }
        if (t >= first)
            for (int64_t jj = 0; jj < BLOCK; jj++) { SCORE(t, jj, QD[jj]) }
    }
}

/* The month loop of bucket_block for one combination of flags: always inlined with constant
 * flags, so every combination gets its own branch-free, vectorised loop (a flag tested inside
 * the simd loop costs a factor 3 on TVGM). */
static inline __attribute__((always_inline)) void
bucket_months(const int tvgm, const int conserving, const int bounded, int64_t months,
              int64_t cols, const int64_t *cl, const float *fp, const float *fe, float *Wst,
              const float *C1, const float *C2, const float *ISC, const float *XE,
              const float *XQ, float seed_eps, int64_t first, const float *weight,
              const float *centred, double *a_s, double *a_ss, double *a_so, int64_t j0,
              int64_t nb)
{
    float P[BLOCK], E[BLOCK], Q[BLOCK];
    for (int64_t t = 0; t < months; t++) {
        int64_t row = t * cols;
        for (int64_t jj = 0; jj < BLOCK; jj++) {
            int64_t c = row + cl[jj];
            P[jj] = fp[c]; E[jj] = fe[c];
        }
#pragma omp simd
        for (int64_t jj = 0; jj < BLOCK; jj++) {
            float w = Wst[jj], p = P[jj];
            float w0 = w + p;
            float e, q;
            if (bounded) {
                /* sc is a capacity: the filling is at most 1 (models._bucket_step). */
                float fill0 = f_min(w0 * ISC[jj], 1.0f), fill = f_min(w * ISC[jj], 1.0f);
                if (tvgm) {
                    e = E[jj] * f_pow(fill0, XE[jj]);
                    q = C1[jj] * f_pow(fill, XQ[jj]) * p + C2[jj] * (w + w0);
                } else {
                    e = E[jj] * fill0;
                    q = C1[jj] * fill * p + C2[jj] * w;
                }
            } else if (tvgm) {
                e = E[jj] * f_pow(w0 * ISC[jj], XE[jj]);
                q = C1[jj] * f_pow(w * ISC[jj], XQ[jj]) * p + C2[jj] * (w + w0);
            } else {
                e = E[jj] * w0 * ISC[jj];
                q = C1[jj] * ISC[jj] * w * p + C2[jj] * w;
            }
            float w_new;
            if (conserving) {
                /* Fluxes share what the store holds when they would take more; such a
                 * store ends exactly empty (see models._bucket_step). */
                float demand = q + e;
                int over = demand > w0;
                float scale = over ? w0 / demand : 1.0f;
                q *= scale;
                e *= scale;
                w_new = over ? 0.0f : f_max(w0 - q - e, 0.0f);
                if (bounded) {
                    float spill = f_max(w_new - 1.0f / ISC[jj], 0.0f);
                    q += spill;
                    w_new -= spill;
                }
            } else {
                w_new = f_max(w0 - q - e, seed_eps);
            }
            Wst[jj] = w_new;
            Q[jj] = q;
        }
        if (t >= first)
            for (int64_t jj = 0; jj < BLOCK; jj++) { SCORE(t, jj, Q[jj]) }
    }
}

static void bucket_block(int tvgm, int conserving, int64_t nb, const int64_t *cl, int64_t months,
                         int64_t stride_f, int64_t cols, const float *forcing, const float *prm,
                         int64_t n, int64_t j0, float sc_floor, float seed_eps, int64_t first,
                         const float *weight, const float *centred, double *a_s, double *a_ss,
                         double *a_so)
{
    const float *fp = forcing, *fe = forcing + stride_f;
    float Wst[BLOCK], C1[BLOCK], C2[BLOCK], ISC[BLOCK], SC[BLOCK], XE[BLOCK], XQ[BLOCK];
    const int bounded = conserving == 2;
    for (int64_t jj = 0; jj < BLOCK; jj++) {
        int64_t j = j0 + (jj < nb ? jj : 0);
        if (tvgm) {   /* g1, g2, kr, sc, gamma */
            C1[jj] = prm[j];
            XQ[jj] = prm[n + j];
            C2[jj] = 0.5f * prm[2 * n + j];
            SC[jj] = f_max(prm[3 * n + j], sc_floor);
            ISC[jj] = 1.0f / SC[jj];
            XE[jj] = prm[4 * n + j];
        } else {      /* ks, kg, sc */
            C1[jj] = prm[j];
            C2[jj] = prm[n + j];
            SC[jj] = f_max(prm[2 * n + j], sc_floor);
            ISC[jj] = 1.0f / SC[jj];
            XE[jj] = XQ[jj] = 1.0f;
        }
        /* Bounded: the store starts no fuller than its capacity (models._run_months). */
        Wst[jj] = bounded ? f_min(50.0f, SC[jj]) : 50.0f;
    }
#define BUCKET_MONTHS(T, C, B) bucket_months(T, C, B, months, cols, cl, fp, fe, Wst, C1, C2, \
                                          ISC, XE, XQ, seed_eps, first, weight, centred, \
                                          a_s, a_ss, a_so, j0, nb)
    if (tvgm) {
        if (bounded) BUCKET_MONTHS(1, 1, 1);
        else if (conserving) BUCKET_MONTHS(1, 1, 0);
        else BUCKET_MONTHS(1, 0, 0);
    } else {
        if (bounded) BUCKET_MONTHS(0, 1, 1);
        else if (conserving) BUCKET_MONTHS(0, 1, 0);
        else BUCKET_MONTHS(0, 0, 0);
    }
#undef BUCKET_MONTHS
}

/*
 * Score n model runs (columns) over the months [first, months).
 *
 * model: 0 DWBM, 1 SWBM, 2 TVGM; conserving: 1, 2 (bounded) or 0 (the seed formulation).
 * cell (n): the forcing column of each run. forcing (F, total_months, cols), C order: DWBM
 *   P (as the formulation runs it), P wet, P dry, 1/P, capped PET; SWBM/TVGM P, PET.
 * prm (k, n): the model's parameters in models.PARAMETERS order.
 * weight, centred ((months - first), cols): 1/valid months (0 on missing months) and the
 *   observed runoff minus its mean (0 on missing months), as metrics.CalibrationTarget.
 * out (3, n): sum w q, sum w q^2, sum w q (obs - mean obs).
 * threads: OpenMP threads (1 = this thread only).
 */
int cwsc_score(int32_t model, int32_t conserving, int64_t n, const int64_t *cell,
               const float *forcing, int64_t total_months, int64_t cols, const float *prm,
               int64_t months, int64_t first, const float *weight, const float *centred,
               float sc_floor, float empty, float seed_eps, double *out, int32_t threads)
{
    if (model < DWBM || model > TVGM || months > total_months || first < 0 || first > months)
        return -1;
    int64_t stride_f = total_months * cols;
    int64_t blocks = (n + BLOCK - 1) / BLOCK;
#if defined(__SSE__)
    /* Flush denormals to zero: tiny terms of the series otherwise run in microcode. */
    unsigned int csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040);
#endif
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads > 0 ? threads : 1)
#endif
    for (int64_t b = 0; b < blocks; b++) {
#if defined(__SSE__) && defined(_OPENMP)
        /* Each thread flushes denormals for its block and restores its own mode after. */
        unsigned int csr_thread = _mm_getcsr();
        _mm_setcsr(csr_thread | 0x8040);
#endif
        int64_t j0 = b * BLOCK;
        int64_t nb = n - j0 < BLOCK ? n - j0 : BLOCK;
        int64_t cl[BLOCK];
        double a_s[BLOCK] = {0}, a_ss[BLOCK] = {0}, a_so[BLOCK] = {0};
        for (int64_t jj = 0; jj < BLOCK; jj++)
            cl[jj] = cell[j0 + (jj < nb ? jj : 0)];
        if (model == DWBM)
            dwbm_block(conserving, nb, cl, months, stride_f, cols, forcing, prm, n, j0, sc_floor,
                       empty, first, weight, centred, a_s, a_ss, a_so);
        else
            bucket_block(model == TVGM, conserving, nb, cl, months, stride_f, cols, forcing, prm,
                         n, j0, sc_floor, seed_eps, first, weight, centred, a_s, a_ss, a_so);
        for (int64_t jj = 0; jj < nb; jj++) {
            out[j0 + jj] = a_s[jj];
            out[n + j0 + jj] = a_ss[jj];
            out[2 * n + j0 + jj] = a_so[jj];
        }
#if defined(__SSE__) && defined(_OPENMP)
        _mm_setcsr(csr_thread);
#endif
    }
#if defined(__SSE__)
    _mm_setcsr(csr);
#endif
    (void)threads;
    return 0;
}
