#pragma once
// What the CPU entry points (super_*/..._cpu.cpp) share around TensorIterator.
#include <ATen/EmptyTensor.h>
#include <ATen/Parallel.h>
#include <ATen/TensorIterator.h>
#include <ATen/ops/empty.h>

#include <cstdint>

namespace torchops {

// Whether a loop over n elements may run on this thread without
// TensorIterator (cpu::elementwise_kernel_contiguous): where TensorIterator
// would not split it over threads either (fewer elements than its grain size,
// or one thread), the two compute the same in the same order.
inline bool serial_without_iterator(int64_t n, int64_t grain_size = at::internal::GRAIN_SIZE) {
  return n < grain_size || at::get_num_threads() == 1;
}

// A fresh contiguous tensor for a kernel's output. On the CPU it is made as
// ATen's own CPU kernels make theirs, without the trip through the dispatcher
// that at::empty takes (BackendSelect, then the CPU kernel: some 1k of the
// ~5k instructions of a small allocation); elsewhere it is at::empty.
inline at::Tensor empty_output(at::IntArrayRef shape, const at::TensorOptions& options) {
  if (options.device().is_cpu() && !options.pinned_memory()) {
    return at::detail::empty_cpu(shape, c10::typeMetaToScalarType(options.dtype()));
  }
  return at::empty(shape, options);
}

}  // namespace torchops
