// CPU forward of the box IoU family over the pairwise layout ([..., N, 1, 4] x
// [..., 1, M, 4], detail::pairwise_layout: the N x M functions' views), every
// op declared in box_iou.h.
//
// The geometry of boxes2 (box_geometry: corners, size, centre) is computed once,
// into eight contiguous columns in the opmath type; each box of boxes1 has its
// geometry broadcast into vectors, and its output row is computed with
// contiguous loads from the columns and contiguous stores, the formula of
// box_iou_math.h on vectors (on scalars for the last M % Vectorized::size()
// columns). Each box is read and converted once, not once per output element
// as in the row-view loops of cpu/box_iou_kernel.cpp.
//
// Its own file, compiled once per CPU capability like box_iou_kernel.cpp: added
// there, the larger unit made GCC stop inlining ATen's inline helpers of the
// TensorIterator loops, and an AVX copy of one (kept by the linker for all
// callers) then ran in baseline code (tests/test_cpu_capability.py).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <memory>

#include "common/parallel.h"
#include "super_iou/box_iou.h"
#include "super_iou/cpu/box_iou_kernel.h"

namespace torchops {
inline namespace CPU_CAPABILITY {
namespace {

// Output elements per task (fewer for CIoU: its two atans make an element
// several times costlier), and the longest stretch of one output row a task
// takes (a multiple of every vector width), so that a single long row (N = 1)
// still spreads over threads.
constexpr int64_t kGrainSize = 32768;
constexpr int64_t kCiouGrainSize = 4096;
constexpr int64_t kBlock = 4096;

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
    constexpr int64_t kColumns = 8;  // the numbers of a BoxGeometry
    const auto load_box = [](const scalar_t* box, int64_t column_stride) {
      Box4<opmath_t> v;
      for (int c = 0; c < 4; ++c) {
        v.v[c] = static_cast<opmath_t>(box[c * column_stride]);
      }
      return v;
    };

    // The geometry of boxes2 (box_geometry: corners, size, centre) as columns,
    // [batches2][kColumns][m], one batch where boxes2's is broadcast.
    const int64_t batches2 = l.batch_stride2 == 0 ? 1 : l.batch;
    const std::unique_ptr<opmath_t[]> columns(new opmath_t[batches2 * kColumns * m]);
    parallel_for(0, batches2 * m, kGrainSize / kColumns, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        const int64_t b = k / m, j = k % m;
        const auto g = box_geometry(p.format, load_box(boxes2 + b * l.batch_stride2 + j * l.row_stride2, l.column_stride2));
        opmath_t* col = columns.get() + b * kColumns * m + j;
        col[0] = g.x1, col[m] = g.y1, col[2 * m] = g.x2, col[3 * m] = g.y2;
        col[4 * m] = g.w, col[5 * m] = g.h, col[6 * m] = g.xc, col[7 * m] = g.yc;
      }
    });

    // tasks: stretches of `block` columns of one output row
    const int64_t block = std::min(m, kBlock);
    const int64_t blocks = (m + block - 1) / block;
    const int64_t grain = (kBoxOps[I].kind == BoxKind::CIoU ? kCiouGrainSize : kGrainSize) / block;
    parallel_for(0, l.batch * n * blocks, std::max<int64_t>(1, grain), [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t row = task / blocks;  // b * n + i
        const int64_t b = row / n, i = row % n;
        const int64_t j_end = std::min(m, (task % blocks + 1) * block);
        const auto a = box_geometry(p.format, load_box(boxes1 + b * l.batch_stride1 + i * l.row_stride1, l.column_stride1));
        const BoxGeometry<Vec> va{Vec(a.x1), Vec(a.y1), Vec(a.x2), Vec(a.y2), Vec(a.w), Vec(a.h), Vec(a.xc), Vec(a.yc)};
        const opmath_t* col = columns.get() + (batches2 == 1 ? 0 : b) * kColumns * m;
        opmath_t* out_row = output + row * m;
        int64_t j = (task % blocks) * block;
        for (; j + kLanes <= j_end; j += kLanes) {
          const BoxGeometry<Vec> vb{Vec::loadu(col + j), Vec::loadu(col + m + j), Vec::loadu(col + 2 * m + j),
                                    Vec::loadu(col + 3 * m + j), Vec::loadu(col + 4 * m + j),
                                    Vec::loadu(col + 5 * m + j), Vec::loadu(col + 6 * m + j),
                                    Vec::loadu(col + 7 * m + j)};
          box_pair_value<kBoxOps[I].kind, kBoxOps[I].loss>(va, vb, vparams).store(out_row + j);
        }
        for (; j < j_end; ++j) {
          const BoxGeometry<opmath_t> sb{col[j], col[m + j], col[2 * m + j], col[3 * m + j],
                                         col[4 * m + j], col[5 * m + j], col[6 * m + j], col[7 * m + j]};
          out_row[j] = box_pair_value<kBoxOps[I].kind, kBoxOps[I].loss>(a, sb, params);
        }
      }
    });
  });
}

// The loop of op kBoxOps[op].
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
ALSO_REGISTER_AVX512_DISPATCH(torchops_box_pairwise_stub, &torchops::box_pairwise_kernel)
}  // namespace at::native
