// CPU loops of the box IoU family (every op declared in box_iou.h).
//
// Row views: a [..., 4] box tensor is read through its column-0 view, which
// TensorIterator broadcasts, orders and splits over threads like any operand;
// the other three numbers of a box sit at the column stride from it. Each
// chunk gathers Vectorized::size() boxes into column registers (any row and
// column strides, broadcast included: nothing is copied beforehand), runs the
// formula of box_iou_math.h on vectors, and stores the result; the last
// boxes of a chunk run the same formula on scalars. Forwards over the
// pairwise layout have their own loop, in cpu/box_pairwise_kernel.cpp; the
// chunk kernels run one chunk without TensorIterator (same-shape contiguous
// boxes on one thread).
//
// Compiled once per CPU capability (torchops/_build.py); the entry points,
// checks and registration are in super_iou/box_iou_cpu.cpp, built for any x86-64.
#include "super_iou/cpu/box_iou_kernel.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cpu/vec/vec.h>

#include "super_iou/box_iou.h"

namespace torchops {
inline namespace CPU_CAPABILITY {
namespace {

template <typename scalar_t>
struct BoxColumns {
  using opmath_t = at::opmath_type<scalar_t>;
  using Vec = at::vec::Vectorized<opmath_t>;
  static constexpr int kLanes = Vec::size();

  // kLanes boxes starting at `ptr`, `stride` bytes apart, as four column vectors.
  static Box4<Vec> gather(const char* ptr, int64_t stride, int64_t column_stride) {
    alignas(64) opmath_t columns[4][kLanes];
    for (int k = 0; k < kLanes; ++k) {
      for (int c = 0; c < 4; ++c) {
        columns[c][k] = static_cast<opmath_t>(*reinterpret_cast<const scalar_t*>(ptr + k * stride + c * column_stride));
      }
    }
    return {{Vec::loadu(columns[0]), Vec::loadu(columns[1]), Vec::loadu(columns[2]), Vec::loadu(columns[3])}};
  }

  static Box4<opmath_t> load(const char* ptr, int64_t column_stride) {
    Box4<opmath_t> b;
    for (int c = 0; c < 4; ++c) {
      b.v[c] = static_cast<opmath_t>(*reinterpret_cast<const scalar_t*>(ptr + c * column_stride));
    }
    return b;
  }

  // Four column vectors back into kLanes rows of four (a contiguous [n, 4] gradient).
  static void scatter(char* ptr, int64_t stride, const Box4<Vec>& b) {
    alignas(64) opmath_t columns[4][kLanes];
    for (int c = 0; c < 4; ++c) {
      b.v[c].store(columns[c]);
    }
    for (int k = 0; k < kLanes; ++k) {
      for (int c = 0; c < 4; ++c) {
        reinterpret_cast<scalar_t*>(ptr + k * stride)[c] = static_cast<scalar_t>(columns[c][k]);
      }
    }
  }

  static void store(char* ptr, const Box4<opmath_t>& b) {
    for (int c = 0; c < 4; ++c) {
      reinterpret_cast<scalar_t*>(ptr)[c] = static_cast<scalar_t>(b.v[c]);
    }
  }
};

// flatten: everything the loop bodies call is inlined. With the vector
// capabilities GCC's own heuristics left box_geometry out of line in them
// (AVX2: ~10% more instructions in the backward than the lambdas they
// replace); at DEFAULT, whose vectors are arrays, flattening costs 7-20%.
#if defined(CPU_CAPABILITY_DEFAULT)
#define TORCHOPS_BOX_CHUNK
#else
#define TORCHOPS_BOX_CHUNK __attribute__((flatten))
#endif

// The 1-d loop body of op I's forward over n pairs: operands the output, then
// the column-0 views of both box tensors. TensorIterator calls it per chunk;
// the chunk kernels call it once.
template <size_t I, typename scalar_t>
TORCHOPS_BOX_CHUNK void forward_chunk(char** data, const int64_t* strides, int64_t n, const BoxLoopArgs& args) {
  using Columns = BoxColumns<scalar_t>;
  using opmath_t = typename Columns::opmath_t;
  using Vec = typename Columns::Vec;
  const BoxParams<opmath_t> params{args.format, static_cast<opmath_t>(args.eps), static_cast<opmath_t>(args.eps_alpha)};
  const BoxParams<Vec> vparams{args.format, Vec(params.eps), Vec(params.eps_alpha)};
  const int64_t cs1 = args.column_stride1, cs2 = args.column_stride2;
  int64_t i = 0;
  if (strides[0] == sizeof(opmath_t)) {
    for (; i + Columns::kLanes <= n; i += Columns::kLanes) {
      const auto a = Columns::gather(data[1] + i * strides[1], strides[1], cs1);
      const auto b = Columns::gather(data[2] + i * strides[2], strides[2], cs2);
      box_pair_value<kBoxOps[I].kind, kBoxOps[I].loss>(a, b, vparams).store(data[0] + i * strides[0]);
    }
  }
  for (; i < n; ++i) {
    const auto a = Columns::load(data[1] + i * strides[1], cs1);
    const auto b = Columns::load(data[2] + i * strides[2], cs2);
    *reinterpret_cast<opmath_t*>(data[0] + i * strides[0]) =
        box_pair_value<kBoxOps[I].kind, kBoxOps[I].loss>(a, b, params);
  }
}

// The same for the backward: operands the column-0 views of both [..., 4]
// gradients, the upstream gradient, then the two box views.
template <size_t I, typename scalar_t>
TORCHOPS_BOX_CHUNK void backward_chunk(char** data, const int64_t* strides, int64_t n, const BoxLoopArgs& args) {
  using Columns = BoxColumns<scalar_t>;
  using opmath_t = typename Columns::opmath_t;
  using Vec = typename Columns::Vec;
  const BoxParams<opmath_t> params{args.format, static_cast<opmath_t>(args.eps), static_cast<opmath_t>(args.eps_alpha)};
  const BoxParams<Vec> vparams{args.format, Vec(params.eps), Vec(params.eps_alpha)};
  const int64_t cs1 = args.column_stride1, cs2 = args.column_stride2;
  constexpr int64_t kRow = 4 * sizeof(scalar_t);
  int64_t i = 0;
  if (strides[0] == kRow && strides[1] == kRow) {
    for (; i + Columns::kLanes <= n; i += Columns::kLanes) {
      Vec g;
      if (strides[2] == 0) {
        g = Vec(*reinterpret_cast<const opmath_t*>(data[2]));
      } else {
        alignas(64) opmath_t values[Columns::kLanes];
        for (int k = 0; k < Columns::kLanes; ++k) {
          values[k] = *reinterpret_cast<const opmath_t*>(data[2] + (i + k) * strides[2]);
        }
        g = Vec::loadu(values);
      }
      const auto a = Columns::gather(data[3] + i * strides[3], strides[3], cs1);
      const auto b = Columns::gather(data[4] + i * strides[4], strides[4], cs2);
      const auto grads = box_pair_backward<kBoxOps[I].kind, kBoxOps[I].loss>(a, b, vparams, g);
      Columns::scatter(data[0] + i * kRow, kRow, grads.a);
      Columns::scatter(data[1] + i * kRow, kRow, grads.b);
    }
  }
  for (; i < n; ++i) {
    const opmath_t g = *reinterpret_cast<const opmath_t*>(data[2] + i * strides[2]);
    const auto a = Columns::load(data[3] + i * strides[3], cs1);
    const auto b = Columns::load(data[4] + i * strides[4], cs2);
    const auto grads = box_pair_backward<kBoxOps[I].kind, kBoxOps[I].loss>(a, b, params, g);
    Columns::store(data[0] + i * strides[0], grads.a);
    Columns::store(data[1] + i * strides[1], grads.b);
  }
}

// Calls f(chunk) with op I's forward_chunk (or backward_chunk) for boxes of dtype `dtype`.
template <size_t I, bool kBackward, typename F>
void with_chunk(at::ScalarType dtype, const F& f) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, kBoxOps[I].name, [&] {
    f(kBackward ? &backward_chunk<I, scalar_t> : &forward_chunk<I, scalar_t>);
  });
}

template <size_t I>
void box_op_loop(at::TensorIteratorBase& iter, const BoxLoopArgs& args) {
  with_chunk<I, false>(iter.input_dtype(0), [&](auto chunk) {
    iter.for_each([&](char** data, const int64_t* strides, int64_t n) { chunk(data, strides, n, args); }, kBoxGrainSize);
  });
}

template <size_t I>
void box_op_backward_loop(at::TensorIteratorBase& iter, const BoxLoopArgs& args) {
  with_chunk<I, true>(iter.input_dtype(1), [&](auto chunk) {
    iter.for_each([&](char** data, const int64_t* strides, int64_t n) { chunk(data, strides, n, args); }, kBoxGrainSize);
  });
}

// The loop of op kBoxOps[op].
void box_op_kernel(at::TensorIteratorBase& iter, size_t op, const BoxLoopArgs& args) {
  for_each_box_op([&](auto index) {
    if (decltype(index)::value == op) {
      box_op_loop<decltype(index)::value>(iter, args);
    }
  });
}

void box_op_backward_kernel(at::TensorIteratorBase& iter, size_t op, const BoxLoopArgs& args) {
  for_each_box_op([&](auto index) {
    if (decltype(index)::value == op) {
      box_op_backward_loop<decltype(index)::value>(iter, args);
    }
  });
}

void box_op_chunk_kernel(
    char** data, const int64_t* strides, int64_t n, at::ScalarType dtype, size_t op, const BoxLoopArgs& args) {
  for_each_box_op([&](auto index) {
    if (decltype(index)::value == op) {
      with_chunk<decltype(index)::value, false>(dtype, [&](auto chunk) { chunk(data, strides, n, args); });
    }
  });
}

void box_op_backward_chunk_kernel(
    char** data, const int64_t* strides, int64_t n, at::ScalarType dtype, size_t op, const BoxLoopArgs& args) {
  for_each_box_op([&](auto index) {
    if (decltype(index)::value == op) {
      with_chunk<decltype(index)::value, true>(dtype, [&](auto chunk) { chunk(data, strides, n, args); });
    }
  });
}

}  // namespace
}  // namespace CPU_CAPABILITY
}  // namespace torchops

namespace at::native {
ALSO_REGISTER_AVX512_DISPATCH(torchops_box_op_stub, &torchops::box_op_kernel)
ALSO_REGISTER_AVX512_DISPATCH(torchops_box_op_backward_stub, &torchops::box_op_backward_kernel)
ALSO_REGISTER_AVX512_DISPATCH(torchops_box_op_chunk_stub, &torchops::box_op_chunk_kernel)
ALSO_REGISTER_AVX512_DISPATCH(torchops_box_op_backward_chunk_stub, &torchops::box_op_backward_chunk_kernel)
}  // namespace at::native
