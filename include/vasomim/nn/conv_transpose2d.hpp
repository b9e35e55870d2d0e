#pragma once
// 2-D transposed convolution (PyTorch ConvTranspose2d semantics, groups 1, dilation 1): weight
// [cin, cout, kh, kw], output size (h - 1) * stride - 2 * pad + kh + output_pad. It is the adjoint
// (input gradient) of the Conv2d of the same weight from cout to cin channels with the same kernel,
// stride and padding over the transposed convolution's output, so it runs on conv2d.hpp's im2col /
// col2im and one batched GEMM per call:
//   forward   cols = W^T x (per image), out = col2im(cols) + bias
//   backward  cols = im2col(dout); dx = W cols; dW = sum_images x cols^T; db = sum dout
// UNETR's upsampling (kernel 2, stride 2) is the case it is used for; any kernel, stride, padding and
// output padding below the stride work.

#include <cstdint>
#include <string>

#include "vasomim/backend/algorithms.hpp"
#include "vasomim/core/error.hpp"
#include "vasomim/nn/conv2d.hpp"
#include "vasomim/nn/detail/row_kernels.hpp"

namespace vasomim::nn {

/// Geometry of one transposed convolution over n images of cin x h x w.
struct conv_transpose2d_dims {
    index_t n, cin, h, w, cout, kh, kw, stride = 1, pad = 0, out_pad = 0;
    index_t oh() const { return (h - 1) * stride - 2 * pad + kh + out_pad; }
    index_t ow() const { return (w - 1) * stride - 2 * pad + kw + out_pad; }
    /// Rows of the column matrix: cout * kh * kw.
    index_t k() const { return cout * kh * kw; }
    /// The convolution whose input gradient this is (cout -> cin channels over the output).
    conv2d_dims as_conv() const { return {n, cout, oh(), ow(), cin, kh, kw, stride, pad, 1}; }
    void validate() const {
        if (n < 1 || cin < 1 || cout < 1 || h < 1 || w < 1 || kh < 1 || kw < 1 || stride < 1 || pad < 0 ||
            out_pad < 0 || out_pad >= stride || oh() < 1 || ow() < 1)
            throw shape_error("conv_transpose2d: invalid geometry cin=" + std::to_string(cin) +
                              " cout=" + std::to_string(cout) + " input " + std::to_string(h) + "x" +
                              std::to_string(w) + " kernel " + std::to_string(kh) + "x" + std::to_string(kw) +
                              " stride " + std::to_string(stride) + " padding " + std::to_string(pad) +
                              " output padding " + std::to_string(out_pad));
    }
};

/// Scratch elements conv_transpose2d_forward needs (the column matrices).
inline index_t conv_transpose2d_forward_scratch(const conv_transpose2d_dims& d) { return d.n * d.k() * d.h * d.w; }
/// Scratch elements conv_transpose2d_backward needs (columns and per-image weight gradients).
inline index_t conv_transpose2d_backward_scratch(const conv_transpose2d_dims& d) {
    return d.n * d.k() * d.h * d.w + d.n * d.cin * d.k();
}

/// Forward: out[n, cout, oh, ow] = conv_transpose(in) + bias (bias may be null); out is overwritten.
/// scratch holds conv_transpose2d_forward_scratch(d) elements.
template <backend_policy B, class T>
void conv_transpose2d_forward(T* out, const T* in, const T* w, const T* bias, const conv_transpose2d_dims& d,
                              T* scratch) {
    d.validate();
    const index_t hw = d.h * d.w, K = d.k(), cin = d.cin, cout = d.cout, ohw = d.oh() * d.ow();
    gemm_batched<B>(transpose::yes, transpose::no, K, hw, cin, T(1), w, K, 0, in, hw, cin * hw, T(0), scratch, hw,
                    K * hw, d.n);
    if (bias)
        parallel_for<B>(d.n * cout, [=] VASOMIM_HOST_DEVICE(std::int64_t r) {
            const T v = bias[r % cout];
            for (index_t o = 0; o < ohw; ++o) out[r * ohw + o] = v;
        });
    detail::col2im<B>(out, scratch, d.as_conv(), bias != nullptr);
}

/// Backward: dw and db accumulate (either may be null); din (may be null) is overwritten, or
/// accumulated onto when `accumulate_din`. scratch holds conv_transpose2d_backward_scratch(d).
template <backend_policy B, class T>
void conv_transpose2d_backward(T* din, T* dw, T* db, const T* dout, const T* in, const T* w,
                               const conv_transpose2d_dims& d, T* scratch, bool accumulate_din = false) {
    d.validate();
    const index_t hw = d.h * d.w, K = d.k(), cin = d.cin, cout = d.cout, ohw = d.oh() * d.ow(), n = d.n;
    if (db)  // long, cancelling sums: accumulate in double
        parallel_for<B>(cout, [=] VASOMIM_HOST_DEVICE(std::int64_t co) {
            double acc = 0;
            for (index_t b = 0; b < n; ++b)
                acc += detail::lane_sum<double>(dout + (b * cout + co) * ohw, static_cast<const T*>(nullptr), ohw);
            db[co] += static_cast<T>(acc);
        });
    if (!din && !dw) return;
    T* cols = scratch;
    detail::im2col<B>(cols, dout, d.as_conv());
    if (din)
        gemm_batched<B>(transpose::no, transpose::no, cin, hw, K, T(1), w, K, 0, cols, hw, K * hw,
                        accumulate_din ? T(1) : T(0), din, hw, cin * hw, n);
    if (dw) {
        T* part = scratch + n * K * hw;
        gemm_batched<B>(transpose::no, transpose::yes, cin, K, hw, T(1), in, hw, cin * hw, cols, hw, K * hw, T(0),
                        part, K, cin * K, n);
        parallel_for<B>(cin * K, [=] VASOMIM_HOST_DEVICE(std::int64_t i) {
            T s = T(0);
            for (index_t b = 0; b < n; ++b) s += part[b * cin * K + i];
            dw[i] += s;
        });
    }
}

}  // namespace vasomim::nn
