#pragma once
// 2-D convolution (PyTorch Conv2d semantics: weight [cout, cin/groups, kh, kw], zero padding,
// cross-correlation). Dense stride-1 convolutions over rows of >= 16 pixels run a register-blocked
// direct kernel on host backends (forward and input gradient); other dense ones are im2col + one
// batched GEMM per call (always so on CUDA); grouped and depthwise convolutions run a direct
// row kernel (their GEMMs would be tiny).

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/config.hpp"
#include "vasomim/core/error.hpp"
#include "vasomim/nn/detail/row_kernels.hpp"

namespace vasomim::nn {

/// Geometry of one convolution over n images of cin x h x w.
struct conv2d_dims {
    index_t n, cin, h, w, cout, kh, kw, stride = 1, pad = 0, groups = 1;
    VASOMIM_HOST_DEVICE index_t oh() const { return (h + 2 * pad - kh) / stride + 1; }
    VASOMIM_HOST_DEVICE index_t ow() const { return (w + 2 * pad - kw) / stride + 1; }
    /// Rows of the im2col matrix: (cin / groups) * kh * kw.
    index_t k() const { return cin / groups * kh * kw; }
    void validate() const {
        if (groups < 1 || cin % groups != 0 || cout % groups != 0 || stride < 1 || pad < 0 || oh() < 1 || ow() < 1)
            throw shape_error("conv2d: invalid geometry cin=" + std::to_string(cin) + " cout=" + std::to_string(cout) +
                              " groups=" + std::to_string(groups) + " input " + std::to_string(h) + "x" +
                              std::to_string(w) + " kernel " + std::to_string(kh) + "x" + std::to_string(kw));
    }
};

/// Scratch elements conv2d_forward needs (the im2col matrix; 0 for grouped convolutions).
inline index_t conv2d_forward_scratch(const conv2d_dims& d) {
    return d.groups == 1 ? d.n * d.k() * d.oh() * d.ow() : 0;
}
/// Scratch elements conv2d_backward needs (columns and per-image weight gradients; 0 when grouped).
inline index_t conv2d_backward_scratch(const conv2d_dims& d) {
    return d.groups == 1 ? d.n * d.k() * d.oh() * d.ow() + d.n * d.cout * d.k() : 0;
}

namespace detail {

/// cols[b, (ci*kh + ky)*kw + kx, oy*ow + ox] = in[b, ci, oy*s - p + ky, ox*s - p + kx] (0 outside).
/// One work item per row of the column matrix (b, k, oy): a shifted copy of one input row.
/// With oy0 / rows: the output rows oy0 .. oy0 + rows - 1 only, as cols[b, k, (oy - oy0)*ow + ox].
template <backend_policy B, class T>
void im2col(T* cols, const T* in, const conv2d_dims& d, index_t oy0 = 0, index_t rows = -1) {
    const index_t C = d.cin, H = d.h, W = d.w, kh = d.kh, kw = d.kw, s = d.stride, p = d.pad;
    const index_t oh = rows < 0 ? d.oh() : rows, ow = d.ow(), K = d.k();
    parallel_for<B>(d.n * K * oh, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const index_t oy = r % oh + oy0, k = (r / oh) % K, b = r / (oh * K);
        const index_t kx = k % kw, ky = (k / kw) % kh, ci = k / (kw * kh);
        T* dst = cols + r * ow;
        const index_t y = oy * s - p + ky;
        index_t lo = 0, hi = 0;
        if (y >= 0 && y < H) tap_range(kx, s, p, W, ow, lo, hi);
        for (index_t ox = 0; ox < lo; ++ox) dst[ox] = T(0);
        if (hi > lo) {
            const T* src = in + ((b * C + ci) * H + y) * W;
            const index_t off = kx - p;
            if (s == 1)
                for (index_t ox = lo; ox < hi; ++ox) dst[ox] = src[ox + off];
            else
                for (index_t ox = lo; ox < hi; ++ox) dst[ox] = src[ox * s + off];
        }
        for (index_t ox = hi; ox < ow; ++ox) dst[ox] = T(0);
    });
}

/// Adjoint of im2col: din[b, ci, y, x] (+)= sum of the columns that read (y, x). One work item per
/// input row (b, ci, y), which gathers the column rows that read it: no atomics.
template <backend_policy B, class T>
void col2im(T* din, const T* cols, const conv2d_dims& d, bool accumulate) {
    const index_t C = d.cin, H = d.h, W = d.w, kh = d.kh, kw = d.kw, s = d.stride, p = d.pad;
    const index_t oh = d.oh(), ow = d.ow(), K = d.k();
    parallel_for<B>(d.n * C * H, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const index_t y = r % H, ci = (r / H) % C, b = r / (H * C);
        T* dst = din + r * W;
        if (!accumulate)
            for (index_t x = 0; x < W; ++x) dst[x] = T(0);
        for (index_t ky = 0; ky < kh; ++ky) {
            const index_t ty = y + p - ky;
            if (ty < 0 || ty % s != 0 || ty / s >= oh) continue;
            for (index_t kx = 0; kx < kw; ++kx) {
                const T* src = cols + ((b * K + (ci * kh + ky) * kw + kx) * oh + ty / s) * ow;
                index_t lo, hi;
                tap_range(kx, s, p, W, ow, lo, hi);
                const index_t off = kx - p;
                if (s == 1)
                    for (index_t ox = lo; ox < hi; ++ox) dst[ox + off] += src[ox];
                else
                    for (index_t ox = lo; ox < hi; ++ox) dst[ox * s + off] += src[ox];
            }
        }
    });
}

/// Direct dense convolution with stride 1 on host backends: one work item per (image, block of
/// 8 output channels, output row), 16 columns at a time accumulated in registers, so no column
/// matrix is written or packed. The weight of (output channel o, input channel i, ky, kx) is
/// w[base + o*so + i*si + ky*sy + kx*sx], which also expresses the flipped, transposed kernel of the
/// input gradient. out is overwritten, or accumulated onto when `accumulate`. XB: columns per block.
template <index_t XB, backend_policy B, class T>
void conv2d_direct(T* out, const T* in, const T* w, const T* bias, const conv2d_dims& d, index_t base, index_t so,
                   index_t si, index_t sy, index_t sx, bool accumulate) {
    constexpr index_t CB = 8;
    const index_t C = d.cin, H = d.h, W = d.w, kh = d.kh, kw = d.kw, p = d.pad, cout = d.cout;
    const index_t oh = d.oh(), ow = d.ow(), ncb = (cout + CB - 1) / CB;
    parallel_for<B>(d.n * ncb * oh, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const index_t oy = r % oh, cb = (r / oh) % ncb, b = r / (oh * ncb);
        const index_t co0 = cb * CB, cn = cout - co0 < CB ? cout - co0 : CB;
        for (index_t x0 = 0; x0 < ow; x0 += XB) {
            T acc[CB][XB];
            for (index_t c = 0; c < CB; ++c) {
                const T v = bias && c < cn ? bias[co0 + c] : T(0);
                for (index_t j = 0; j < XB; ++j) acc[c][j] = v;
            }
            for (index_t ci = 0; ci < C; ++ci) {
                const T* plane = in + (b * C + ci) * H * W;
                for (index_t ky = 0; ky < kh; ++ky) {
                    const index_t y = oy - p + ky;
                    if (y < 0 || y >= H) continue;
                    const T* row = plane + y * W;
                    for (index_t kx = 0; kx < kw; ++kx) {
                        index_t lo, hi;
                        tap_range(kx, 1, p, W, ow, lo, hi);
                        const index_t off = kx - p;
                        T v[XB];
                        if (lo <= x0 && x0 + XB <= hi) {
                            for (index_t j = 0; j < XB; ++j) v[j] = row[x0 + j + off];
                        } else {
                            for (index_t j = 0; j < XB; ++j) {
                                const index_t x = x0 + j;
                                v[j] = x >= lo && x < hi ? row[x + off] : T(0);
                            }
                        }
                        const T* wp = w + (base + co0 * so + ci * si + ky * sy + kx * sx);
                        for (index_t c = 0; c < CB; ++c) {
                            const T wv = c < cn ? wp[c * so] : T(0);
                            for (index_t j = 0; j < XB; ++j) acc[c][j] += wv * v[j];
                        }
                    }
                }
            }
            const index_t xn = ow - x0 < XB ? ow - x0 : XB;
            for (index_t c = 0; c < cn; ++c) {
                T* dst = out + ((b * cout + co0 + c) * oh + oy) * ow + x0;
                if (accumulate)
                    for (index_t j = 0; j < xn; ++j) dst[j] += acc[c][j];
                else
                    for (index_t j = 0; j < xn; ++j) dst[j] = acc[c][j];
            }
        }
    });
}

/// Whether the direct kernel serves this convolution: host backends, dense, stride 1, square
/// kernel, at least one block of 8 output channels, rows of at least 16 pixels (narrow maps and
/// single-channel outputs go through im2col + GEMM).
template <backend_policy B>
bool use_direct_conv(const conv2d_dims& d) {
    return backend_traits<B>::host_accessible && d.groups == 1 && d.stride == 1 && d.kh == d.kw && d.pad >= 0 && d.pad < d.kh &&
           d.cout >= 8 && d.ow() >= 16 && d.w >= 16;
}

#if !VASOMIM_HAS_CUDA
/// The direct kernel for output channel counts that are a multiple of 8, host builds without CUDA
/// (GCC vector extensions; VASOMIM_HAS_CUDA builds keep conv2d_direct): the same work items and
/// weight addressing as conv2d_direct, but the 8 x (NV vectors of 64 bytes) accumulators are vector
/// variables that stay in registers, blocks read their taps without bounds checks where every tap
/// of the block lies inside the row (edge blocks go through a checked copy), and the last block is
/// shifted left to end at the row's end (its overlap with the block before is computed again and
/// not stored).
template <class T>
struct conv_vec {
    typedef T type __attribute__((vector_size(64)));
    // the same vector at any address of a T: loaded straight into a register (a memcpy into a
    // vector variable went through the stack in two halves, and the reload stalled on them)
    typedef T unaligned __attribute__((vector_size(64), aligned(alignof(T)), may_alias));
};
inline constexpr index_t conv2d_direct8_max_kw = 16;  ///< wider kernels take conv2d_direct
template <index_t NV, backend_policy B, class T>
void conv2d_direct8(T* out, const T* in, const T* w, const T* bias, const conv2d_dims& d, index_t base, index_t so,
                    index_t si, index_t sy, index_t sx, bool accumulate) {
    using V = typename conv_vec<T>::type;
    using VU = typename conv_vec<T>::unaligned;
    constexpr index_t CB = 8, L = static_cast<index_t>(64 / sizeof(T)), XB = NV * L, max_kw = conv2d_direct8_max_kw;
    const index_t C = d.cin, H = d.h, W = d.w, kh = d.kh, kw = d.kw, p = d.pad, cout = d.cout;
    const index_t oh = d.oh(), ow = d.ow(), ncb = cout / CB;
    parallel_for<B>(d.n * ncb * oh, [=](std::int64_t r) {
        const index_t oy = r % oh, cb = (r / oh) % ncb, b = r / (oh * ncb);
        const index_t co0 = cb * CB;
        for (index_t x0 = 0; x0 < ow; x0 += XB) {
            const index_t xs = x0 + XB <= ow || ow < XB ? x0 : ow - XB;  // block start (shifted at the end)
            const bool interior = xs - p >= 0 && xs + XB - 1 + kw - 1 - p < W;
            V acc[CB][NV];
#pragma GCC unroll 8
            for (index_t c = 0; c < CB; ++c) {
                const T bv = bias ? bias[co0 + c] : T(0);
#pragma GCC unroll 4
                for (index_t k = 0; k < NV; ++k) acc[c][k] = bv - V{};
            }
            for (index_t ci = 0; ci < C; ++ci) {
                const T* plane = in + (b * C + ci) * H * W;
                for (index_t ky = 0; ky < kh; ++ky) {
                    const index_t y = oy - p + ky;
                    if (y < 0 || y >= H) continue;
                    const T* row = plane + y * W;
                    const T* wrow = w + (base + co0 * so + ci * si + ky * sy);
                    // edge blocks: the block's span of the row (XB + kw - 1 values, zeros outside)
                    // copied once for all kx
                    T t[XB + max_kw - 1];
                    const T* src = row + xs - p;
                    if (!interior) {
                        for (index_t j = 0; j < XB + kw - 1; ++j) {
                            const index_t x = xs - p + j;
                            t[j] = x >= 0 && x < W ? row[x] : T(0);
                        }
                        src = t;
                    }
                    for (index_t kx = 0; kx < kw; ++kx) {
                        V v[NV];
#pragma GCC unroll 4
                        for (index_t k = 0; k < NV; ++k) v[k] = *reinterpret_cast<const VU*>(src + kx + k * L);
                        const T* wp = wrow + kx * sx;
#pragma GCC unroll 8
                        for (index_t c = 0; c < CB; ++c) {
                            const V wv = wp[c * so] - V{};  // splat (s - 0 is s for every s, so it folds)
#pragma GCC unroll 4
                            for (index_t k = 0; k < NV; ++k) acc[c][k] += wv * v[k];
                        }
                    }
                }
            }
            const index_t j0 = x0 - xs, xn = ow - xs < XB ? ow - xs : XB;
#pragma GCC unroll 8
            for (index_t c = 0; c < CB; ++c) {
                T* dst = out + ((b * cout + co0 + c) * oh + oy) * ow + xs;
                T res[XB];
                std::memcpy(res, acc[c], sizeof res);
                if (accumulate)
                    for (index_t j = j0; j < xn; ++j) dst[j] += res[j];
                else
                    for (index_t j = j0; j < xn; ++j) dst[j] = res[j];
            }
        }
    });
}
#endif

/// conv2d_direct8 (two 64-byte vectors per block row with AVX-512, one otherwise) when the output
/// channels come in eights and CUDA is off; else conv2d_direct with 64-column blocks on wide rows,
/// 32 on narrow ones (measured on 28..224 maps).
template <backend_policy B, class T>
void conv2d_direct_any(T* out, const T* in, const T* w, const T* bias, const conv2d_dims& d, index_t base, index_t so,
                       index_t si, index_t sy, index_t sx, bool accumulate) {
#if !VASOMIM_HAS_CUDA
#if defined(__AVX512F__)
    constexpr index_t nv = 2;
#else
    constexpr index_t nv = 1;
#endif
    if (d.cout % 8 == 0 && d.kw <= conv2d_direct8_max_kw) {
        conv2d_direct8<nv, B>(out, in, w, bias, d, base, so, si, sy, sx, accumulate);
        return;
    }
#endif
    if (d.ow() >= 48)
        conv2d_direct<64, B>(out, in, w, bias, d, base, so, si, sy, sx, accumulate);
    else
        conv2d_direct<32, B>(out, in, w, bias, d, base, so, si, sy, sx, accumulate);
}

}  // namespace detail

/// Forward: out[n, cout, oh, ow] = conv(in) + bias (bias may be null). scratch holds
/// conv2d_forward_scratch(d) elements (may be null when that is 0).
template <backend_policy B, class T>
void conv2d_forward(T* out, const T* in, const T* w, const T* bias, const conv2d_dims& d, T* scratch) {
    d.validate();
    const index_t ohw = d.oh() * d.ow(), cout = d.cout;
    if constexpr (backend_traits<B>::host_accessible) {
        if (detail::use_direct_conv<B>(d)) {
            const index_t kk = d.kh * d.kw;
            detail::conv2d_direct_any<B>(out, in, w, bias, d, 0, d.cin * kk, kk, d.kw, 1, false);
            return;
        }
    }
    if (d.groups == 1) {
        const index_t K = d.k();
        detail::im2col<B>(scratch, in, d);
        if (bias)  // one work item per output plane
            parallel_for<B>(d.n * cout, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
                const T v = bias[r % cout];
                for (index_t o = 0; o < ohw; ++o) out[r * ohw + o] = v;
            });
        gemm_batched<B>(transpose::no, transpose::no, cout, ohw, K, T(1), w, K, 0, scratch, ohw, K * ohw,
                        bias ? T(1) : T(0), out, ohw, cout * ohw, d.n);
        return;
    }
    // grouped / depthwise: one work item per output row (b, co, oy), taps accumulated in
    // (ci, ky, kx) order over the whole row
    const index_t C = d.cin, H = d.h, W = d.w, kh = d.kh, kw = d.kw, s = d.stride, p = d.pad;
    const index_t oh = d.oh(), ow = d.ow(), cpg = d.cin / d.groups, opg = d.cout / d.groups;
    parallel_for<B>(d.n * cout * oh, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
        const index_t oy = r % oh, co = (r / oh) % cout, b = r / (oh * cout);
        const index_t g = co / opg;
        T* dst = out + r * ow;
        const T b0 = bias ? bias[co] : T(0);
        for (index_t ox = 0; ox < ow; ++ox) dst[ox] = b0;
        for (index_t cl = 0; cl < cpg; ++cl) {
            const T* src = in + (b * C + g * cpg + cl) * H * W;
            const T* wk = w + (co * cpg + cl) * kh * kw;
            for (index_t ky = 0; ky < kh; ++ky) {
                const index_t y = oy * s - p + ky;
                if (y < 0 || y >= H) continue;
                const T* srow = src + y * W;
                for (index_t kx = 0; kx < kw; ++kx) {
                    const T wv = wk[ky * kw + kx];
                    index_t lo, hi;
                    detail::tap_range(kx, s, p, W, ow, lo, hi);
                    const index_t off = kx - p;
                    if (s == 1)
                        for (index_t ox = lo; ox < hi; ++ox) dst[ox] += wv * srow[ox + off];
                    else
                        for (index_t ox = lo; ox < hi; ++ox) dst[ox] += wv * srow[ox * s + off];
                }
            }
        }
    });
}

/// Backward: dw and db accumulate (either may be null); din (may be null) is overwritten, or
/// accumulated when `accumulate_din`. scratch holds conv2d_backward_scratch(d) elements.
template <backend_policy B, class T>
void conv2d_backward(T* din, T* dw, T* db, const T* dout, const T* in, const T* w, const conv2d_dims& d,
                     T* scratch, bool accumulate_din = false) {
    d.validate();
    const index_t ohw = d.oh() * d.ow(), cout = d.cout, n = d.n;
    if (db)  // long, cancelling sums: accumulate in double
        parallel_for<B>(cout, [=] VASOMIM_HOST_DEVICE(std::int64_t co) {
            double acc = 0;
            for (index_t b = 0; b < n; ++b) acc += detail::lane_sum<double>(dout + (b * cout + co) * ohw, static_cast<const T*>(nullptr), ohw);
            db[co] += static_cast<T>(acc);
        });
    if (d.groups == 1) {
        const index_t K = d.k();
        T* cols = scratch;
        if (dw) {
            T* part = scratch + n * K * ohw;
            // host backends: the columns of a few output rows at a time (about 4 MB for the batch), so
            // that they are read back from cache, not memory; devices: all rows in one GEMM
            index_t rows = d.oh();
            if constexpr (backend_traits<B>::host_accessible)
                rows = std::max<index_t>(1, std::min<index_t>(d.oh(), (index_t{1} << 20) / std::max<index_t>(1, n * K * d.ow())));
            for (index_t oy0 = 0; oy0 < d.oh(); oy0 += rows) {
                const index_t nr = std::min(rows, d.oh() - oy0), chunk = nr * d.ow();
                detail::im2col<B>(cols, in, d, oy0, nr);
                gemm_batched<B>(transpose::no, transpose::yes, cout, K, chunk, T(1), dout + oy0 * d.ow(), ohw, cout * ohw,
                                cols, chunk, K * chunk, oy0 == 0 ? T(0) : T(1), part, K, cout * K, n);
            }
            parallel_for<B>(cout * K, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
                T s = T(0);
                for (index_t b = 0; b < n; ++b) s += part[b * cout * K + i];
                dw[i] += s;
            });
        }
        // on host backends the input gradient of a stride-1 convolution is a direct convolution of
        // dout with the flipped, transposed kernel and padding k - 1 - p
        bool direct = false;
        if constexpr (backend_traits<B>::host_accessible) {
            const conv2d_dims t{n, cout, d.oh(), d.ow(), d.cin, d.kh, d.kw, 1, d.kh - 1 - d.pad, 1};
            direct = din && d.stride == 1 && detail::use_direct_conv<B>(t);
            if (direct) {
                const index_t kk = d.kh * d.kw;
                detail::conv2d_direct_any<B>(din, dout, w, static_cast<const T*>(nullptr), t, kk - 1, kk, d.cin * kk,
                                             -d.kw, -1, accumulate_din);
            }
        }
        if (din && !direct) {
            gemm_batched<B>(transpose::yes, transpose::no, K, ohw, cout, T(1), w, K, 0, dout, ohw, cout * ohw, T(0),
                            cols, ohw, K * ohw, n);
            detail::col2im<B>(din, cols, d, accumulate_din);
        }
        return;
    }
    // grouped / depthwise: din per input row (b, ci, y), gathering the output rows that read it
    const index_t C = d.cin, H = d.h, W = d.w, kh = d.kh, kw = d.kw, s = d.stride, p = d.pad;
    const index_t oh = d.oh(), ow = d.ow(), cpg = d.cin / d.groups, opg = d.cout / d.groups;
    if (din)
        parallel_for<B>(n * C * H, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
            const index_t y = r % H, ci = (r / H) % C, b = r / (H * C);
            const index_t g = ci / cpg, cl = ci % cpg;
            T* dst = din + r * W;
            if (!accumulate_din)
                for (index_t x = 0; x < W; ++x) dst[x] = T(0);
            for (index_t co = g * opg; co < (g + 1) * opg; ++co) {
                const T* wk = w + (co * cpg + cl) * kh * kw;
                const T* go = dout + (b * cout + co) * ohw;
                for (index_t ky = 0; ky < kh; ++ky) {
                    const index_t ty = y + p - ky;
                    if (ty < 0 || ty % s != 0 || ty / s >= oh) continue;
                    const T* grow = go + (ty / s) * ow;
                    for (index_t kx = 0; kx < kw; ++kx) {
                        const T wv = wk[ky * kw + kx];
                        index_t lo, hi;
                        detail::tap_range(kx, s, p, W, ow, lo, hi);
                        const index_t off = kx - p;
                        if (s == 1)
                            for (index_t ox = lo; ox < hi; ++ox) dst[ox + off] += wv * grow[ox];
                        else
                            for (index_t ox = lo; ox < hi; ++ox) dst[ox * s + off] += wv * grow[ox];
                    }
                }
            }
        });
    if (dw)  // one work item per weight: a dot product of shifted rows over the batch
        parallel_for<B>(cout * cpg * kh * kw, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
            const index_t kx = i % kw, ky = (i / kw) % kh, cl = (i / (kw * kh)) % cpg, co = i / (kw * kh * cpg);
            const index_t ci = (co / opg) * cpg + cl;
            index_t lo, hi;
            detail::tap_range(kx, s, p, W, ow, lo, hi);
            const index_t off = kx - p;
            T acc = T(0);
            for (index_t b = 0; b < n; ++b) {
                const T* src = in + (b * C + ci) * H * W;
                const T* go = dout + (b * cout + co) * ohw;
                for (index_t oy = 0; oy < oh; ++oy) {
                    const index_t y = oy * s - p + ky;
                    if (y < 0 || y >= H || hi <= lo) continue;
                    if (s == 1)
                        acc += detail::lane_sum<T>(go + oy * ow + lo, src + y * W + lo + off, hi - lo);
                    else
                        for (index_t ox = lo; ox < hi; ++ox) acc += go[oy * ow + ox] * src[y * W + ox * s + off];
                }
            }
            dw[i] += acc;
        });
}

}  // namespace vasomim::nn
