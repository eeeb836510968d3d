#pragma once
// at::vec::Vectorized overloads of the helpers in elementwise.h. Comparisons of
// Vectorized values give all-ones/all-zeros lane masks; select() blends on them.
#include <ATen/cpu/vec/vec.h>

namespace torchops {

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
template <typename T>
inline at::vec::Vectorized<T> sigmoid(const at::vec::Vectorized<T>& x) {
  return (at::vec::Vectorized<T>(T(1)) + x.neg().exp_u20()).reciprocal();
}

template <typename T>
inline at::vec::Vectorized<T> tanh_(const at::vec::Vectorized<T>& x) {
  return x.tanh();
}

}  // namespace torchops
