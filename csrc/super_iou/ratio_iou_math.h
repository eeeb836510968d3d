#pragma once
// The ratio_iou formula and its gradient, written once for every kernel.
// T is float or double on the CPU and GPU, or at::vec::Vectorized of those on
// the CPU. The operations and their order follow the eager reference
// (torchops/iou.py), so float32/float64 results match it to the bit.
#include <ATen/OpMathType.h>

#include "common/elementwise.h"

namespace torchops {
inline namespace CPU_CAPABILITY {  // see common/elementwise.h

template <typename T>
struct BoxPair {
  T x1, y1, w1, h1, x2, y2, w2, h2;
};

// The first eight values of `in` as a BoxPair.
template <typename T, typename Indexable>
C10_HOST_DEVICE inline BoxPair<T> box_pair_from(const Indexable& in, int offset = 0) {
  return {in[offset + 0], in[offset + 1], in[offset + 2], in[offset + 3],
          in[offset + 4], in[offset + 5], in[offset + 6], in[offset + 7]};
}

// eps as eager's clamp(union, min=eps) sees it: rounded to the tensor dtype.
template <typename scalar_t>
inline at::opmath_type<scalar_t> eps_for(double eps) {
  return static_cast<at::opmath_type<scalar_t>>(static_cast<scalar_t>(eps));
}

template <typename T>
C10_HOST_DEVICE inline T ratio_iou_formula(const BoxPair<T>& b, T eps) {
  const T zero(0);
  const T inter_x = maximum_nan(b.x1, b.x2);
  const T inter_y = maximum_nan(b.y1, b.y2);
  const T inter_w = clamp_min_nan(minimum_nan(b.x1 + b.w1, b.x2 + b.w2) - inter_x, zero);
  const T inter_h = clamp_min_nan(minimum_nan(b.y1 + b.h1, b.y2 + b.h2) - inter_y, zero);
  const T inter = inter_w * inter_h;
  const T union_area = b.w1 * b.h1 + b.w2 * b.h2 - inter;
  return divide_zero_fast(inter, clamp_min_nan(union_area, eps));
}

// Gradients of all eight inputs for an upstream gradient `grad`. The forward
// intermediates are recomputed from the inputs: that costs a few flops and
// saves writing and re-reading a workspace.
template <typename T>
C10_HOST_DEVICE inline BoxPair<T> ratio_iou_formula_backward(const BoxPair<T>& b, T eps, T grad) {
  const T zero(0);
  // forward, keeping what the backward needs
  const T right1 = b.x1 + b.w1, right2 = b.x2 + b.w2;
  const T bottom1 = b.y1 + b.h1, bottom2 = b.y2 + b.h2;
  const T inter_x = maximum_nan(b.x1, b.x2);
  const T inter_y = maximum_nan(b.y1, b.y2);
  const T raw_w = minimum_nan(right1, right2) - inter_x;
  const T raw_h = minimum_nan(bottom1, bottom2) - inter_y;
  const T inter_w = clamp_min_nan(raw_w, zero);
  const T inter_h = clamp_min_nan(raw_h, zero);
  const T inter = inter_w * inter_h;
  const T union_area = b.w1 * b.h1 + b.w2 * b.h2 - inter;
  const T clamped_union = clamp_min_nan(union_area, eps);

  // iou = inter / clamped_union, as autograd's div backward writes it
  const T grad_clamped_union = negate(grad) * (divide_zero_fast(inter, clamped_union) / clamped_union);
  const T grad_union = clamp_min_backward(union_area, eps, grad_clamped_union);
  // inter feeds the quotient and, negated, the union
  const T grad_inter = grad / clamped_union + negate(grad_union);
  const T grad_raw_w = clamp_min_backward(raw_w, zero, grad_inter * inter_h);
  const T grad_raw_h = clamp_min_backward(raw_h, zero, grad_inter * inter_w);

  const GradPair<T> g_right = minimum_backward(right1, right2, grad_raw_w);
  const GradPair<T> g_bottom = minimum_backward(bottom1, bottom2, grad_raw_h);
  const GradPair<T> g_left = maximum_backward(b.x1, b.x2, negate(grad_raw_w));
  const GradPair<T> g_top = maximum_backward(b.y1, b.y2, negate(grad_raw_h));

  BoxPair<T> g;
  g.x1 = g_right.first + g_left.first;
  g.x2 = g_right.second + g_left.second;
  g.y1 = g_bottom.first + g_top.first;
  g.y2 = g_bottom.second + g_top.second;
  g.w1 = g_right.first + grad_union * b.h1;
  g.h1 = g_bottom.first + grad_union * b.w1;
  g.w2 = g_right.second + grad_union * b.h2;
  g.h2 = g_bottom.second + grad_union * b.w2;
  return g;
}

}  // namespace CPU_CAPABILITY
}  // namespace torchops
