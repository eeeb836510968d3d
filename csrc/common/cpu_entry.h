#pragma once
// What the CPU entry points (super_*/..._cpu.cpp) share around TensorIterator.
#include <ATen/Parallel.h>
#include <ATen/TensorIterator.h>

#include <cstdint>

namespace torchops {

// Whether a loop over n elements may run on this thread without
// TensorIterator (cpu::elementwise_kernel_contiguous): where TensorIterator
// would not split it over threads either (fewer elements than its grain size,
// or one thread), the two compute the same in the same order.
inline bool serial_without_iterator(int64_t n, int64_t grain_size = at::internal::GRAIN_SIZE) {
  return n < grain_size || at::get_num_threads() == 1;
}

}  // namespace torchops
