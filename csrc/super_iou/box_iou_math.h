#pragma once
// The box IoU family (IoU, GIoU, DIoU, CIoU) of one pair of axis-aligned
// boxes, forward and backward, written once for every kernel: T is float or
// double (CPU and CUDA) or at::vec::Vectorized of those (CPU).
//
// The eager reference (torchops/boxes.py) defines the function; this follows
// it operation by operation. Two conventions, both torchvision.ops':
// - metric (box_iou, generalized_box_iou, distance_box_iou, complete_box_iou
//   and their paired_ forms): intersection and enclosing sides clamped at 0,
//   no eps in IoU and GIoU, eps added to the enclosing diagonal (DIoU, CIoU);
// - loss (*_box_iou_loss): intersection only where both sides are positive,
//   unclamped enclosing box, eps added to the union, enclosing area and
//   diagonal; the value is 1 - metric.
// Where torchvision divides by zero (a zero union or enclosing area, a zero
// height in CIoU's aspect term) the reference divides by 1 instead and the
// gradient through that denominator is 0, so every value and gradient stays
// finite for finite boxes; NaN inputs still give NaN.
#include <c10/macros/Macros.h>

#include "common/elementwise.h"

namespace torchops {

enum class BoxKind : int { IoU = 0, GIoU = 1, DIoU = 2, CIoU = 3 };
// How the four numbers of a box are read (torchvision's fmt strings).
enum class BoxFormat : int { XYXY = 0, XYWH = 1, CXCYWH = 2 };

inline namespace CPU_CAPABILITY {  // see common/elementwise.h (the enums are the same everywhere)

// The parameters of one call: the eps of the IoU/GIoU/DIoU terms and the eps
// of CIoU's alpha (complete_box_iou_loss uses a fixed 1e-7 for the former and
// its own eps for the latter, as torchvision does).
template <typename T>
struct BoxParams {
  BoxFormat format;
  T eps;
  T eps_alpha;
};

template <typename T>
struct Box4 {
  T v[4];
};

// A box read in its format: corners, size and centre.
template <typename T>
struct BoxGeometry {
  T x1, y1, x2, y2, w, h, xc, yc;
};

template <typename T>
C10_HOST_DEVICE inline BoxGeometry<T> box_geometry(BoxFormat format, const Box4<T>& b) {
  const T half(0.5);
  BoxGeometry<T> g;
  if (format == BoxFormat::XYXY) {
    g.x1 = b.v[0], g.y1 = b.v[1], g.x2 = b.v[2], g.y2 = b.v[3];
    g.w = g.x2 - g.x1, g.h = g.y2 - g.y1;
    g.xc = (g.x1 + g.x2) * half, g.yc = (g.y1 + g.y2) * half;
  } else if (format == BoxFormat::XYWH) {
    g.x1 = b.v[0], g.y1 = b.v[1], g.w = b.v[2], g.h = b.v[3];
    g.x2 = g.x1 + g.w, g.y2 = g.y1 + g.h;
    g.xc = (g.x1 + g.x2) * half, g.yc = (g.y1 + g.y2) * half;
  } else {
    g.xc = b.v[0], g.yc = b.v[1], g.w = b.v[2], g.h = b.v[3];
    g.x1 = g.xc - half * g.w, g.y1 = g.yc - half * g.h;
    g.x2 = g.xc + half * g.w, g.y2 = g.yc + half * g.h;
  }
  return g;
}

// Gradients of the box's four numbers from those of its geometry (box_geometry
// backwards).
template <typename T>
C10_HOST_DEVICE inline Box4<T> box_geometry_backward(BoxFormat format, BoxGeometry<T> g) {
  const T half(0.5);
  if (format == BoxFormat::XYXY) {
    // w = x2 - x1, xc = (x1 + x2) / 2
    return {{g.x1 - g.w + g.xc * half, g.y1 - g.h + g.yc * half,
             g.x2 + g.w + g.xc * half, g.y2 + g.h + g.yc * half}};
  }
  if (format == BoxFormat::XYWH) {
    // xc = (x1 + x2) / 2, then x2 = x1 + w
    const T gx2 = g.x2 + g.xc * half, gy2 = g.y2 + g.yc * half;
    return {{g.x1 + g.xc * half + gx2, g.y1 + g.yc * half + gy2, g.w + gx2, g.h + gy2}};
  }
  // x1 = xc - w / 2, x2 = xc + w / 2
  return {{g.xc + g.x1 + g.x2, g.yc + g.y1 + g.y2, g.w + (g.x2 - g.x1) * half, g.h + (g.y2 - g.y1) * half}};
}

// d / (d == 0 ? 1 : d): the reference's guarded denominator.
template <typename T>
C10_HOST_DEVICE inline T guarded(T d) {
  return select(d == T(0), T(1), d);
}

// atan(w / h), and where h == 0 its limit (+-pi/2, 0 for w == 0) with no
// gradient: torchvision's atan(w / h) there has a NaN gradient (and is NaN at
// w == h == 0).
// One atan: w / h is the reference's quotient where h != 0 and +-inf (atan:
// +-pi/2, its limit) where h == 0 but w != 0; only 0 / 0 is replaced.
// The quotient atan is taken of: w / h, or w * (1 / h) from the height's
// reciprocal (the backward's, which needs 1 / h too).
template <typename T>
C10_HOST_DEVICE inline T aspect_ratio(T w, T h) {
  const T zero(0);
  return select((w == zero) & (h == zero), zero, w / h);
}
template <typename T>
C10_HOST_DEVICE inline T aspect_ratio(T w, T h, T h_reciprocal) {
  const T zero(0);
  return select((w == zero) & (h == zero), zero, w * h_reciprocal);
}

// From aspect_ratio(w, h) and 1 / h (reused): where h != 0 the ratio is the
// backward's w / guarded(h); where h == 0 that is w / 1.
template <typename T>
C10_HOST_DEVICE inline GradPair<T> aspect_angle_backward(T w, T h, T ratio, T h_reciprocal, T grad) {
  // in autograd's order: the where masks first, then atan's and div's
  // derivatives (so a NaN w or h still gives NaN where eager's does)
  const T zero(0), one(1);
  const T guarded_reciprocal = select(h == zero, one, h_reciprocal);
  const T q = select(h == zero, w, ratio);
  const T gq = select(h == zero, zero, grad) / (one + q * q);
  return {gq * guarded_reciprocal, select(h == zero, zero, negate(gq) * (q * guarded_reciprocal))};
}

// 4 / pi^2, CIoU's aspect weight.
template <typename T>
C10_HOST_DEVICE inline T aspect_weight() {
  return T(0.40528473456935108578);
}

// Everything the value and its gradient need, computed once.
template <BoxKind kind, bool loss, typename T>
struct BoxPairTerms {
  BoxGeometry<T> a, b;
  T inter_w_raw, inter_h_raw, inter_w, inter_h, inter, union_area, union_denominator, iou;
  T enclose_w_raw, enclose_h_raw, enclose_w, enclose_h;
  T enclose_area, enclose_denominator;  // GIoU
  T rho2, diagonal2;                    // DIoU, CIoU
  T penalty;                            // GIoU, DIoU, CIoU (before CIoU's alpha v)
  // 1 / each denominator, where the terms are computed for the backward
  // (with_reciprocals): its derivatives need them, and the quotients are then
  // products with them, one division per denominator
  T union_reciprocal, enclose_reciprocal, diagonal2_reciprocal, height_reciprocal_a, height_reciprocal_b;
  T ratio_a, ratio_b, angle_a, angle_b, v, alpha;  // CIoU
  T value;
};

// From both boxes' geometry (box_geometry): the pairwise kernels read each
// box once per tile and reuse its geometry for every pair it is in.
template <BoxKind kind, bool loss, bool with_reciprocals = false, typename T>
C10_HOST_DEVICE inline BoxPairTerms<kind, loss, T> box_pair_terms(
    const BoxGeometry<T>& geometry_a, const BoxGeometry<T>& geometry_b, const BoxParams<T>& p) {
  const T zero(0), one(1);
  BoxPairTerms<kind, loss, T> t;
  t.a = geometry_a;
  t.b = geometry_b;
  const auto& a = t.a;
  const auto& b = t.b;
  t.inter_w_raw = minimum_nan(a.x2, b.x2) - maximum_nan(a.x1, b.x1);
  t.inter_h_raw = minimum_nan(a.y2, b.y2) - maximum_nan(a.y1, b.y1);
  if constexpr (loss) {
    // torchvision's losses: the product where both sides are positive, else 0
    t.inter = select(mask_and(t.inter_w_raw > zero, t.inter_h_raw > zero), t.inter_w_raw * t.inter_h_raw, zero);
  } else {
    t.inter_w = clamp_min_nan(t.inter_w_raw, zero);
    t.inter_h = clamp_min_nan(t.inter_h_raw, zero);
    t.inter = t.inter_w * t.inter_h;
  }
  t.union_area = a.w * a.h + b.w * b.h - t.inter;
  t.union_denominator = guarded(loss ? t.union_area + p.eps : t.union_area);
  if constexpr (with_reciprocals) {
    t.union_reciprocal = one / t.union_denominator;
    t.iou = t.inter * t.union_reciprocal;
  } else {
    t.iou = divide_zero_fast(t.inter, t.union_denominator);
  }
  t.penalty = zero;  // metric = iou - penalty (CIoU's alpha v comes last)
  if constexpr (kind != BoxKind::IoU) {
    t.enclose_w_raw = maximum_nan(a.x2, b.x2) - minimum_nan(a.x1, b.x1);
    t.enclose_h_raw = maximum_nan(a.y2, b.y2) - minimum_nan(a.y1, b.y1);
    t.enclose_w = loss ? t.enclose_w_raw : clamp_min_nan(t.enclose_w_raw, zero);
    t.enclose_h = loss ? t.enclose_h_raw : clamp_min_nan(t.enclose_h_raw, zero);
  }
  if constexpr (kind == BoxKind::GIoU) {
    t.enclose_area = t.enclose_w * t.enclose_h;
    t.enclose_denominator = guarded(loss ? t.enclose_area + p.eps : t.enclose_area);
    if constexpr (with_reciprocals) {
      t.enclose_reciprocal = one / t.enclose_denominator;
      t.penalty = (t.enclose_area - t.union_area) * t.enclose_reciprocal;
    } else {
      t.penalty = (t.enclose_area - t.union_area) / t.enclose_denominator;
    }
  }
  if constexpr (kind == BoxKind::DIoU || kind == BoxKind::CIoU) {
    t.diagonal2 = guarded(t.enclose_w * t.enclose_w + t.enclose_h * t.enclose_h + p.eps);
    const T dx = a.xc - b.xc, dy = a.yc - b.yc;
    t.rho2 = dx * dx + dy * dy;
    if constexpr (with_reciprocals) {
      t.diagonal2_reciprocal = one / t.diagonal2;
      t.penalty = t.rho2 * t.diagonal2_reciprocal;
    } else {
      t.penalty = t.rho2 / t.diagonal2;
    }
  }
  if constexpr (loss) {
    t.value = kind == BoxKind::GIoU ? one - (t.iou - t.penalty) : one - t.iou + t.penalty;
  } else {
    t.value = t.iou - t.penalty;
  }
  if constexpr (kind == BoxKind::CIoU) {
    // torchvision adds alpha v last: diou - alpha v, diou_loss + alpha v
    if constexpr (with_reciprocals) {
      t.height_reciprocal_a = one / a.h;
      t.height_reciprocal_b = one / b.h;
      t.ratio_a = aspect_ratio(a.w, a.h, t.height_reciprocal_a);
      t.ratio_b = aspect_ratio(b.w, b.h, t.height_reciprocal_b);
    } else {
      t.ratio_a = aspect_ratio(a.w, a.h);
      t.ratio_b = aspect_ratio(b.w, b.h);
    }
    t.angle_a = atan_(t.ratio_a);
    t.angle_b = atan_(t.ratio_b);
    const T d = t.angle_a - t.angle_b;
    t.v = aspect_weight<T>() * (d * d);
    t.alpha = t.v / guarded(one - t.iou + t.v + p.eps_alpha);  // no gradient (torch.no_grad in torchvision)
    t.value = loss ? t.value + t.alpha * t.v : t.value - t.alpha * t.v;
  }
  return t;
}

template <BoxKind kind, bool loss, bool with_reciprocals = false, typename T>
C10_HOST_DEVICE inline BoxPairTerms<kind, loss, T> box_pair_terms(
    const Box4<T>& box_a, const Box4<T>& box_b, const BoxParams<T>& p) {
  return box_pair_terms<kind, loss, with_reciprocals>(box_geometry(p.format, box_a), box_geometry(p.format, box_b), p);
}

template <BoxKind kind, bool loss, typename T>
C10_HOST_DEVICE inline T box_pair_value(const Box4<T>& a, const Box4<T>& b, const BoxParams<T>& p) {
  return box_pair_terms<kind, loss>(a, b, p).value;
}

template <BoxKind kind, bool loss, typename T>
C10_HOST_DEVICE inline T box_pair_value(const BoxGeometry<T>& a, const BoxGeometry<T>& b, const BoxParams<T>& p) {
  return box_pair_terms<kind, loss>(a, b, p).value;
}

template <typename T>
struct BoxPairGrad {
  Box4<T> a, b;
};

// Gradients of both boxes' four numbers for an upstream gradient `grad`,
// reverse mode through box_pair_terms (intermediates recomputed: cheaper than
// writing and re-reading them).
template <BoxKind kind, bool loss, typename T>
C10_HOST_DEVICE inline BoxPairGrad<T> box_pair_backward(
    const Box4<T>& box_a, const Box4<T>& box_b, const BoxParams<T>& p, T grad) {
  const T zero(0), two(2);
  const auto t = box_pair_terms<kind, loss, true>(box_a, box_b, p);
  const auto& a = t.a;
  const auto& b = t.b;
  BoxGeometry<T> ga{zero, zero, zero, zero, zero, zero, zero, zero};
  BoxGeometry<T> gb = ga;

  // value = iou - penalty (metric) or 1 - iou + penalty (loss)
  const T g_iou = loss ? negate(grad) : grad;
  const T g_penalty = negate(g_iou);
  T g_union = zero;

  if constexpr (kind == BoxKind::GIoU) {
    // penalty = (C - U) / guarded(C [+ eps]): d/dnumerator = 1 / denominator,
    // d/ddenominator = -quotient / denominator
    const T g_quotient = g_penalty * t.enclose_reciprocal;
    const T c_plus = loss ? t.enclose_area + p.eps : t.enclose_area;
    const T g_denominator = select(c_plus == zero, zero, negate(g_penalty) * (t.penalty * t.enclose_reciprocal));
    const T g_area = g_quotient + g_denominator;
    g_union = g_union - g_quotient;
    T g_w = g_area * t.enclose_h, g_h = g_area * t.enclose_w;
    if constexpr (!loss) {
      g_w = clamp_min_backward(t.enclose_w_raw, zero, g_w);
      g_h = clamp_min_backward(t.enclose_h_raw, zero, g_h);
    }
    const GradPair<T> gx2 = maximum_backward(a.x2, b.x2, g_w), gx1 = minimum_backward(a.x1, b.x1, negate(g_w));
    const GradPair<T> gy2 = maximum_backward(a.y2, b.y2, g_h), gy1 = minimum_backward(a.y1, b.y1, negate(g_h));
    ga.x2 = ga.x2 + gx2.first, gb.x2 = gb.x2 + gx2.second, ga.x1 = ga.x1 + gx1.first, gb.x1 = gb.x1 + gx1.second;
    ga.y2 = ga.y2 + gy2.first, gb.y2 = gb.y2 + gy2.second, ga.y1 = ga.y1 + gy1.first, gb.y1 = gb.y1 + gy1.second;
  }
  if constexpr (kind == BoxKind::DIoU || kind == BoxKind::CIoU) {
    // rho2 / guarded(cw^2 + ch^2 + eps)
    const T g_rho2 = g_penalty * t.diagonal2_reciprocal;
    const T c2 = t.enclose_w * t.enclose_w + t.enclose_h * t.enclose_h + p.eps;
    const T g_c2 = select(c2 == zero, zero, negate(g_penalty) * (t.penalty * t.diagonal2_reciprocal));
    const T dx = a.xc - b.xc, dy = a.yc - b.yc;
    const T g_dx = g_rho2 * (two * dx), g_dy = g_rho2 * (two * dy);
    ga.xc = ga.xc + g_dx, gb.xc = gb.xc - g_dx, ga.yc = ga.yc + g_dy, gb.yc = gb.yc - g_dy;
    T g_w = g_c2 * (two * t.enclose_w), g_h = g_c2 * (two * t.enclose_h);
    if constexpr (!loss) {
      g_w = clamp_min_backward(t.enclose_w_raw, zero, g_w);
      g_h = clamp_min_backward(t.enclose_h_raw, zero, g_h);
    }
    const GradPair<T> gx2 = maximum_backward(a.x2, b.x2, g_w), gx1 = minimum_backward(a.x1, b.x1, negate(g_w));
    const GradPair<T> gy2 = maximum_backward(a.y2, b.y2, g_h), gy1 = minimum_backward(a.y1, b.y1, negate(g_h));
    ga.x2 = ga.x2 + gx2.first, gb.x2 = gb.x2 + gx2.second, ga.x1 = ga.x1 + gx1.first, gb.x1 = gb.x1 + gx1.second;
    ga.y2 = ga.y2 + gy2.first, gb.y2 = gb.y2 + gy2.second, ga.y1 = ga.y1 + gy1.first, gb.y1 = gb.y1 + gy1.second;
  }
  if constexpr (kind == BoxKind::CIoU) {
    // alpha * v with alpha constant; v = k (angle_a - angle_b)^2
    const T g_d = g_penalty * t.alpha * (aspect_weight<T>() * (two * (t.angle_a - t.angle_b)));
    const GradPair<T> g_angle_a = aspect_angle_backward(a.w, a.h, t.ratio_a, t.height_reciprocal_a, g_d);
    const GradPair<T> g_angle_b = aspect_angle_backward(b.w, b.h, t.ratio_b, t.height_reciprocal_b, negate(g_d));
    ga.w = ga.w + g_angle_a.first, ga.h = ga.h + g_angle_a.second;
    gb.w = gb.w + g_angle_b.first, gb.h = gb.h + g_angle_b.second;
  }

  // iou = inter / guarded(U [+ eps])
  T g_inter = g_iou * t.union_reciprocal;
  const T u_plus = loss ? t.union_area + p.eps : t.union_area;
  g_union = g_union + select(u_plus == zero, zero, negate(g_iou) * (t.iou * t.union_reciprocal));
  // U = wa ha + wb hb - inter
  ga.w = ga.w + g_union * a.h, ga.h = ga.h + g_union * a.w;
  gb.w = gb.w + g_union * b.h, gb.h = gb.h + g_union * b.w;
  g_inter = g_inter - g_union;
  T g_iw, g_ih;
  if constexpr (loss) {
    // the where's mask first, then the product's derivative (as autograd)
    const T g_product = select(mask_and(t.inter_w_raw > zero, t.inter_h_raw > zero), g_inter, zero);
    g_iw = g_product * t.inter_h_raw;
    g_ih = g_product * t.inter_w_raw;
  } else {
    g_iw = clamp_min_backward(t.inter_w_raw, zero, g_inter * t.inter_h);
    g_ih = clamp_min_backward(t.inter_h_raw, zero, g_inter * t.inter_w);
  }
  const GradPair<T> gx2 = minimum_backward(a.x2, b.x2, g_iw), gx1 = maximum_backward(a.x1, b.x1, negate(g_iw));
  const GradPair<T> gy2 = minimum_backward(a.y2, b.y2, g_ih), gy1 = maximum_backward(a.y1, b.y1, negate(g_ih));
  ga.x2 = ga.x2 + gx2.first, gb.x2 = gb.x2 + gx2.second, ga.x1 = ga.x1 + gx1.first, gb.x1 = gb.x1 + gx1.second;
  ga.y2 = ga.y2 + gy2.first, gb.y2 = gb.y2 + gy2.second, ga.y1 = ga.y1 + gy1.first, gb.y1 = gb.y1 + gy1.second;

  return {box_geometry_backward(p.format, ga), box_geometry_backward(p.format, gb)};
}

}  // namespace CPU_CAPABILITY
}  // namespace torchops
