#pragma once
// The fast path of the CUDA kernels: same-shape contiguous operands, read and
// written with 16-byte vector accesses in a grid-stride loop. Inputs may also
// be a single broadcast element (an upstream gradient of sum(), say).
// Everything else goes through TensorIterator's gpu_kernel.
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/macros/Macros.h>

#include <algorithm>
#include <cstdint>

namespace torchops {
namespace cuda {

constexpr int kThreads = 256;
// Work of more than this many waves of resident blocks gets a block per
// kThreads units (see launch_contiguous_elementwise).
constexpr int64_t kStrideWaves = 8;

template <typename T, int N>
struct Array {
  T data[N];
  C10_HOST_DEVICE T& operator[](int i) { return data[i]; }
  C10_HOST_DEVICE const T& operator[](int i) const { return data[i]; }
};

template <typename T, int N>
struct alignas(sizeof(T) * N) AlignedVector {
  T val[N];
};

// One access of sizeof(V) bytes. kStreaming: the data is read once; __ldcs
// marks it evict-first so it does not push reused data out of the caches.
template <int kBytes>
struct RawVector;
template <> struct RawVector<16> { using type = int4; };
template <> struct RawVector<8> { using type = int2; };
template <> struct RawVector<4> { using type = int; };
template <> struct RawVector<2> { using type = unsigned short; };

template <bool kStreaming, typename V>
__device__ __forceinline__ V load_vector(const V* p) {
  if constexpr (kStreaming) {
    using Raw = typename RawVector<sizeof(V)>::type;
    Raw raw = __ldcs(reinterpret_cast<const Raw*>(p));
    return *reinterpret_cast<V*>(&raw);
  } else {
    return *p;
  }
}

// `op` maps Array<opmath_t, NIn> to Array<opmath_t, NOut> for one element.
template <typename scalar_t, int kVec, int NOut, int NIn, typename Op>
__global__ void __launch_bounds__(kThreads) contiguous_elementwise_kernel(
    Array<const scalar_t*, NIn> in, uint32_t broadcast_mask, Array<scalar_t*, NOut> out,
    int64_t n, Op op) {
  using opmath_t = at::opmath_type<scalar_t>;
  using Vec = AlignedVector<scalar_t, kVec>;
  const int64_t n_vec = n / kVec;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;

  for (int64_t v = first; v < n_vec; v += step) {
    Vec loaded[NIn];
#pragma unroll
    for (int k = 0; k < NIn; ++k) {
      if ((broadcast_mask >> k) & 1u) {
#pragma unroll
        for (int j = 0; j < kVec; ++j) loaded[k].val[j] = in[k][0];
      } else {
        loaded[k] = reinterpret_cast<const Vec*>(in[k])[v];
      }
    }
    Vec stored[NOut];
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      Array<opmath_t, NIn> args;
#pragma unroll
      for (int k = 0; k < NIn; ++k) args[k] = static_cast<opmath_t>(loaded[k].val[j]);
      const Array<opmath_t, NOut> results = op(args);
#pragma unroll
      for (int o = 0; o < NOut; ++o) stored[o].val[j] = static_cast<scalar_t>(results[o]);
    }
#pragma unroll
    for (int o = 0; o < NOut; ++o) reinterpret_cast<Vec*>(out[o])[v] = stored[o];
  }

  // the last n % kVec elements
  for (int64_t i = n_vec * kVec + first; i < n; i += step) {
    Array<opmath_t, NIn> args;
#pragma unroll
    for (int k = 0; k < NIn; ++k) {
      args[k] = static_cast<opmath_t>(in[k][((broadcast_mask >> k) & 1u) ? 0 : i]);
    }
    const Array<opmath_t, NOut> results = op(args);
#pragma unroll
    for (int o = 0; o < NOut; ++o) out[o][i] = static_cast<scalar_t>(results[o]);
  }
}

inline bool is_aligned(const void* ptr, int bytes) {
  return reinterpret_cast<std::uintptr_t>(ptr) % bytes == 0;
}

// Launches the kernel above on the current stream: vector accesses when every
// pointer allows them and there is enough work for them to reach every SM
// (two blocks each), one element per access otherwise (ratio_iou's backward
// at 1e5 elements ran 98 blocks of 4-wide vectors on 132 SMs).
template <typename scalar_t, int NOut, int NIn, typename Op>
void launch_contiguous_elementwise(
    Array<const scalar_t*, NIn> in, uint32_t broadcast_mask, Array<scalar_t*, NOut> out,
    int64_t n, Op op) {
  if (n == 0) {
    return;
  }
  constexpr int kVec = 16 / sizeof(scalar_t);
  bool aligned = true;
  for (int k = 0; k < NIn; ++k) {
    aligned = aligned && (((broadcast_mask >> k) & 1u) || is_aligned(in[k], 16));
  }
  for (int o = 0; o < NOut; ++o) {
    aligned = aligned && is_aligned(out[o], 16);
  }
  const auto* props = at::cuda::getCurrentDeviceProperties();
  const bool vectorize = aligned && n / kVec >= 2 * static_cast<int64_t>(props->multiProcessorCount) * kThreads;
  const int64_t work = vectorize ? n / kVec : n;
  auto stream = at::cuda::getCurrentCUDAStream();
  // Up to a few waves of work: one wave of the blocks that fit at once (the
  // kernel's registers decide how many per SM), each striding over the work (a
  // second, partly empty wave cost more than the extra turns). Beyond that, a
  // block per kThreads units of work and no stride turns, as Inductor's
  // kernels launch: the striding wave ran 3-5% behind them at 1e7-1e8 elements
  // (benchmarks/results/cuda-h200/experiments/elementwise_grid.log).
  const auto launch = [&](auto kernel) {
    // per kernel, asked once (it only sizes the grid: a wrong guess on a second
    // GPU model in one process costs speed, not correctness)
    static const int blocks_per_sm = [&] {
      int fit = 0;
      C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&fit, kernel, kThreads, 0));
      return fit;
    }();
    const int64_t resident = static_cast<int64_t>(props->multiProcessorCount) * std::max(blocks_per_sm, 1);
    const int64_t needed = (work + kThreads - 1) / kThreads;
    const int64_t blocks = needed > kStrideWaves * resident ? std::min<int64_t>(needed, INT32_MAX) : std::min(needed, resident);
    kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(in, broadcast_mask, out, n, op);
  };
  if (vectorize) {
    launch(contiguous_elementwise_kernel<scalar_t, kVec, NOut, NIn, Op>);
  } else {
    launch(contiguous_elementwise_kernel<scalar_t, 1, NOut, NIn, Op>);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace cuda
}  // namespace torchops
