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
