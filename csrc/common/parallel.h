#pragma once
// parallel_for for kernels that split their own work (the others are threaded
// by TensorIterator). at::parallel_for is a header template whose threaded body
// (OpenMP in torch's Linux builds) is compiled only under -fopenmp; this library
// is built without it (it links libtorch, not an OpenMP runtime), so called from
// here at::parallel_for would run the whole range on the calling thread. This
// one runs the at::parallel_for compiled inside libtorch (common/parallel.cpp):
// ATen's intra-op threads, chunks and grain rule, torch.set_num_threads
// respected, serial inside a parallel region.
#include <cstdint>

namespace torchops {
namespace detail {
void parallel_for(int64_t begin, int64_t end, int64_t grain_size, void (*chunk)(int64_t, int64_t, void*), void* ctx);
}  // namespace detail

// f(begin, end) over chunks of [begin, end), each at least grain_size long
// unless the range is shorter, as at::parallel_for. f must not throw.
template <typename F>
void parallel_for(int64_t begin, int64_t end, int64_t grain_size, const F& f) {
  const auto chunk = [](int64_t chunk_begin, int64_t chunk_end, void* ctx) {
    (*static_cast<const F*>(ctx))(chunk_begin, chunk_end);
  };
  detail::parallel_for(begin, end, grain_size, chunk, const_cast<F*>(&f));
}

}  // namespace torchops
