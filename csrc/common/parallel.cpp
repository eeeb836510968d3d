// torchops::parallel_for (common/parallel.h) through torch_parallel_for, torch's
// stable C entry (torch >= 2.10) to the at::parallel_for compiled inside
// libtorch. Older torch: at::parallel_for as compiled here, on this thread.
#include "common/parallel.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#if __has_include(<torch/csrc/stable/c/shim.h>)
#include <torch/csrc/stable/c/shim.h>
#endif

namespace torchops::detail {

void parallel_for(int64_t begin, int64_t end, int64_t grain_size, void (*chunk)(int64_t, int64_t, void*), void* ctx) {
  if (begin >= end) {
    return;
  }
#if defined(TORCH_VERSION_2_10_0) && TORCH_FEATURE_VERSION >= TORCH_VERSION_2_10_0
  TORCH_CHECK(torch_parallel_for(begin, end, grain_size, chunk, ctx) == AOTI_TORCH_SUCCESS, "torch_parallel_for failed");
#else
  at::parallel_for(begin, end, grain_size, [&](int64_t b, int64_t e) { chunk(b, e, ctx); });
#endif
}

}  // namespace torchops::detail
