#pragma once
// at::vec::Vectorized overloads of the helpers in elementwise.h. Comparisons of
// Vectorized values give all-ones/all-zeros lane masks; select() blends on them.
#include <ATen/cpu/vec/vec.h>

#include <type_traits>

namespace torchops {
inline namespace CPU_CAPABILITY {  // see common/elementwise.h

template <typename T>
inline at::vec::Vectorized<T> select(
    const at::vec::Vectorized<T>& mask,
    const at::vec::Vectorized<T>& if_true,
    const at::vec::Vectorized<T>& if_false) {
  return at::vec::Vectorized<T>::blendv(if_false, if_true, mask);
}

template <typename T>
inline at::vec::Vectorized<T> negate(const at::vec::Vectorized<T>& a) {
  return a.neg();
}

template <typename T>
inline at::vec::Vectorized<T> maximum_nan(
    const at::vec::Vectorized<T>& a, const at::vec::Vectorized<T>& b) {
  return at::vec::maximum(a, b);  // propagates NaN like torch.maximum
}

template <typename T>
inline at::vec::Vectorized<T> minimum_nan(
    const at::vec::Vectorized<T>& a, const at::vec::Vectorized<T>& b) {
  return at::vec::minimum(a, b);  // propagates NaN like torch.minimum
}

// exp_u20 (error within 2 ulps, about half the cycles of Sleef's u10 exp):
// the sigmoid that follows adds and divides, so its result stays within a
// few ulps of torch.sigmoid's (the tests bound it against float64).
// exp_u20 clamps its argument to float's finite range with min/max, which drop
// NaN and keep exp(-x) finite where it overflows; torch.sigmoid gives NaN for
// NaN and exactly 0 once exp(-x) overflows (so that 0 * inf downstream is NaN
// as in eager). The two selects restore both.
template <typename T>
inline at::vec::Vectorized<T> sigmoid(const at::vec::Vectorized<T>& x) {
  using Vec = at::vec::Vectorized<T>;
  Vec y = (Vec(T(1)) + x.neg().exp_u20()).reciprocal();
  if constexpr (std::is_same_v<T, float>) {
    // below this, exp(-x) overflows float (ln(FLT_MAX) = 88.7228...)
    constexpr float kExpOverflow = -88.72283935546875f;
    y = Vec::blendv(y, Vec(T(0)), x < Vec(kExpOverflow));
  }
  return Vec::blendv(y, x, x != x);
}

// float: Sleef's tanh (what Vectorized::tanh and so torch.tanh run) costs
// about four exp_u20s and dominated the LSTM cell, whose five activations per
// unit are its whole cost while its data is in cache. This one is within
// 2.1 ulps of tanh for every float (Sleef's: 1), about 3.5x faster at AVX2 and
// AVX512 and 2.5x at DEFAULT:
// - |x| < 0.55: |x| + |x|^3 P(x^2), P a minimax fit of (tanh(x) - x) / x^3
//   (its relative error 1e-9, far below float's rounding);
// - |x| >= 0.55: 1 - 2 / (exp(2|x|) + 1) with exp_u20. From 0.55 on,
//   tanh >= 0.5, so the subtraction does not magnify exp's error.
// then x's sign. NaN stays NaN (the polynomial side); exp_u20 clamps its
// argument, so large |x| and inf give exactly 1. double keeps Sleef's.
inline at::vec::Vectorized<float> tanh_(const at::vec::Vectorized<float>& x) {
  using Vec = at::vec::Vectorized<float>;
  const Vec a = x.abs();
  const Vec a2 = a * a;
  Vec p = at::vec::fmadd(a2, Vec(-6.274222699e-03f), Vec(2.107166801e-02f));
  p = at::vec::fmadd(a2, p, Vec(-5.385230744e-02f));
  p = at::vec::fmadd(a2, p, Vec(1.333258612e-01f));
  p = at::vec::fmadd(a2, p, Vec(-3.333331756e-01f));
  const Vec near_zero = at::vec::fmadd(a * a2, p, a);
  const Vec far = Vec(1.f) - Vec(2.f) / ((a + a).exp_u20() + Vec(1.f));
  const Vec magnitude = Vec::blendv(near_zero, far, a >= Vec(0.55f));
  return magnitude | (x & Vec(-0.f));  // the sign of x, -0 included
}

template <typename T>
inline at::vec::Vectorized<T> tanh_(const at::vec::Vectorized<T>& x) {
  return x.tanh();
}

template <typename T>
inline at::vec::Vectorized<T> atan_(const at::vec::Vectorized<T>& x) {
  return x.atan();
}

template <typename T>
inline at::vec::Vectorized<T> mask_and(const at::vec::Vectorized<T>& a, const at::vec::Vectorized<T>& b) {
  return a & b;
}

}  // namespace CPU_CAPABILITY
}  // namespace torchops
