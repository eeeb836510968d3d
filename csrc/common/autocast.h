#pragma once
// Helpers for the Autocast kernels: run an op with autocast switched off and
// its floating-point tensor arguments cast to one dtype.
#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

namespace torchops {

// The dtype autocast runs lower-precision ops in on `device` (float16 or bfloat16).
inline at::ScalarType autocast_lower_precision(c10::DeviceType device) {
  return at::autocast::get_autocast_dtype(device);
}

// Casts an eligible tensor (floating, not float64, on `device`) to `dtype`,
// reusing autocast's cache of casted weights.
inline at::Tensor autocast_to(const at::Tensor& t, at::ScalarType dtype, c10::DeviceType device) {
  return at::autocast::cached_cast(dtype, t, device);
}

// While alive, the autocast keys are skipped (the kernel below runs as usual).
using ExcludeAutocast = c10::impl::ExcludeDispatchKeyGuard;
inline constexpr c10::DispatchKeySet kAutocastKeys = c10::autocast_dispatch_keyset;

}  // namespace torchops
