// CPU loops of the box IoU family (every op declared in box_iou.h).
//
// Row views: a [..., 4] box tensor is read through its column-0 view, which
// TensorIterator broadcasts, orders and splits over threads like any operand;
// the other three numbers of a box sit at the column stride from it. Each
// chunk gathers Vectorized::size() boxes into column registers (any row and
// column strides, broadcast included: nothing is copied beforehand), runs the
// formula of box_iou_math.h on vectors, and stores the result; the last
// boxes of a chunk run the same formula on scalars.
//
// Pairwise layout ([..., N, 1, 4] x [..., 1, M, 4], detail::pairwise_layout):
// its own forward loop. boxes2 is converted once into four contiguous columns
// (opmath type), each box of boxes1 is broadcast into vectors, and an output
// row is computed with contiguous loads and stores, the same formula on vectors
// (scalars for the last M % Vectorized::size() columns).
//
// Compiled once per CPU capability (torchops/_build.py); the entry points,
// checks and registration are in super_iou/box_iou_cpu.cpp, built for any x86-64.
#include "super_iou/cpu/box_iou_kernel.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <vector>

#include "common/parallel.h"
#include "super_iou/box_iou.h"

namespace torchops {
inline namespace CPU_CAPABILITY {
namespace {

// Transcendental-heavy (CIoU's atan): fewer elements per thread than ATen's default.
constexpr int64_t kGrainSize = 4096;

// Pairwise layout: output elements per task (with the row views' kGrainSize for
// CIoU, whose elements cost several times more), and the longest stretch of one
// output row a task takes (a multiple of every vector width), so that a single
// long row (N = 1) still spreads over threads.
constexpr int64_t kPairwiseGrainSize = 32768;
constexpr int64_t kPairwiseBlock = 4096;

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

template <size_t I>
void box_op_loop(at::TensorIteratorBase& iter, const BoxLoopArgs& args) {
  constexpr BoxOpDecl decl = kBoxOps[I];
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.input_dtype(0), decl.name, [&] {
    using Columns = BoxColumns<scalar_t>;
    using opmath_t = typename Columns::opmath_t;
    using Vec = typename Columns::Vec;
    const BoxParams<opmath_t> params{args.format, static_cast<opmath_t>(args.eps), static_cast<opmath_t>(args.eps_alpha)};
    const BoxParams<Vec> vparams{args.format, Vec(params.eps), Vec(params.eps_alpha)};
    const int64_t cs1 = args.column_stride1, cs2 = args.column_stride2;
    iter.for_each(
        [&](char** data, const int64_t* strides, int64_t n) {
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
        },
        kGrainSize);
  });
}

template <size_t I>
void box_op_backward_loop(at::TensorIteratorBase& iter, const BoxLoopArgs& args) {
  constexpr BoxOpDecl decl = kBoxOps[I];
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.input_dtype(1), decl.name, [&] {
    using Columns = BoxColumns<scalar_t>;
    using opmath_t = typename Columns::opmath_t;
    using Vec = typename Columns::Vec;
    const BoxParams<opmath_t> params{args.format, static_cast<opmath_t>(args.eps), static_cast<opmath_t>(args.eps_alpha)};
    const BoxParams<Vec> vparams{args.format, Vec(params.eps), Vec(params.eps_alpha)};
    const int64_t cs1 = args.column_stride1, cs2 = args.column_stride2;
    constexpr int64_t kRow = 4 * sizeof(scalar_t);
    iter.for_each(
        [&](char** data, const int64_t* strides, int64_t n) {
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
        },
        kGrainSize);
  });
}

template <size_t I>
void box_pairwise_loop(const at::Tensor& out, const detail::PreparedBoxPair& p, const detail::PairwiseLayout& l) {
  constexpr BoxOpDecl decl = kBoxOps[I];
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.boxes1.scalar_type(), decl.name, [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    using Vec = at::vec::Vectorized<opmath_t>;
    constexpr int64_t kLanes = Vec::size();
    const BoxParams<opmath_t> params{p.format, static_cast<opmath_t>(p.eps), static_cast<opmath_t>(p.eps_alpha)};
    const BoxParams<Vec> vparams{p.format, Vec(params.eps), Vec(params.eps_alpha)};
    const scalar_t* boxes1 = p.boxes1.const_data_ptr<scalar_t>();
    const scalar_t* boxes2 = p.boxes2.const_data_ptr<scalar_t>();
    opmath_t* output = out.data_ptr<opmath_t>();
    const int64_t n = l.n, m = l.m;

    // boxes2 as columns, [batches2][4][m]: one batch where boxes2's is broadcast
    const int64_t batches2 = l.batch_stride2 == 0 ? 1 : l.batch;
    std::vector<opmath_t> columns(batches2 * 4 * m);
    parallel_for(0, batches2 * m, kPairwiseGrainSize / 4, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        const int64_t b = k / m, j = k % m;
        const scalar_t* box = boxes2 + b * l.batch_stride2 + j * l.row_stride2;
        for (int c = 0; c < 4; ++c) {
          columns[(b * 4 + c) * m + j] = static_cast<opmath_t>(box[c * l.column_stride2]);
        }
      }
    });

    // tasks: stretches of `block` columns of one output row
    const int64_t block = std::min(m, kPairwiseBlock);
    const int64_t blocks = (m + block - 1) / block;
    const int64_t grain_elements = kBoxOps[I].kind == BoxKind::CIoU ? kGrainSize : kPairwiseGrainSize;
    parallel_for(0, l.batch * n * blocks, std::max<int64_t>(1, grain_elements / block), [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t row = task / blocks;  // b * n + i
        const int64_t b = row / n, i = row % n;
        const int64_t j_end = std::min(m, (task % blocks + 1) * block);
        const scalar_t* box = boxes1 + b * l.batch_stride1 + i * l.row_stride1;
        Box4<opmath_t> a;
        for (int c = 0; c < 4; ++c) {
          a.v[c] = static_cast<opmath_t>(box[c * l.column_stride1]);
        }
        const Box4<Vec> va{{Vec(a.v[0]), Vec(a.v[1]), Vec(a.v[2]), Vec(a.v[3])}};
        const opmath_t* col = columns.data() + (batches2 == 1 ? 0 : b) * 4 * m;
        opmath_t* out_row = output + row * m;
        int64_t j = (task % blocks) * block;
        for (; j + kLanes <= j_end; j += kLanes) {
          const Box4<Vec> vb{{Vec::loadu(col + j), Vec::loadu(col + m + j), Vec::loadu(col + 2 * m + j),
                              Vec::loadu(col + 3 * m + j)}};
          box_pair_value<kBoxOps[I].kind, kBoxOps[I].loss>(va, vb, vparams).store(out_row + j);
        }
        for (; j < j_end; ++j) {
          const Box4<opmath_t> sb{{col[j], col[m + j], col[2 * m + j], col[3 * m + j]}};
          out_row[j] = box_pair_value<kBoxOps[I].kind, kBoxOps[I].loss>(a, sb, params);
        }
      }
    });
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

void box_pairwise_kernel(
    const at::Tensor& out, const detail::PreparedBoxPair& p, const detail::PairwiseLayout& layout, size_t op) {
  for_each_box_op([&](auto index) {
    if (decltype(index)::value == op) {
      box_pairwise_loop<decltype(index)::value>(out, p, layout);
    }
  });
}

}  // namespace
}  // namespace CPU_CAPABILITY
}  // namespace torchops

namespace at::native {
// ALSO_REGISTER_AVX512_DISPATCH: ATen's plain REGISTER_DISPATCH leaves the
// AVX-512 slot empty (that CPU then runs the AVX2 copy); ours are faster there.
ALSO_REGISTER_AVX512_DISPATCH(torchops_box_op_stub, &torchops::box_op_kernel)
ALSO_REGISTER_AVX512_DISPATCH(torchops_box_op_backward_stub, &torchops::box_op_backward_kernel)
ALSO_REGISTER_AVX512_DISPATCH(torchops_box_pairwise_stub, &torchops::box_pairwise_kernel)
}  // namespace at::native
