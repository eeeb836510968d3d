#pragma once
// Scalar building blocks shared by the CPU and CUDA kernels. Each one matches
// the eager PyTorch op it stands for, NaN behaviour and gradient tie rules
// included, so a fused kernel computes exactly what the eager expression does.
//
// The same names are overloaded for at::vec::Vectorized in vec_elementwise.h,
// so one templated formula serves scalar, vector and device code.
#include <c10/macros/Macros.h>

#include <cmath>
#include <limits>
#include <type_traits>

#if !defined(__CUDACC__)
#include "common/vec_elementwise.h"
#endif

// In inline namespace CPU_CAPABILITY, as at::vec is: the CPU kernel files are
// compiled once per capability (DEFAULT, AVX2, AVX512; see torchops/_build.py),
// and each copy must get its own instantiations of these helpers. Under one
// name, the linker would keep one copy for all (an AVX-512 one in code that
// runs on any CPU). Outside the kernel files CPU_CAPABILITY is not defined and
// the namespace is literally named so.
namespace torchops {
inline namespace CPU_CAPABILITY {

template <typename T>
C10_HOST_DEVICE inline T select(bool mask, T if_true, T if_false) {
  return mask ? if_true : if_false;
}

template <typename T>
C10_HOST_DEVICE inline T negate(T a) {
  return -a;
}

// On sm_80+ GPUs one instruction (max.NaN / min.NaN) does what the
// compare-and-select chains below do for float: the box kernels are bound by
// these chains otherwise. Results differ at most in the sign of a zero and in
// which NaN comes out, which no comparison (==, isnan) tells apart.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define TORCHOPS_NAN_MINMAX_F32 1
__device__ __forceinline__ float max_nan_f32(float a, float b) {
  float r;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
}
__device__ __forceinline__ float min_nan_f32(float a, float b) {
  float r;
  asm("min.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
}
#endif

// torch.maximum / torch.minimum: a NaN in either argument gives NaN.
template <typename T>
C10_HOST_DEVICE inline T maximum_nan(T a, T b) {
#ifdef TORCHOPS_NAN_MINMAX_F32
  if constexpr (std::is_same_v<T, float>) return max_nan_f32(a, b);
#endif
  return (a != a) ? a : ((b != b) ? b : (a > b ? a : b));
}

template <typename T>
C10_HOST_DEVICE inline T minimum_nan(T a, T b) {
#ifdef TORCHOPS_NAN_MINMAX_F32
  if constexpr (std::is_same_v<T, float>) return min_nan_f32(a, b);
#endif
  return (a != a) ? a : ((b != b) ? b : (a < b ? a : b));
}

// torch.clamp(x, min=lo): NaN stays NaN.
template <typename T>
C10_HOST_DEVICE inline T clamp_min_nan(T x, T lo) {
#ifdef TORCHOPS_NAN_MINMAX_F32
  if constexpr (std::is_same_v<T, float>) return max_nan_f32(x, lo);
#endif
  return select(x < lo, lo, x);
}

// torch.sigmoid and torch.tanh, computed as ATen computes them.
template <typename T>
C10_HOST_DEVICE inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <typename T>
C10_HOST_DEVICE inline T tanh_(T x) {
  return std::tanh(x);
}

template <typename T>
C10_HOST_DEVICE inline T atan_(T x) {
  return std::atan(x);
}

#ifdef __CUDA_ARCH__
// x, through a register move the compiler cannot see into: it keeps the
// caller's choice of x (left alone, it divides by the original numerator,
// since the quotient is discarded where it was replaced).
__device__ inline float opaque(float x) {
  float y;
  asm("mov.b32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
__device__ inline double opaque(double x) {
  double y;
  asm("mov.b64 %0, %1;" : "=d"(y) : "d"(x));
  return y;
}
#endif

// a / b. On the GPU a zero a is divided as 1 / b and the result replaced:
// IEEE division takes its slow path for a zero numerator, and a zero
// intersection (disjoint boxes, most pairs of an IoU matrix) is the common
// case there. Without a branch, so the compiler can interleave the divisions
// of neighbouring pairs. Same value as a / b (0 / 0 and 0 / NaN are NaN) but
// for the sign of a zero result.
template <typename T>
C10_HOST_DEVICE inline T divide_zero_fast(T a, T b) {
#ifdef __CUDA_ARCH__
  const bool zero = a == T(0);
  const T q = opaque(zero ? T(1) : a) / b;
  const T zero_over_b = b > T(0) || b < T(0) ? T(0) : std::numeric_limits<T>::quiet_NaN();
  return zero ? zero_over_b : q;
#else
  return a / b;
#endif
}

// Both masks true (comparisons of scalars give bool, of vectors lane masks).
C10_HOST_DEVICE inline bool mask_and(bool a, bool b) {
  return a && b;
}

// Their gradients in terms of the output y, as ATen's sigmoid_backward and
// tanh_backward write them.
template <typename T>
C10_HOST_DEVICE inline T sigmoid_backward(T grad, T y) {
  return grad * (T(1) - y) * y;
}

template <typename T>
C10_HOST_DEVICE inline T tanh_backward(T grad, T y) {
  return grad * (T(1) - y * y);
}

template <typename T>
struct GradPair {
  T first;
  T second;
};

// Gradient of torch.maximum(a, b), as autograd defines it: a tie splits the
// gradient in half; with a NaN both sides receive all of it.
template <typename T>
C10_HOST_DEVICE inline GradPair<T> maximum_backward(T a, T b, T grad) {
  const T zero(0);
  const T half_grad = grad * T(0.5);
  return {select(a == b, half_grad, select(a < b, zero, grad)),
          select(a == b, half_grad, select(a > b, zero, grad))};
}

// Gradient of torch.minimum(a, b): the mirror image of maximum_backward.
template <typename T>
C10_HOST_DEVICE inline GradPair<T> minimum_backward(T a, T b, T grad) {
  const T zero(0);
  const T half_grad = grad * T(0.5);
  return {select(a == b, half_grad, select(a > b, zero, grad)),
          select(a == b, half_grad, select(a < b, zero, grad))};
}

// Gradient of torch.clamp(x, min=lo): passes where x >= lo (ties pass), zero
// elsewhere and where x is NaN.
template <typename T>
C10_HOST_DEVICE inline T clamp_min_backward(T x, T lo, T grad) {
  return select(x >= lo, grad, T(0));
}

}  // namespace CPU_CAPABILITY
}  // namespace torchops
