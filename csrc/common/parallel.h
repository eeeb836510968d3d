#pragma once
// parallel_for for kernels that split their own work (the others are threaded
// by TensorIterator). at::parallel_for is a header template whose threaded body
// (OpenMP in torch's Linux builds) is compiled only under -fopenmp; this library
// is built without it (it links libtorch, not an OpenMP runtime), so called from
// here at::parallel_for runs the whole range on the calling thread.
// torch_parallel_for, torch's stable C entry (torch >= 2.10) to the
// at::parallel_for compiled inside libtorch, runs it on ATen's intra-op threads:
// the same chunks and grain rule, torch.set_num_threads respected, serial inside
// a parallel region.
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <cstdint>

#if __has_include(<torch/csrc/stable/c/shim.h>)
#include <torch/csrc/stable/c/shim.h>
#endif

namespace torchops {

// f(begin, end) over chunks of [begin, end), at least grain_size long, as
// at::parallel_for. f must not throw.
template <typename F>
void parallel_for(int64_t begin, int64_t end, int64_t grain_size, const F& f) {
#if defined(TORCH_VERSION_2_10_0) && TORCH_FEATURE_VERSION >= TORCH_VERSION_2_10_0
  if (begin >= end) {
    return;
  }
  const auto chunk = [](int64_t chunk_begin, int64_t chunk_end, void* ctx) {
    (*static_cast<const F*>(ctx))(chunk_begin, chunk_end);
  };
  const auto error = torch_parallel_for(begin, end, grain_size, chunk, const_cast<F*>(&f));
  TORCH_CHECK(error == AOTI_TORCH_SUCCESS, "torch_parallel_for failed");
#else
  at::parallel_for(begin, end, grain_size, f);  // older torch: on this thread
#endif
}

}  // namespace torchops
