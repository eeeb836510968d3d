// CUDA kernels of the box IoU family (every op declared in box_iou.h).
//
// Fast path: boxes1 and boxes2 are contiguous [n, 4] of one shape (matched
// pairs): each thread reads a box as one vector access (16 bytes for float)
// and, in the backward, writes its gradient rows the same way.
// Every other layout (broadcast, the pairwise [N, 1, 4] x [1, M, 4] views,
// strided rows such as the first four columns of [N, 85]) goes through
// TensorIterator over the column-0 views: its OffsetCalculator maps an
// element to each operand's byte offset, the other three numbers of a box sit
// at the column stride, and launches are split where 32-bit offsets would
// overflow. Nothing is copied.
// Pairwise path (the N x M functions, detail::pairwise_layout): a block
// covers a tile of the output; each thread keeps four consecutive boxes2 in
// registers, walks rows of boxes1 (one broadcast read per row and warp) and
// writes its outputs with vector stores, so the kernel moves little more than
// the output it writes. box_iou in float math (float, half, bfloat16 boxes)
// has its own kernel, pairwise_iou_kernel: the output it writes is the whole
// cost, so its pair is cut to 17 instructions (see there).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/TensorIterator.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/detail/OffsetCalculator.cuh>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <string>
#include <type_traits>

#include "common/cuda_elementwise.cuh"
#include "super_iou/box_iou.h"

namespace torchops {
namespace {

constexpr int kThreads = cuda::kThreads;

template <typename scalar_t>
struct alignas(4 * sizeof(scalar_t)) BoxRow {
  scalar_t v[4];
};

template <typename opmath_t, typename scalar_t>
__device__ __forceinline__ Box4<opmath_t> to_opmath(const BoxRow<scalar_t>& r) {
  return {{static_cast<opmath_t>(r.v[0]), static_cast<opmath_t>(r.v[1]), static_cast<opmath_t>(r.v[2]),
           static_cast<opmath_t>(r.v[3])}};
}

template <typename scalar_t, typename opmath_t>
__device__ __forceinline__ BoxRow<scalar_t> to_row(const Box4<opmath_t>& b) {
  return {{static_cast<scalar_t>(b.v[0]), static_cast<scalar_t>(b.v[1]), static_cast<scalar_t>(b.v[2]),
           static_cast<scalar_t>(b.v[3])}};
}

template <typename opmath_t, typename scalar_t>
__device__ __forceinline__ Box4<opmath_t> load_strided(const char* ptr, int64_t column_stride) {
  Box4<opmath_t> b;
#pragma unroll
  for (int c = 0; c < 4; ++c) {
    b.v[c] = static_cast<opmath_t>(*reinterpret_cast<const scalar_t*>(ptr + c * column_stride));
  }
  return b;
}

int grid_for(int64_t n) {
  const auto* props = at::cuda::getCurrentDeviceProperties();
  const int64_t resident = static_cast<int64_t>(props->multiProcessorCount) * (2048 / kThreads);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, resident)));
}

// --- forward -------------------------------------------------------------------------

// A memory-bound pass: in float at most 32 registers, so that every thread
// slot of the SM is used (33 registers cost CIoU's forward 15% at 1e7 boxes).
template <typename opmath_t>
constexpr int paired_forward_min_blocks() {
  return sizeof(opmath_t) == 4 ? 2048 / kThreads : 1;
}

template <BoxKind kind, bool loss, typename scalar_t, typename opmath_t>
__global__ void __launch_bounds__(kThreads, paired_forward_min_blocks<opmath_t>()) paired_forward_kernel(
    const BoxRow<scalar_t>* a, const BoxRow<scalar_t>* b, opmath_t* out, int64_t n, BoxParams<opmath_t> p) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = box_pair_value<kind, loss>(to_opmath<opmath_t>(a[i]), to_opmath<opmath_t>(b[i]), p);
  }
}

template <BoxKind kind, bool loss, typename scalar_t, typename opmath_t, typename Offsets>
__global__ void __launch_bounds__(kThreads) strided_forward_kernel(
    char* out, const char* a, const char* b, int64_t cs_a, int64_t cs_b, Offsets offsets, int64_t n,
    BoxParams<opmath_t> p) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const auto o = offsets.get(static_cast<uint32_t>(i));
    *reinterpret_cast<opmath_t*>(out + o[0]) = box_pair_value<kind, loss>(
        load_strided<opmath_t, scalar_t>(a + o[1], cs_a), load_strided<opmath_t, scalar_t>(b + o[2], cs_b), p);
  }
}

// Pairwise tile: kPairwiseLanes threads across (kColumnsPerThread columns
// each) by kThreads / kPairwiseLanes rows, every thread visiting
// rows_per_thread rows.
constexpr int kPairwiseLanes = 32;
constexpr int kColumnsPerThread = 4;
constexpr int kPairwiseRowThreads = kThreads / kPairwiseLanes;
constexpr int kTileColumns = kPairwiseLanes * kColumnsPerThread;
constexpr int kMaxRowsPerThread = 8;
// box_iou in float fits in 64 registers (half the SM's threads resident);
// the other kinds and double would spill there.
template <BoxKind kind, typename opmath_t>
constexpr int pairwise_min_blocks() {
  return kind == BoxKind::IoU && sizeof(opmath_t) == 4 ? 4 : 1;
}

template <typename opmath_t>
struct alignas(kColumnsPerThread * sizeof(opmath_t)) OutputColumns {
  opmath_t v[kColumnsPerThread];
};

// One thread's outputs as 16-byte streaming stores (the output is not read
// back here; a plain struct assignment was split into scalar stores).
__device__ __forceinline__ void store_columns(float* ptr, const OutputColumns<float>& c) {
#pragma unroll
  for (int k = 0; k < kColumnsPerThread; k += 4) {
    __stcs(reinterpret_cast<float4*>(ptr + k), make_float4(c.v[k], c.v[k + 1], c.v[k + 2], c.v[k + 3]));
  }
}
__device__ __forceinline__ void store_columns(double* ptr, const OutputColumns<double>& c) {
#pragma unroll
  for (int k = 0; k < kColumnsPerThread; k += 2) {
    __stcs(reinterpret_cast<double2*>(ptr + k), make_double2(c.v[k], c.v[k + 1]));
  }
}

template <typename opmath_t, typename scalar_t>
__device__ __forceinline__ Box4<opmath_t> load_box(const scalar_t* ptr, int64_t column_stride) {
  return {{static_cast<opmath_t>(ptr[0]), static_cast<opmath_t>(ptr[column_stride]),
           static_cast<opmath_t>(ptr[2 * column_stride]), static_cast<opmath_t>(ptr[3 * column_stride])}};
}

// The block's rows of boxes1 are read and turned into geometry once, into
// shared memory, and each warp then reads a row with one broadcast access:
// reading them per warp from global memory (with the format's arithmetic)
// cost as many instructions as a third of the pairs' own.
// vector_store: every output row starts 16-byte aligned, so a thread whose
// columns all exist writes them with vector stores.
template <BoxKind kind, bool loss, bool vector_store, typename scalar_t, typename opmath_t>
__global__ void __launch_bounds__(kThreads, pairwise_min_blocks<kind, opmath_t>()) pairwise_forward_kernel(
    opmath_t* out, const scalar_t* a, const scalar_t* b, detail::PairwiseLayout l, int rows_per_thread,
    BoxParams<opmath_t> p) {
  __shared__ BoxGeometry<opmath_t> tile_rows[kPairwiseRowThreads * kMaxRowsPerThread];
  const int thread = threadIdx.y * kPairwiseLanes + threadIdx.x;
  const int64_t column0 = (static_cast<int64_t>(blockIdx.x) * kPairwiseLanes + threadIdx.x) * kColumnsPerThread;
  const bool has_columns = column0 < l.m;
  const int64_t rows_per_block = static_cast<int64_t>(kPairwiseRowThreads) * rows_per_thread;
  for (int64_t batch = blockIdx.z; batch < l.batch; batch += gridDim.z) {
    BoxGeometry<opmath_t> columns[kColumnsPerThread];
#pragma unroll
    for (int k = 0; k < kColumnsPerThread; ++k) {
      // columns past the end repeat the last box: computed, never stored
      const int64_t j = column0 + k < l.m ? column0 + k : l.m - 1;
      columns[k] = box_geometry(
          p.format, load_box<opmath_t>(b + batch * l.batch_stride2 + j * l.row_stride2, l.column_stride2));
    }
    for (int64_t row0 = blockIdx.y * rows_per_block; row0 < l.n; row0 += static_cast<int64_t>(gridDim.y) * rows_per_block) {
      const int rows = static_cast<int>(row0 + rows_per_block < l.n ? rows_per_block : l.n - row0);
      __syncthreads();  // the previous tile's rows are read
      for (int r = thread; r < rows; r += kThreads) {
        tile_rows[r] = box_geometry(
            p.format,
            load_box<opmath_t>(a + batch * l.batch_stride1 + (row0 + r) * l.row_stride1, l.column_stride1));
      }
      __syncthreads();
      if (!has_columns) continue;
      opmath_t* out_row = out + (batch * l.n + row0 + threadIdx.y) * l.m + column0;
      for (int r = threadIdx.y; r < rows; r += kPairwiseRowThreads, out_row += kPairwiseRowThreads * l.m) {
        const BoxGeometry<opmath_t> box = tile_rows[r];
        OutputColumns<opmath_t> values;
#pragma unroll
        for (int k = 0; k < kColumnsPerThread; ++k) {
          values.v[k] = box_pair_value<kind, loss>(box, columns[k], p);
        }
        if (vector_store && column0 + kColumnsPerThread <= l.m) {
          store_columns(out_row, values);
        } else {
#pragma unroll
          for (int k = 0; k < kColumnsPerThread; ++k) {
            if (column0 + k < l.m) out_row[k] = values.v[k];
          }
        }
      }
    }
  }
}

template <BoxKind kind, bool loss, typename scalar_t, typename opmath_t>
void launch_pairwise_forward(
    const at::Tensor& out, const detail::PreparedBoxPair& p, const detail::PairwiseLayout& l,
    BoxParams<opmath_t> params, cudaStream_t stream) {
  const int64_t column_blocks = (l.m + kTileColumns - 1) / kTileColumns;
  // as many rows per thread as keep about four blocks per SM busy
  const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const int64_t row_groups = (l.n + kPairwiseRowThreads - 1) / kPairwiseRowThreads;
  const int rows_per_thread =
      static_cast<int>(std::clamp<int64_t>(row_groups * column_blocks * l.batch / (4 * sms), 1, kMaxRowsPerThread));
  const int64_t row_blocks = (row_groups + rows_per_thread - 1) / rows_per_thread;
  TORCH_CHECK(column_blocks <= std::numeric_limits<int32_t>::max(), "box_iou: too many columns (", l.m, ")");
  const dim3 grid(static_cast<unsigned>(column_blocks), static_cast<unsigned>(std::min<int64_t>(row_blocks, 65535)),
                  static_cast<unsigned>(std::min<int64_t>(l.batch, 65535)));
  const dim3 block(kPairwiseLanes, kPairwiseRowThreads);
  const auto* a = static_cast<const scalar_t*>(p.boxes1.const_data_ptr());
  const auto* b = static_cast<const scalar_t*>(p.boxes2.const_data_ptr());
  auto* o = out.mutable_data_ptr<opmath_t>();
  if ((l.m * static_cast<int64_t>(sizeof(opmath_t))) % 16 == 0 && cuda::is_aligned(o, 16)) {
    pairwise_forward_kernel<kind, loss, true><<<grid, block, 0, stream>>>(o, a, b, l, rows_per_thread, params);
  } else {
    pairwise_forward_kernel<kind, loss, false><<<grid, block, 0, stream>>>(o, a, b, l, rows_per_thread, params);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// --- box_iou in float: pairwise_iou_kernel ------------------------------------------
//
// IoU only needs of a box its corners and its area, so a box is kept as
// IouBox (5 floats; the area w * h rounded as the reference rounds it), and a
// pair costs: 2 x (min, max, subtract), 2 clamps, the intersection's product,
// the union's 2 additions and a division. The division is the part worth
// attention: IEEE `inter / union` (div.rn) is MUFU.RCP, 5 FFMAs, an FCHK range
// check and a branch around a call of the slow path, ~9 issued instructions
// and a branch per pair (the reference's guards around it cost 5 more).
//
// Tiles whose boxes are all "in range" (iou_box_in_range: finite corners that
// are 0 or of magnitude in [2^-16, 2^20], sides of magnitude <= 2^20, and a
// w, h within 1/8 of x2 - x1, y2 - y1 where positive, which xyxy boxes always
// are) take a fast loop. For every pair of such boxes:
// - inter > 0 implies that both boxes have positive sides, inter >= 2^-78
//   (intersection sides are differences of corners, multiples of 2^-39),
//   union >= 0.73 max(area) > 0, and inter / union in [2^-119, 1.8];
// - inter == 0 (disjoint, touching or inverted boxes): the result is 0 for
//   any finite nonzero union. A box with area < 2^-100 (zero or negative
//   sides) has no positive intersection with anyone, so its area is stored
//   as max(area, 2^-100): the union of every pair with inter == 0 is then
//   >= 2^-100 and never the reference's guarded 0 (which divides by 1: also
//   0), and that of every pair with inter > 0 is unchanged.
// There the fast-path sequence of div.rn (divide_in_range) needs neither its
// range check nor guards: every intermediate is a normal number or an exact
// 0, so it returns the correctly rounded inter / union that `/` returns
// (inter == 0 gives +0: the reference gives -0 for a negative union; no
// comparison tells them apart). NaN/inf or extreme boxes (and inverted
// xywh/cxcywh boxes of one ulp, say) put their tile on the general loop,
// whose per-pair code is box_pair_terms<IoU> written on IouBox (same
// operations, same NaN rules); both loops give the same bits for in-range
// boxes, and those of the eager reference.
struct IouBox {
  float x1, y1, x2, y2, area;
};

__device__ __forceinline__ bool coordinate_in_range(float c) {
  const float m = fabsf(c);
  return m == 0.0f || (m >= 0x1p-16f && m <= 0x1p20f);  // NaN: false
}

// w (the area's side) against hi - lo (what intersections measure): equal
// in xyxy, within rounding of the corners in xywh/cxcywh.
__device__ __forceinline__ bool side_in_range(float w, float lo, float hi) {
  return fabsf(w) <= 0x1p20f && (w <= 0.0f || fabsf((hi - lo) - w) <= 0.125f * w);
}

__device__ __forceinline__ IouBox iou_box(const BoxGeometry<float>& g, bool& in_range) {
  const float area = g.w * g.h;
  in_range = coordinate_in_range(g.x1) && coordinate_in_range(g.y1) && coordinate_in_range(g.x2) &&
      coordinate_in_range(g.y2) && side_in_range(g.w, g.x1, g.x2) && side_in_range(g.h, g.y1, g.y2);
  return {g.x1, g.y1, g.x2, g.y2, in_range ? fmaxf(area, 0x1p-100f) : area};
}

// a / d correctly rounded where every intermediate below is a normal number
// or an exact zero (in-range tiles, see above): the fast path of nvcc's
// div.rn.f32 without its FCHK range check and branch.
__device__ __forceinline__ float divide_in_range(float a, float d) {
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(d));
  r = __fmaf_rn(r, __fmaf_rn(-d, r, 1.0f), r);
  const float q = __fmul_rn(a, r);
  return __fmaf_rn(r, __fmaf_rn(-d, q, a), q);
}

// The reference's IoU (box_pair_terms<IoU, metric>) of two IouBox: NaN-
// propagating min/max/clamp, the union guarded, IEEE division.
__device__ __forceinline__ float iou_general(const IouBox& a, const IouBox& b) {
  const float zero = 0.0f;
  const float inter_w = clamp_min_nan(minimum_nan(a.x2, b.x2) - maximum_nan(a.x1, b.x1), zero);
  const float inter_h = clamp_min_nan(minimum_nan(a.y2, b.y2) - maximum_nan(a.y1, b.y1), zero);
  const float inter = inter_w * inter_h;
  return divide_zero_fast(inter, guarded(a.area + b.area - inter));
}

// The same for in-range boxes (no NaN, no guard needed).
__device__ __forceinline__ float iou_in_range(const IouBox& a, const IouBox& b) {
  const float inter_w = fmaxf(fminf(a.x2, b.x2) - fmaxf(a.x1, b.x1), 0.0f);
  const float inter_h = fmaxf(fminf(a.y2, b.y2) - fmaxf(a.y1, b.y1), 0.0f);
  const float inter = inter_w * inter_h;
  return divide_in_range(inter, a.area + b.area - inter);
}

// The rows of a block in chunks of kThreads (one row per thread to load),
// each row one 32-byte record in shared memory (one address, two reads).
constexpr int kIouChunkRows = kThreads;
struct alignas(32) IouRow {
  float4 corners;
  float area;
};

// One row of a thread's outputs: kColumnsPerThread IoUs, stored as one vector
// (kVector) or one by one where the row's end cuts them.
template <bool kVector, typename Iou>
__device__ __forceinline__ void iou_row(
    const IouRow& shared_row, const IouBox (&columns)[kColumnsPerThread], Iou iou, float* out_row,
    int64_t columns_left) {
  const float4 c = shared_row.corners;
  const IouBox row{c.x, c.y, c.z, c.w, shared_row.area};
  OutputColumns<float> values;
#pragma unroll
  for (int k = 0; k < kColumnsPerThread; ++k) {
    values.v[k] = iou(row, columns[k]);
  }
  if constexpr (kVector) {
    store_columns(out_row, values);
  } else {
#pragma unroll
    for (int k = 0; k < kColumnsPerThread; ++k) {
      if (k < columns_left) out_row[k] = values.v[k];
    }
  }
}

// A thread's rows r0, r0 + 8, ... < rows of a chunk, two per iteration.
template <bool kVector, typename Iou>
__device__ __forceinline__ void iou_rows(
    const IouRow* chunk, int r0, int rows, const IouBox (&columns)[kColumnsPerThread], Iou iou, float* out_row,
    int64_t row_step, int64_t columns_left) {
  int r = r0;
  for (; r + kPairwiseRowThreads < rows; r += 2 * kPairwiseRowThreads, out_row += 2 * row_step) {
    iou_row<kVector>(chunk[r], columns, iou, out_row, columns_left);
    iou_row<kVector>(chunk[r + kPairwiseRowThreads], columns, iou, out_row + row_step, columns_left);
  }
  if (r < rows) {
    iou_row<kVector>(chunk[r], columns, iou, out_row, columns_left);
  }
}

// Block (32, 8): columns as pairwise_forward_kernel (kColumnsPerThread per
// thread, kTileColumns per block). Row split y of gridDim.y takes
// rows_per_split rows (one more for y < extra_rows), so that blocks have equal
// work (launch_pairwise_iou sizes the grid to whole waves). The block's
// boxes2 and each chunk of its boxes1 go through shared memory (each box read
// and checked once per block, not once per warp: with one wave of blocks a
// thread computes ~120 pairs at 4000 x 4000, so what it does per block
// counts).
template <bool vector_store, typename scalar_t>
__global__ void __launch_bounds__(kThreads, 4) pairwise_iou_kernel(
    float* out, const scalar_t* a, const scalar_t* b, detail::PairwiseLayout l, BoxFormat format,
    int64_t rows_per_split, int64_t extra_rows) {
  __shared__ IouRow chunk[kIouChunkRows];
  __shared__ IouRow tile_columns[kTileColumns];
  const int thread = threadIdx.y * kPairwiseLanes + threadIdx.x;
  const int64_t tile_column0 = static_cast<int64_t>(blockIdx.x) * kTileColumns;
  const int64_t column0 = tile_column0 + threadIdx.x * kColumnsPerThread;
  const bool has_columns = column0 < l.m;
  const int64_t columns_left = l.m - column0;
  const int64_t split = blockIdx.y;
  const int64_t row_begin = split * rows_per_split + (split < extra_rows ? split : extra_rows);
  const int64_t row_end = row_begin + rows_per_split + (split < extra_rows ? 1 : 0);
  const int64_t row_step = kPairwiseRowThreads * l.m;
  for (int64_t batch = blockIdx.z; batch < l.batch; batch += gridDim.z) {
    bool column_in_range = true;
    for (int64_t row0 = row_begin; row0 < row_end; row0 += kIouChunkRows) {
      const int rows = static_cast<int>(row_end - row0 < kIouChunkRows ? row_end - row0 : kIouChunkRows);
      __syncthreads();  // the previous chunk's boxes are read
      if (row0 == row_begin && thread < kTileColumns) {
        // columns past the end repeat the last box: computed, never stored
        const int64_t j = tile_column0 + thread < l.m ? tile_column0 + thread : l.m - 1;
        const IouBox box = iou_box(
            box_geometry(format, load_box<float>(b + batch * l.batch_stride2 + j * l.row_stride2, l.column_stride2)),
            column_in_range);
        tile_columns[thread] = {make_float4(box.x1, box.y1, box.x2, box.y2), box.area};
      }
      bool row_in_range = true;
      if (thread < rows) {
        const IouBox box = iou_box(
            box_geometry(
                format,
                load_box<float>(a + batch * l.batch_stride1 + (row0 + thread) * l.row_stride1, l.column_stride1)),
            row_in_range);
        chunk[thread] = {make_float4(box.x1, box.y1, box.x2, box.y2), box.area};
      }
      const bool in_range = __syncthreads_and(row_in_range && column_in_range);
      if (!has_columns) continue;
      IouBox columns[kColumnsPerThread];
#pragma unroll
      for (int k = 0; k < kColumnsPerThread; ++k) {
        const IouRow& c = tile_columns[threadIdx.x * kColumnsPerThread + k];
        columns[k] = {c.corners.x, c.corners.y, c.corners.z, c.corners.w, c.area};
      }
      float* out_row = out + (batch * l.n + row0 + threadIdx.y) * l.m + column0;
      const auto rows_of = [&](auto iou) {
        if (vector_store && columns_left >= kColumnsPerThread) {
          iou_rows<true>(chunk, threadIdx.y, rows, columns, iou, out_row, row_step, columns_left);
        } else {
          iou_rows<false>(chunk, threadIdx.y, rows, columns, iou, out_row, row_step, columns_left);
        }
      };
      if (in_range) {
        rows_of([](const IouBox& x, const IouBox& y) { return iou_in_range(x, y); });
      } else {
        rows_of([](const IouBox& x, const IouBox& y) { return iou_general(x, y); });
      }
    }
  }
}

// Rows split into gridDim.y equal ranges, the count chosen so that the grid
// fills whole waves of resident blocks (2016 blocks of 64 rows at
// 4000 x 4000, 3.8 waves, left a last wave 82% full).
template <typename scalar_t>
void launch_pairwise_iou(
    const at::Tensor& out, const detail::PreparedBoxPair& p, const detail::PairwiseLayout& l, cudaStream_t stream) {
  const int64_t column_blocks = (l.m + kTileColumns - 1) / kTileColumns;
  TORCH_CHECK(column_blocks <= std::numeric_limits<int32_t>::max(), "box_iou: too many columns (", l.m, ")");
  const int64_t batch_blocks = std::min<int64_t>(l.batch, 65535);
  const auto* a = static_cast<const scalar_t*>(p.boxes1.const_data_ptr());
  const auto* b = static_cast<const scalar_t*>(p.boxes2.const_data_ptr());
  auto* o = out.mutable_data_ptr<float>();
  const auto launch = [&](auto kernel) {
    static const int blocks_per_sm = [&] {
      int fit = 0;
      C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&fit, kernel, kThreads, 0));
      return std::max(fit, 1);
    }();
    const int64_t resident =
        static_cast<int64_t>(at::cuda::getCurrentDeviceProperties()->multiProcessorCount) * blocks_per_sm;
    // at least a row per warp and block; the first split count whose waves
    // are 96% full, else the fullest within 8 waves
    const int64_t max_splits =
        std::max<int64_t>(1, std::min<int64_t>((l.n + kPairwiseRowThreads - 1) / kPairwiseRowThreads, 65535));
    int64_t splits = 1;
    double best = 0.0;
    for (int64_t s = 1; s <= max_splits; ++s) {
      const int64_t blocks = column_blocks * s * batch_blocks;
      const int64_t waves = (blocks + resident - 1) / resident;
      if (waves > 8 && s > 1) break;
      const double fill = static_cast<double>(blocks) / static_cast<double>(waves * resident);
      if (fill > best + 1e-9) best = fill, splits = s;
      if (fill >= 0.96) break;
    }
    const dim3 grid(static_cast<unsigned>(column_blocks), static_cast<unsigned>(splits),
                    static_cast<unsigned>(batch_blocks));
    kernel<<<grid, dim3(kPairwiseLanes, kPairwiseRowThreads), 0, stream>>>(
        o, a, b, l, p.format, l.n / splits, l.n % splits);
  };
  if ((l.m * static_cast<int64_t>(sizeof(float))) % 16 == 0 && cuda::is_aligned(o, 16)) {
    launch(pairwise_iou_kernel<true, scalar_t>);
  } else {
    launch(pairwise_iou_kernel<false, scalar_t>);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// --- backward ------------------------------------------------------------------------

template <BoxKind kind, bool loss, typename scalar_t, typename opmath_t>
__global__ void __launch_bounds__(kThreads) paired_backward_kernel(
    const opmath_t* grad, bool grad_single, const BoxRow<scalar_t>* a, const BoxRow<scalar_t>* b,
    BoxRow<scalar_t>* grad_a, BoxRow<scalar_t>* grad_b, int64_t n, BoxParams<opmath_t> p) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const auto g = box_pair_backward<kind, loss>(
        to_opmath<opmath_t>(a[i]), to_opmath<opmath_t>(b[i]), p, grad[grad_single ? 0 : i]);
    grad_a[i] = to_row<scalar_t>(g.a);
    grad_b[i] = to_row<scalar_t>(g.b);
  }
}

template <BoxKind kind, bool loss, typename scalar_t, typename opmath_t, typename Offsets>
__global__ void __launch_bounds__(kThreads) strided_backward_kernel(
    char* grad_a, char* grad_b, const char* grad, const char* a, const char* b, int64_t cs_a, int64_t cs_b,
    Offsets offsets, int64_t n, BoxParams<opmath_t> p) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const auto o = offsets.get(static_cast<uint32_t>(i));
    const auto g = box_pair_backward<kind, loss>(
        load_strided<opmath_t, scalar_t>(a + o[3], cs_a), load_strided<opmath_t, scalar_t>(b + o[4], cs_b), p,
        *reinterpret_cast<const opmath_t*>(grad + o[2]));
    // gradient rows are contiguous [..., 4]
    *reinterpret_cast<BoxRow<scalar_t>*>(grad_a + o[0]) = to_row<scalar_t>(g.a);
    *reinterpret_cast<BoxRow<scalar_t>*>(grad_b + o[1]) = to_row<scalar_t>(g.b);
  }
}

// --- entry points --------------------------------------------------------------------

bool matched_contiguous(const detail::PreparedBoxPair& p) {
  auto shape = p.shape;
  shape.push_back(4);
  return p.boxes1.is_contiguous() && p.boxes2.is_contiguous() && p.boxes1.sizes() == at::IntArrayRef(shape) &&
      p.boxes2.sizes() == at::IntArrayRef(shape) &&
      cuda::is_aligned(p.boxes1.const_data_ptr(), 4 * p.boxes1.element_size()) &&
      cuda::is_aligned(p.boxes2.const_data_ptr(), 4 * p.boxes2.element_size());
}

template <typename opmath_t>
BoxParams<opmath_t> params_of(const detail::PreparedBoxPair& p) {
  return {p.format, static_cast<opmath_t>(p.eps), static_cast<opmath_t>(p.eps_alpha)};
}

template <size_t I>
at::Tensor box_op_cuda(const at::Tensor& boxes1, const at::Tensor& boxes2, double eps, c10::string_view fmt) {
  constexpr BoxKind kind = kBoxOps[I].kind;
  constexpr bool loss = kBoxOps[I].loss;
  const auto p = detail::prepare_box_pair(kBoxOps[I].name, kBoxOps[I], boxes1, boxes2, fmt, eps);
  c10::cuda::CUDAGuard device_guard(p.boxes1.device());
  auto out = at::empty(p.shape, p.boxes1.options().dtype(p.out_dtype));
  const int64_t n = out.numel();
  if (n == 0) {
    return out;
  }
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.boxes1.scalar_type(), kBoxOps[I].name, [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const auto params = params_of<opmath_t>(p);
    if (matched_contiguous(p)) {
      paired_forward_kernel<kind, loss, scalar_t, opmath_t><<<grid_for(n), kThreads, 0, stream>>>(
          reinterpret_cast<const BoxRow<scalar_t>*>(p.boxes1.const_data_ptr()),
          reinterpret_cast<const BoxRow<scalar_t>*>(p.boxes2.const_data_ptr()), out.mutable_data_ptr<opmath_t>(), n,
          params);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      return;
    }
    if (const auto layout = detail::pairwise_layout(p)) {
      if constexpr (kind == BoxKind::IoU && !loss && std::is_same_v<opmath_t, float>) {
        launch_pairwise_iou<scalar_t>(out, p, *layout, stream);
      } else {
        launch_pairwise_forward<kind, loss, scalar_t>(out, p, *layout, params, stream);
      }
      return;
    }
    const auto rows = detail::row_views(p);
    auto iter = at::TensorIteratorConfig()
                    .check_all_same_dtype(false)
                    .add_owned_output(out)
                    .add_owned_const_input(rows.first1)
                    .add_owned_const_input(rows.first2)
                    .build();
    for (auto& sub : iter.with_32bit_indexing()) {
      const auto offsets = ::make_offset_calculator<3>(sub);
      const int64_t count = sub.numel();
      strided_forward_kernel<kind, loss, scalar_t, opmath_t><<<grid_for(count), kThreads, 0, stream>>>(
          static_cast<char*>(sub.data_ptr(0)), static_cast<const char*>(sub.data_ptr(1)),
          static_cast<const char*>(sub.data_ptr(2)), rows.column_stride1, rows.column_stride2, offsets, count,
          params);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return out;
}

template <size_t I>
std::tuple<at::Tensor, at::Tensor> box_op_backward_cuda(
    const at::Tensor& grad, const at::Tensor& boxes1, const at::Tensor& boxes2, double eps, c10::string_view fmt) {
  constexpr BoxKind kind = kBoxOps[I].kind;
  constexpr bool loss = kBoxOps[I].loss;
  const std::string op = backward_name(kBoxOps[I]).substr(1);
  const auto p = detail::prepare_box_pair_backward(op.c_str(), kBoxOps[I], grad, boxes1, boxes2, fmt, eps);
  c10::cuda::CUDAGuard device_guard(p.boxes1.device());
  auto shape = p.shape;
  shape.push_back(4);
  auto grad1 = at::empty(shape, p.boxes1.options());
  auto grad2 = at::empty(shape, p.boxes1.options());
  const int64_t n = grad1.numel() / 4;
  if (n == 0) {
    return {grad1, grad2};
  }
  const auto grad_in = grad.to(p.out_dtype);
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.boxes1.scalar_type(), kBoxOps[I].name, [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const auto params = params_of<opmath_t>(p);
    const bool grad_single = grad_in.numel() == 1;
    if (matched_contiguous(p) && (grad_single || (grad_in.is_contiguous() && grad_in.sizes() == at::IntArrayRef(p.shape)))) {
      paired_backward_kernel<kind, loss, scalar_t, opmath_t><<<grid_for(n), kThreads, 0, stream>>>(
          grad_in.const_data_ptr<opmath_t>(), grad_single,
          reinterpret_cast<const BoxRow<scalar_t>*>(p.boxes1.const_data_ptr()),
          reinterpret_cast<const BoxRow<scalar_t>*>(p.boxes2.const_data_ptr()),
          reinterpret_cast<BoxRow<scalar_t>*>(grad1.mutable_data_ptr()),
          reinterpret_cast<BoxRow<scalar_t>*>(grad2.mutable_data_ptr()), n, params);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      return;
    }
    const auto rows = detail::row_views(p);
    auto iter = at::TensorIteratorConfig()
                    .check_all_same_dtype(false)
                    .add_owned_output(grad1.select(-1, 0))
                    .add_owned_output(grad2.select(-1, 0))
                    .add_owned_const_input(grad_in.expand(p.shape))
                    .add_owned_const_input(rows.first1)
                    .add_owned_const_input(rows.first2)
                    .build();
    for (auto& sub : iter.with_32bit_indexing()) {
      const auto offsets = ::make_offset_calculator<5>(sub);
      const int64_t count = sub.numel();
      strided_backward_kernel<kind, loss, scalar_t, opmath_t><<<grid_for(count), kThreads, 0, stream>>>(
          static_cast<char*>(sub.data_ptr(0)), static_cast<char*>(sub.data_ptr(1)),
          static_cast<const char*>(sub.data_ptr(2)), static_cast<const char*>(sub.data_ptr(3)),
          static_cast<const char*>(sub.data_ptr(4)), rows.column_stride1, rows.column_stride2, offsets, count,
          params);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return {grad1, grad2};
}

}  // namespace

TORCH_LIBRARY_IMPL(super_iou, CUDA, m) {
  for_each_box_op([&](auto index) {
    constexpr size_t I = decltype(index)::value;
    m.impl(kBoxOps[I].name, &box_op_cuda<I>);
    m.impl(backward_name(kBoxOps[I]).c_str(), &box_op_backward_cuda<I>);
  });
}

}  // namespace torchops
