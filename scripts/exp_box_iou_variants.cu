// Experiment (not part of the op library): variants of pairwise_iou_kernel
// (csrc/super_iou/cuda/box_iou_kernel.cu), to find why the CUDA box_iou
// forward in float32 writes at 67% of fill_'s bandwidth (issue 11).
// scripts/exp_box_iou_variants.py builds this file with plain nvcc into a
// shared object (no torch headers: seconds to build), calls it through ctypes
// on torch's current stream, checks every variant against the eager reference
// (the same values, NaN where NaN, as the kernel test asserts) and times them
// in CUDA graphs.
//
// "prod" is the production kernel and its launch rule, copied (ProdTag<Store,
// Rows> changes only its store and its rows an iteration). The other variants
// are instantiations of one leaner kernel template (exp_iou_kernel, its
// parameters described at struct Variant): same arithmetic, same in-range
// test and fast loop, same shared-memory staging, but 32-bit sizes and less
// state live across the row loop. The EXP_IOU_VARIANT lines at the end name
// each variant and say what it changes. At launch, rows_per_block 0 takes
// production's split count (a grid of whole waves of resident blocks), N > 0
// takes N rows a block (several waves). The lin* variants (lin_iou_kernel,
// struct Lin) write the output in linear address order instead of tiles, as
// fill_ does (rows_per_block does not apply to them).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "super_iou/box_iou_math.h"

// after box_iou_math.h (c10/macros/Macros.h: C10_HOST_DEVICE); the header itself includes neither
#include <ATen/cuda/detail/IntegerDivider.cuh>

namespace exp_iou {
using namespace torchops;

struct Layout {  // detail::PairwiseLayout
  int64_t batch, n, m;
  int64_t batch_stride1, row_stride1, column_stride1;
  int64_t batch_stride2, row_stride2, column_stride2;
};

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }

template <typename scalar_t>
__device__ __forceinline__ Box4<float> load_box(const scalar_t* ptr, int64_t column_stride) {
  return {{to_float(ptr[0]), to_float(ptr[column_stride]), to_float(ptr[2 * column_stride]),
           to_float(ptr[3 * column_stride])}};
}

// --- copied from box_iou_kernel.cu ------------------------------------------------------
struct IouBox {
  float x1, y1, x2, y2, area;
};

__device__ __forceinline__ bool coordinate_in_range(float c) {
  const float m = fabsf(c);
  return m == 0.0f || (m >= 0x1p-16f && m <= 0x1p20f);
}

__device__ __forceinline__ bool side_in_range(float w, float lo, float hi) {
  return fabsf(w) <= 0x1p20f && (w <= 0.0f || fabsf((hi - lo) - w) <= 0.125f * w);
}

__device__ __forceinline__ IouBox iou_box(const BoxGeometry<float>& g, bool& in_range) {
  const float area = g.w * g.h;
  in_range = coordinate_in_range(g.x1) && coordinate_in_range(g.y1) && coordinate_in_range(g.x2) &&
      coordinate_in_range(g.y2) && side_in_range(g.w, g.x1, g.x2) && side_in_range(g.h, g.y1, g.y2);
  return {g.x1, g.y1, g.x2, g.y2, in_range ? fmaxf(area, 0x1p-100f) : area};
}

__device__ __forceinline__ float divide_in_range(float a, float d) {
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(d));
  r = __fmaf_rn(r, __fmaf_rn(-d, r, 1.0f), r);
  const float q = __fmul_rn(a, r);
  return __fmaf_rn(r, __fmaf_rn(-d, q, a), q);
}

__device__ __forceinline__ float iou_general(const IouBox& a, const IouBox& b) {
  const float zero = 0.0f;
  const float inter_w = clamp_min_nan(minimum_nan(a.x2, b.x2) - maximum_nan(a.x1, b.x1), zero);
  const float inter_h = clamp_min_nan(minimum_nan(a.y2, b.y2) - maximum_nan(a.y1, b.y1), zero);
  const float inter = inter_w * inter_h;
  return divide_zero_fast(inter, guarded(a.area + b.area - inter));
}

__device__ __forceinline__ float iou_in_range(const IouBox& a, const IouBox& b) {
  const float inter_w = fmaxf(fminf(a.x2, b.x2) - fmaxf(a.x1, b.x1), 0.0f);
  const float inter_h = fmaxf(fminf(a.y2, b.y2) - fmaxf(a.y1, b.y1), 0.0f);
  const float inter = inter_w * inter_h;
  return divide_in_range(inter, a.area + b.area - inter);
}

constexpr int kLanes = 32;
constexpr int kChunkRows = 256;  // production: kIouChunkRows = kThreads
struct alignas(32) IouRow {
  float4 corners;
  float area;
};
// --- end of the copy ----------------------------------------------------------------------

// --- "prod": the production kernel (pairwise_iou_kernel and launch_pairwise_iou), copied --
// kStore and kRows are the only changes a ProdTag<kStore, kRows> variant makes to it:
// ProdTag<1, 2> is the production kernel; kStore as Variant's, kRows rows an
// iteration (production: 2).
namespace prod {
constexpr int kThreads = 256, kPairwiseRowThreads = 8, kColumnsPerThread = 4;
constexpr int kTileColumns = kLanes * kColumnsPerThread;

struct alignas(16) OutputColumns {
  float v[kColumnsPerThread];
};

template <int kStore>
__device__ __forceinline__ void store_columns(float* ptr, const OutputColumns& c) {
  if constexpr (kStore == 1) {
    __stcs(reinterpret_cast<float4*>(ptr), make_float4(c.v[0], c.v[1], c.v[2], c.v[3]));
  } else {
    static_assert(kStore == 0, "prod: kStore 0 or 1");
    *reinterpret_cast<float4*>(ptr) = make_float4(c.v[0], c.v[1], c.v[2], c.v[3]);
  }
}

template <int kStore, bool kVector, typename Iou>
__device__ __forceinline__ void iou_row(const IouRow& shared_row, const IouBox (&columns)[kColumnsPerThread], Iou iou,
                                        float* out_row, int64_t columns_left) {
  const float4 c = shared_row.corners;
  const IouBox row{c.x, c.y, c.z, c.w, shared_row.area};
  OutputColumns values;
#pragma unroll
  for (int k = 0; k < kColumnsPerThread; ++k) values.v[k] = iou(row, columns[k]);
  if constexpr (kVector) {
    store_columns<kStore>(out_row, values);
  } else {
#pragma unroll
    for (int k = 0; k < kColumnsPerThread; ++k) {
      if (k < columns_left) out_row[k] = values.v[k];
    }
  }
}

template <int kStore, int kRows, bool kVector, typename Iou>
__device__ __forceinline__ void iou_rows(const IouRow* chunk, int r0, int rows,
                                         const IouBox (&columns)[kColumnsPerThread], Iou iou, float* out_row,
                                         int64_t row_step, int64_t columns_left) {
  int r = r0;
  if constexpr (kRows == 2) {  // the production loop, as written there
    for (; r + kPairwiseRowThreads < rows; r += 2 * kPairwiseRowThreads, out_row += 2 * row_step) {
      iou_row<kStore, kVector>(chunk[r], columns, iou, out_row, columns_left);
      iou_row<kStore, kVector>(chunk[r + kPairwiseRowThreads], columns, iou, out_row + row_step, columns_left);
    }
    if (r < rows) iou_row<kStore, kVector>(chunk[r], columns, iou, out_row, columns_left);
  } else {
    for (; r + (kRows - 1) * kPairwiseRowThreads < rows;
         r += kRows * kPairwiseRowThreads, out_row += kRows * row_step) {
#pragma unroll
      for (int u = 0; u < kRows; ++u) {
        iou_row<kStore, kVector>(chunk[r + u * kPairwiseRowThreads], columns, iou, out_row + u * row_step,
                                 columns_left);
      }
    }
#pragma unroll
    for (int u = 0; u < kRows - 1; ++u) {
      if (r < rows) {
        iou_row<kStore, kVector>(chunk[r], columns, iou, out_row, columns_left);
        r += kPairwiseRowThreads;
        out_row += row_step;
      }
    }
  }
}

template <int kStore, int kRows, bool vector_store, typename scalar_t>
__global__ void __launch_bounds__(kThreads, 4) prod_iou_kernel(float* out, const scalar_t* a, const scalar_t* b,
                                                               Layout l, BoxFormat format, int64_t rows_per_split,
                                                               int64_t extra_rows) {
  __shared__ IouRow chunk[kChunkRows];
  __shared__ IouRow tile_columns[kTileColumns];
  const int thread = threadIdx.y * kLanes + threadIdx.x;
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
    for (int64_t row0 = row_begin; row0 < row_end; row0 += kChunkRows) {
      const int rows = static_cast<int>(row_end - row0 < kChunkRows ? row_end - row0 : kChunkRows);
      __syncthreads();
      if (row0 == row_begin && thread < kTileColumns) {
        const int64_t j = tile_column0 + thread < l.m ? tile_column0 + thread : l.m - 1;
        const IouBox box = iou_box(
            box_geometry(format, load_box(b + batch * l.batch_stride2 + j * l.row_stride2, l.column_stride2)),
            column_in_range);
        tile_columns[thread] = {make_float4(box.x1, box.y1, box.x2, box.y2), box.area};
      }
      bool row_in_range = true;
      if (thread < rows) {
        const IouBox box = iou_box(
            box_geometry(format,
                         load_box(a + batch * l.batch_stride1 + (row0 + thread) * l.row_stride1, l.column_stride1)),
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
          iou_rows<kStore, kRows, true>(chunk, threadIdx.y, rows, columns, iou, out_row, row_step, columns_left);
        } else {
          iou_rows<kStore, kRows, false>(chunk, threadIdx.y, rows, columns, iou, out_row, row_step, columns_left);
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
}  // namespace prod

// --- the variants ---------------------------------------------------------------------------
//
// Cols: consecutive output columns per thread (4: one 16-byte store a row,
// 8: two, 2: one 8-byte store). RowsPerIter: rows a thread computes per loop iteration (ILP).
// MinBlocks: __launch_bounds__ minimum blocks per SM (with 256 threads: 4 is
// <= 64 registers, 6 <= 40, 8 <= 32). Store: 0 plain st.global.v4, 1
// st.global.cs.v4 (__stcs, the production kernel's), 2
// st.global.L1::no_allocate.L2::cache_hint with an evict_first policy. Work:
// 0 IoU, 1 store-only skeleton (one FADD a pair; its values are not IoU and
// are not checked). WX x WY warps: across columns x down rows (1 x 8 is the
// production tile: a warp writes 32 * Cols columns of every 8th row; 8 x 1:
// the block's 8 warps write 8 * 32 * Cols consecutive columns of one row,
// then of the next). Interleave: false, a block takes a contiguous range of
// rows (production); true, it takes row groups of WY rows y, y + S, y + 2S,
// ... (S = gridDim.y), so that at any time the blocks write one compact band
// of rows, as fill_ writes.
//
// Unlike prod, sizes are 32-bit (n, m < 2^31; element offsets 64-bit), there
// is no batch loop (gridDim.z = batch <= 65535), and little is live across
// the row loop beyond it own state: the registers go to the loop.
template <int Cols, int RowsPerIter, int MinBlocks, int Store, int Work, int WX, int WY, bool Interleave>
struct Variant {
  static constexpr int kCols = Cols, kRowsPerIter = RowsPerIter, kMinBlocks = MinBlocks, kStore = Store,
                       kWork = Work, kWX = WX, kWY = WY;
  static constexpr bool kInterleave = Interleave;
  static constexpr int kThreads = kLanes * WX * WY;
  static constexpr int kTileColumns = kLanes * WX * Cols;
};

struct Params {
  int n, m;
  int64_t batch_stride1, row_stride1, column_stride1;
  int64_t batch_stride2, row_stride2, column_stride2;
  int splits, rows_per_split, extra_rows, groups;
  BoxFormat format;
};

template <int kStore>
__device__ __forceinline__ void store4(float* p, float a, float b, float c, float d) {
  if constexpr (kStore == 0) {
    *reinterpret_cast<float4*>(p) = make_float4(a, b, c, d);
  } else if constexpr (kStore == 1) {
    __stcs(reinterpret_cast<float4*>(p), make_float4(a, b, c, d));
  } else {
    asm volatile(
        "{\n\t.reg .b64 policy;\n\t"
        "createpolicy.fractional.L2::evict_first.b64 policy, 1.0;\n\t"
        "st.global.L1::no_allocate.L2::cache_hint.v4.f32 [%0], {%1, %2, %3, %4}, policy;\n\t}" ::"l"(p),
        "f"(a), "f"(b), "f"(c), "f"(d)
        : "memory");
  }
}

template <int kStore>
__device__ __forceinline__ void store2(float* p, float a, float b) {
  if constexpr (kStore == 0) {
    *reinterpret_cast<float2*>(p) = make_float2(a, b);
  } else if constexpr (kStore == 1) {
    __stcs(reinterpret_cast<float2*>(p), make_float2(a, b));
  } else {
    asm volatile(
        "{\n\t.reg .b64 policy;\n\t"
        "createpolicy.fractional.L2::evict_first.b64 policy, 1.0;\n\t"
        "st.global.L1::no_allocate.L2::cache_hint.v2.f32 [%0], {%1, %2}, policy;\n\t}" ::"l"(p), "f"(a), "f"(b)
        : "memory");
  }
}

template <class V>
struct Ops {
  template <bool kInRange>
  static __device__ __forceinline__ float pair(const IouBox& x, const IouBox& y) {
    if constexpr (V::kWork == 1) {
      return x.x1 + y.x1;
    } else if constexpr (kInRange) {
      return iou_in_range(x, y);
    } else {
      return iou_general(x, y);
    }
  }

  template <bool kVector, bool kInRange>
  static __device__ __forceinline__ void row(const IouRow& shared_row, const IouBox (&columns)[V::kCols],
                                             float* out_row, int columns_left) {
    const float4 c = shared_row.corners;
    const IouBox box{c.x, c.y, c.z, c.w, shared_row.area};
    float v[V::kCols];
#pragma unroll
    for (int k = 0; k < V::kCols; ++k) v[k] = pair<kInRange>(box, columns[k]);
    if constexpr (kVector && V::kCols % 4 == 0) {
#pragma unroll
      for (int k = 0; k < V::kCols; k += 4) store4<V::kStore>(out_row + k, v[k], v[k + 1], v[k + 2], v[k + 3]);
    } else if constexpr (kVector) {
      static_assert(V::kCols == 2, "Cols: 2, 4 or 8");
      store2<V::kStore>(out_row, v[0], v[1]);
    } else {
#pragma unroll
      for (int k = 0; k < V::kCols; ++k) {
        if (k < columns_left) out_row[k] = v[k];
      }
    }
  }

  // A warp's rows r0, r0 + WY, ... < rows of a chunk, kRowsPerIter per
  // iteration; out_row advances row_step elements per row visited.
  template <bool kVector, bool kInRange>
  static __device__ __forceinline__ void rows(const IouRow* chunk, int r0, int rows,
                                              const IouBox (&columns)[V::kCols], float* out_row, int64_t row_step,
                                              int columns_left) {
    constexpr int kStep = V::kWY;
    int r = r0;
    for (; r + (V::kRowsPerIter - 1) * kStep < rows; r += V::kRowsPerIter * kStep) {
#pragma unroll
      for (int u = 0; u < V::kRowsPerIter; ++u) {
        row<kVector, kInRange>(chunk[r + u * kStep], columns, out_row + u * row_step, columns_left);
      }
      out_row += V::kRowsPerIter * row_step;
    }
#pragma unroll
    for (int u = 0; u < V::kRowsPerIter - 1; ++u) {
      if (r < rows) {
        row<kVector, kInRange>(chunk[r], columns, out_row, columns_left);
        r += kStep;
        out_row += row_step;
      }
    }
  }
};

template <typename scalar_t>
__device__ __forceinline__ IouBox column_box(const scalar_t* b, const Params& p, int j, bool& ok) {
  j = j < p.m ? j : p.m - 1;  // columns past the end repeat the last box: computed, never stored
  return iou_box(box_geometry(p.format, load_box(b + blockIdx.z * p.batch_stride2 + j * p.row_stride2,
                                                 p.column_stride2)),
                 ok);
}

template <class V, bool vector_store, typename scalar_t>
__global__ void __launch_bounds__(V::kThreads, V::kMinBlocks) exp_iou_kernel(float* out, const scalar_t* a,
                                                                              const scalar_t* b, Params p) {
  constexpr int kCols = V::kCols, kWY = V::kWY;
  constexpr bool kStaged = kWY > 1;  // column boxes through shared memory (each is used by WY warps)
  __shared__ IouRow chunk[kChunkRows];
  __shared__ IouRow tile_columns[kStaged ? V::kTileColumns : 1];
  const int thread = threadIdx.x;
  const int lane = thread % kLanes, warp = thread / kLanes;
  const int wx = warp % V::kWX, wy = warp / V::kWX;
  const int tile_column0 = blockIdx.x * V::kTileColumns;
  const int column0 = tile_column0 + (wx * kLanes + lane) * kCols;
  const int y = blockIdx.y;
  // the block's rows: local row i is output row first + i (contiguous) or
  // first + (i / WY) * S * WY + i % WY (interleaved)
  int first, count;
  if constexpr (!V::kInterleave) {
    first = y * p.rows_per_split + (y < p.extra_rows ? y : p.extra_rows);
    count = p.rows_per_split + (y < p.extra_rows ? 1 : 0);
  } else {
    if (y >= p.groups) return;
    const int mine = (p.groups - 1 - y) / p.splits + 1;
    const int last = y + (mine - 1) * p.splits;
    count = (mine - 1) * kWY + min(kWY, p.n - last * kWY);
    first = y * kWY;
  }
  const int64_t row_step = static_cast<int64_t>(V::kInterleave ? p.splits * kWY : kWY) * p.m;
  bool column_in_range = true;
  IouBox columns[kCols];
  for (int row0 = 0; row0 < count; row0 += kChunkRows) {
    const int rows = count - row0 < kChunkRows ? count - row0 : kChunkRows;
    __syncthreads();  // the previous chunk's boxes are read
    if (row0 == 0) {
      if constexpr (kStaged) {
        for (int t = thread; t < V::kTileColumns; t += V::kThreads) {
          bool ok = true;
          const IouBox box = column_box(b, p, tile_column0 + t, ok);
          column_in_range = column_in_range && ok;
          tile_columns[t] = {make_float4(box.x1, box.y1, box.x2, box.y2), box.area};
        }
      } else {
#pragma unroll
        for (int k = 0; k < kCols; ++k) {
          bool ok = true;
          columns[k] = column_box(b, p, column0 + k, ok);
          column_in_range = column_in_range && ok;
        }
      }
    }
    bool row_in_range = true;
    for (int t = thread; t < rows; t += V::kThreads) {
      const int i = row0 + t;
      const int row = V::kInterleave ? first + (i / kWY) * (p.splits * kWY) + i % kWY : first + i;
      bool ok = true;
      const IouBox box = iou_box(
          box_geometry(p.format,
                       load_box(a + blockIdx.z * p.batch_stride1 + row * p.row_stride1, p.column_stride1)),
          ok);
      row_in_range = row_in_range && ok;
      chunk[t] = {make_float4(box.x1, box.y1, box.x2, box.y2), box.area};
    }
    const bool in_range = __syncthreads_and(row_in_range && column_in_range);
    if (column0 >= p.m || wy >= rows) continue;
    if constexpr (kStaged) {
      if (row0 == 0) {
#pragma unroll
        for (int k = 0; k < kCols; ++k) {
          const IouRow& c = tile_columns[(wx * kLanes + lane) * kCols + k];
          columns[k] = {c.corners.x, c.corners.y, c.corners.z, c.corners.w, c.area};
        }
      }
    }
    const int i = row0 + wy;
    const int row = V::kInterleave ? first + (i / kWY) * (p.splits * kWY) + i % kWY : first + i;
    float* out_row = out + (static_cast<int64_t>(blockIdx.z) * p.n + row) * p.m + column0;
    const int columns_left = p.m - column0;
    const bool vec = vector_store && columns_left >= kCols;
    if (in_range) {
      if (vec) {
        Ops<V>::template rows<true, true>(chunk, wy, rows, columns, out_row, row_step, columns_left);
      } else {
        Ops<V>::template rows<false, true>(chunk, wy, rows, columns, out_row, row_step, columns_left);
      }
    } else {
      if (vec) {
        Ops<V>::template rows<true, false>(chunk, wy, rows, columns, out_row, row_step, columns_left);
      } else {
        Ops<V>::template rows<false, false>(chunk, wy, rows, columns, out_row, row_step, columns_left);
      }
    }
  }
}

// --- "lin": the output in linear address order, as fill_ writes it ------------------------------
//
// The flat [N, M] output is cut into 16-byte units (4 floats): unit u holds flat elements
// e = 4u .. 4u + 3, element e is row i = e / M, column j = e % M (ATen's IntDivider: a
// multiply-high and a shift). Consecutive threads of a block write consecutive units,
// consecutive blocks consecutive runs of them: the store stream of ATen's vectorized fill_.
// Lin<Units, Threads, Order, Store, Work, Cols>:
// - Units: units a thread writes per iteration (1, 2, 4); Threads: the block size.
// - Order 0: block b writes units [b T U, (b + 1) T U), its k-th unit at b T U + k T + t (stride
//   blockDim; one block per T U units, several waves: fill_'s order with U = 1, T = 128).
//   Order 1: a grid of resident blocks, grid-stride: iteration it, unit k of thread t of block b
//   is (it U + k) G + b T + t, G = gridDim T (the whole grid writes one compact band).
// - Store: 0 plain st.global.v4, 1 st.global.cs.v4 (__stcs). Work: 0 IoU, 1 store-only (a value
//   from the index: the ceiling of the order and its stores; no division, no loads).
// - Cols: where a pair's boxes come from. 0 "inline": the row box (one __ldg float4 a unit; a
//   warp's threads are mostly on one row: a broadcast) and the unit's 4 column boxes (4 __ldg
//   float4, L1/L2 hits) from the inputs, their geometry, area and range test computed per unit.
//   1 "smem": the block stages every column's IouBox once in shared memory (Order 1: a block's
//   units reach every column; groups of 4 columns, 5 float4: x1, y1, x2, y2, area; 20 B a
//   column, M <= 5632) and their range test (__syncthreads_and); the row box inline.
//   2 "prep": a first kernel writes every row's IouBox and range flag (32-byte records) and
//   every column's (groups of 4: the 5 float4 and a word of 4 flag bytes, 96 B) to scratch; a
//   unit loads 2 + 6 vectors, no geometry.
// A unit takes iou_in_range for its 4 pairs where its row box and its 4 columns are in range
// (the production kernel's per-tile rule, per unit: the same IouBox values, the same bits),
// else iou_general.
// Fast kernels (kFast: M % 4 == 0, the output 16-byte aligned) have every unit in one row with
// j % 4 == 0. The general kernel takes each element's own (i, j) (a unit may straddle rows, or
// several when M < 4), stores a whole unit as one vector where the output is aligned, else and
// in the last, partial unit as scalars. Sizes: N M <= 2^31 - 4 (the divider's range) and one
// batch; anything else goes to the production kernel (launch_lin).
template <int Units, int Threads, int Order, int Store, int Work, int Cols>
struct Lin {
  static_assert(Units == 1 || Units == 2 || Units == 4, "Lin: Units 1, 2 or 4");
  static_assert(Order == 0 || Order == 1, "Lin: Order 0 or 1");
  static_assert(Cols >= 0 && Cols <= 2 && (Cols != 1 || Order == 1), "Lin: Cols 0, 1 (Order 1 only) or 2");
  static constexpr int kUnits = Units, kThreads = Threads, kOrder = Order, kStore = Store, kWork = Work,
                       kCols = Cols;
  static constexpr int kMinBlocks = 1024 / Threads;  // <= 64 registers, as the tile variants
  // float4s a group of 4 columns takes (smem: x1, y1, x2, y2, area; prep: and the flags)
  static constexpr int kGroup = Cols == 1 ? 5 : 6;
};

struct alignas(32) LinRecord {  // a row's IouBox and range flag (1.0f in range) in the prep scratch
  float4 corners;
  float area, ok, pad0, pad1;
};

using LinDivider = at::cuda::detail::IntDivider<uint32_t>;

struct LinParams {
  uint32_t n, m, total, units;
  LinDivider div_m;
  int64_t row_stride1, column_stride1, row_stride2, column_stride2;
  BoxFormat format;
  bool vec_store;            // the output 16-byte aligned: every whole unit one float4
  const LinRecord* rows;     // prep: n records
  const float4* columns;     // prep: (m + 3) / 4 groups of 6 float4
};

// A box of the inputs: one float4 (kBoxVec: xyxy float, contiguous [., 4], 16-byte aligned) or
// load_box's four loads.
template <bool kBoxVec, typename scalar_t>
__device__ __forceinline__ Box4<float> lin_load_box(const scalar_t* __restrict__ base, uint32_t index,
                                                    int64_t row_stride, int64_t column_stride) {
  if constexpr (kBoxVec) {
    static_assert(std::is_same_v<scalar_t, float>, "kBoxVec: float boxes");
    const float4 v = __ldg(reinterpret_cast<const float4*>(base) + index);
    return {{v.x, v.y, v.z, v.w}};
  } else {
    return load_box(base + index * row_stride, column_stride);
  }
}

// iou_box without its short-circuits: the same range test and values, no branches (a unit
// tests 5 boxes; iou_box's && chain compiles to a branch a test)
__device__ __forceinline__ bool lin_coordinate_in_range(float c) {
  const float m = fabsf(c);
  return (m == 0.0f) | ((m >= 0x1p-16f) & (m <= 0x1p20f));  // NaN: false
}

__device__ __forceinline__ bool lin_side_in_range(float w, float lo, float hi) {
  return (fabsf(w) <= 0x1p20f) & ((w <= 0.0f) | (fabsf((hi - lo) - w) <= 0.125f * w));
}

// kXyxy (the format known to be xyxy: w is x2 - x1, h is y2 - y1, computed as side_in_range
// recomputes them): side_in_range(w, x1, x2) is then |w| <= 2^20. (Finite w: (x2 - x1) - w is
// +0, and 0 <= 0.125 w wherever w > 0, so the second clause holds; otherwise both are false.)
template <bool kXyxy = false>
__device__ __forceinline__ IouBox lin_iou_box(const BoxGeometry<float>& g, bool& in_range) {
  const float area = g.w * g.h;
  const bool corners = lin_coordinate_in_range(g.x1) & lin_coordinate_in_range(g.y1) &
      lin_coordinate_in_range(g.x2) & lin_coordinate_in_range(g.y2);
  if constexpr (kXyxy) {
    in_range = corners & (fabsf(g.w) <= 0x1p20f) & (fabsf(g.h) <= 0x1p20f);
  } else {
    in_range = corners & lin_side_in_range(g.w, g.x1, g.x2) & lin_side_in_range(g.h, g.y1, g.y2);
  }
  return {g.x1, g.y1, g.x2, g.y2, in_range ? fmaxf(area, 0x1p-100f) : area};
}

// kBoxVec: the format is xyxy (known at compile time); else the launch's
template <bool kBoxVec, typename scalar_t>
__device__ __forceinline__ IouBox lin_box(const scalar_t* __restrict__ base, uint32_t index, int64_t row_stride,
                                          int64_t column_stride, BoxFormat format, bool& ok) {
  const Box4<float> box = lin_load_box<kBoxVec>(base, index, row_stride, column_stride);
  return lin_iou_box<kBoxVec>(box_geometry(kBoxVec ? BoxFormat::XYXY : format, box), ok);
}

__device__ __forceinline__ IouBox lin_record(const LinRecord* __restrict__ r, bool& ok) {
  const float4 c = __ldg(&r->corners);
  const float2 ao = __ldg(reinterpret_cast<const float2*>(&r->area));
  ok = ao.y != 0.0f;
  return {c.x, c.y, c.z, c.w, ao.x};
}

// The value the store-only variants write at flat element e: in [1, 2), never NaN.
__device__ __forceinline__ float lin_index_value(uint32_t e) { return __uint_as_float(0x3f800000u | (e & 0x7fffffu)); }

// Cols 1: the staged column groups (dynamic shared memory)
extern __shared__ float4 lin_shared[];

template <class L, bool kFast, bool kBoxVec, typename scalar_t>
struct LinOps {
  // the group of 4 columns that holds column j (shared memory or the prep scratch)
  static __device__ __forceinline__ const float4* group(const LinParams& p, uint32_t j) {
    if constexpr (L::kCols == 1) {
      return lin_shared + (j >> 2) * L::kGroup;
    } else {
      return p.columns + (j >> 2) * L::kGroup;
    }
  }

  static __device__ __forceinline__ float4 load4(const float4* ptr) {
    if constexpr (L::kCols == 1) {
      return *ptr;
    } else {
      return __ldg(ptr);
    }
  }

  // unit u of a fast kernel: row i, columns j .. j + 3, j % 4 == 0
  static __device__ __forceinline__ void fast_unit(float* __restrict__ out, const scalar_t* __restrict__ a,
                                                   const scalar_t* __restrict__ b, const LinParams& p,
                                                   bool staged_ok, uint32_t u) {
    const uint32_t e = 4 * u;
    float v[4];
    if constexpr (L::kWork == 1) {
#pragma unroll
      for (int c = 0; c < 4; ++c) v[c] = lin_index_value(e + c);
    } else {
      const auto dm = p.div_m.divmod(e);
      const uint32_t i = dm.div, j = dm.mod;
      bool ok = true;
      IouBox row;
      if constexpr (L::kCols == 2) {
        row = lin_record(p.rows + i, ok);
      } else {
        row = lin_box<kBoxVec>(a, i, p.row_stride1, p.column_stride1, p.format, ok);
      }
      IouBox col[4];
      if constexpr (L::kCols == 0) {
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          bool col_ok = true;
          col[c] = lin_box<kBoxVec>(b, j + c, p.row_stride2, p.column_stride2, p.format, col_ok);
          ok = ok & col_ok;
        }
      } else {
        const float4* g = group(p, j);
        float4 f[5];
#pragma unroll
        for (int q = 0; q < 5; ++q) f[q] = load4(g + q);
        col[0] = {f[0].x, f[1].x, f[2].x, f[3].x, f[4].x};
        col[1] = {f[0].y, f[1].y, f[2].y, f[3].y, f[4].y};
        col[2] = {f[0].z, f[1].z, f[2].z, f[3].z, f[4].z};
        col[3] = {f[0].w, f[1].w, f[2].w, f[3].w, f[4].w};
        if constexpr (L::kCols == 1) {
          ok = ok & staged_ok;
        } else {
          ok = ok & (__ldg(reinterpret_cast<const uint32_t*>(g + 5)) == 0x01010101u);
        }
      }
      if (ok) {
#pragma unroll
        for (int c = 0; c < 4; ++c) v[c] = iou_in_range(row, col[c]);
      } else {
#pragma unroll
        for (int c = 0; c < 4; ++c) v[c] = iou_general(row, col[c]);
      }
    }
    store4<L::kStore>(out + e, v[0], v[1], v[2], v[3]);
  }

  // one pair of the general kernel
  static __device__ __forceinline__ float pair(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                               const LinParams& p, bool staged_ok, uint32_t i, uint32_t j) {
    bool row_ok = true, col_ok = true;
    IouBox row, col;
    if constexpr (L::kCols == 2) {
      row = lin_record(p.rows + i, row_ok);
    } else {
      row = lin_box<kBoxVec>(a, i, p.row_stride1, p.column_stride1, p.format, row_ok);
    }
    if constexpr (L::kCols == 0) {
      col = lin_box<kBoxVec>(b, j, p.row_stride2, p.column_stride2, p.format, col_ok);
    } else {
      const float* g = reinterpret_cast<const float*>(group(p, j)) + (j & 3);
      if constexpr (L::kCols == 1) {
        col = {g[0], g[4], g[8], g[12], g[16]};
        col_ok = staged_ok;
      } else {
        col = {__ldg(g), __ldg(g + 4), __ldg(g + 8), __ldg(g + 12), __ldg(g + 16)};
        col_ok = __ldg(reinterpret_cast<const uint8_t*>(group(p, j) + 5) + (j & 3)) != 0;
      }
    }
    return row_ok && col_ok ? iou_in_range(row, col) : iou_general(row, col);
  }

  // unit u of the general kernel: every element its own (i, j); the last unit may be partial
  static __device__ __forceinline__ void general_unit(float* __restrict__ out, const scalar_t* __restrict__ a,
                                                      const scalar_t* __restrict__ b, const LinParams& p,
                                                      bool staged_ok, uint32_t u) {
    const uint32_t e = 4 * u;
    const uint32_t count = p.total - e < 4 ? p.total - e : 4;
    float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if constexpr (L::kWork == 1) {
#pragma unroll
      for (int c = 0; c < 4; ++c) v[c] = lin_index_value(e + c);
    } else {
      const auto dm = p.div_m.divmod(e);
      uint32_t i = dm.div, j = dm.mod;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        if (c < count) v[c] = pair(a, b, p, staged_ok, i, j);
        if (++j == p.m) j = 0, ++i;  // M == 1: every element a new row
      }
    }
    if (p.vec_store && count == 4) {
      store4<L::kStore>(out + e, v[0], v[1], v[2], v[3]);
    } else {
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        if (c < count) out[e + c] = v[c];
      }
    }
  }

  static __device__ __forceinline__ void unit(float* __restrict__ out, const scalar_t* __restrict__ a,
                                              const scalar_t* __restrict__ b, const LinParams& p, bool staged_ok,
                                              uint32_t u) {
    if constexpr (kFast) {
      fast_unit(out, a, b, p, staged_ok, u);
    } else {
      general_unit(out, a, b, p, staged_ok, u);
    }
  }
};

// Cols 1 and 2: column j's IouBox into its group (5 float4 x1, y1, x2, y2, area, then, with
// flags, a word of 4 flag bytes)
template <int kGroup>
__device__ __forceinline__ void lin_put_column(float4* groups, uint32_t j, const IouBox& box, bool ok) {
  float* g = reinterpret_cast<float*>(groups + (j >> 2) * kGroup) + (j & 3);
  g[0] = box.x1, g[4] = box.y1, g[8] = box.x2, g[12] = box.y2, g[16] = box.area;
  if constexpr (kGroup == 6) reinterpret_cast<uint8_t*>(g + 20 - (j & 3))[j & 3] = ok ? 1 : 0;
}

// the prep scratch of Cols 2: a thread a row (n) or a column (m rounded up to 4: the padding
// repeats the last column, its flag 1, so that a fast unit never reads an unwritten byte)
template <typename scalar_t>
__global__ void __launch_bounds__(256) lin_prep_kernel(const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                                       LinParams p, LinRecord* rows, float4* columns) {
  const uint32_t g = blockIdx.x * blockDim.x + threadIdx.x;
  bool ok = true;
  if (g < p.n) {
    const IouBox box = lin_box<false>(a, g, p.row_stride1, p.column_stride1, p.format, ok);
    rows[g] = {make_float4(box.x1, box.y1, box.x2, box.y2), box.area, ok ? 1.0f : 0.0f, 0.0f, 0.0f};
  } else if (g - p.n < (p.m + 3) / 4 * 4) {
    const uint32_t j = g - p.n;
    const IouBox box = lin_box<false>(b, j < p.m ? j : p.m - 1, p.row_stride2, p.column_stride2, p.format, ok);
    lin_put_column<6>(columns, j, box, ok || j >= p.m);
  }
}

template <class L, bool kFast, bool kBoxVec, typename scalar_t>
__global__ void __launch_bounds__(L::kThreads, L::kMinBlocks) lin_iou_kernel(float* __restrict__ out,
                                                                            const scalar_t* __restrict__ a,
                                                                            const scalar_t* __restrict__ b,
                                                                            LinParams p) {
  using Ops = LinOps<L, kFast, kBoxVec, scalar_t>;
  constexpr uint32_t kT = L::kThreads, kU = L::kUnits;
  bool staged_ok = true;
  if constexpr (L::kWork == 0 && L::kCols == 1) {
    bool ok = true;
    for (uint32_t j = threadIdx.x; j < p.m; j += kT) {
      bool box_ok = true;
      const IouBox box = lin_box<kBoxVec>(b, j, p.row_stride2, p.column_stride2, p.format, box_ok);
      ok = ok & box_ok;
      lin_put_column<5>(lin_shared, j, box, box_ok);
    }
    staged_ok = __syncthreads_and(ok);
  }
  if constexpr (L::kOrder == 0) {
    const uint32_t first = blockIdx.x * (kT * kU);
    const uint32_t u0 = first + threadIdx.x;
    if (first + kT * kU <= p.units) {
#pragma unroll
      for (uint32_t c = 0; c < kU; ++c) Ops::unit(out, a, b, p, staged_ok, u0 + c * kT);
    } else {
#pragma unroll
      for (uint32_t c = 0; c < kU; ++c) {
        if (u0 + c * kT < p.units) Ops::unit(out, a, b, p, staged_ok, u0 + c * kT);
      }
    }
  } else {
    const uint32_t g = gridDim.x * kT;
    for (uint32_t u0 = blockIdx.x * kT + threadIdx.x; u0 < p.units; u0 += kU * g) {
      if (u0 + (kU - 1) * g < p.units) {
#pragma unroll
        for (uint32_t c = 0; c < kU; ++c) Ops::unit(out, a, b, p, staged_ok, u0 + c * g);
      } else {
#pragma unroll
        for (uint32_t c = 0; c < kU; ++c) {
          if (u0 + c * g < p.units) Ops::unit(out, a, b, p, staged_ok, u0 + c * g);
        }
      }
    }
  }
}

// --- host side ------------------------------------------------------------------------------

static int sm_count() {
  static int sms = [] {
    int device = 0, n = 0;
    cudaGetDevice(&device);
    cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device);
    return n;
  }();
  return sms;
}

// launch_pairwise_iou's split count: the first whose grid fills whole waves of
// resident blocks 96%, else the fullest within 8 waves (1 wave at 4000^2).
static int64_t wave_splits(int64_t column_blocks, int64_t batch_blocks, int64_t max_splits, int64_t resident) {
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
  return splits;
}

template <class K>
static int fit_blocks(K kernel, int threads) {
  int f = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&f, kernel, threads, 0) != cudaSuccess) f = 1;
  return f > 0 ? f : 1;
}

// rows_per_block <= 0: the production split count (wave_splits); > 0: that
// many rows a block (several waves, balanced by the block scheduler).
template <int kStore, int kRows, bool vs, typename scalar_t>
int launch_prod(float* out, const void* a, const void* b, const Layout& l, int format, int rows_per_block,
                cudaStream_t stream, int* grid_out) {
  auto kernel = prod::prod_iou_kernel<kStore, kRows, vs, scalar_t>;
  static const int blocks_per_sm = fit_blocks(kernel, prod::kThreads);
  const int64_t column_blocks = (l.m + prod::kTileColumns - 1) / prod::kTileColumns;
  const int64_t batch_blocks = l.batch < 65535 ? l.batch : 65535;
  const int64_t max_splits =
      std::max<int64_t>(1, std::min<int64_t>((l.n + prod::kPairwiseRowThreads - 1) / prod::kPairwiseRowThreads, 65535));
  const int64_t splits = rows_per_block > 0
      ? std::min<int64_t>(max_splits, (l.n + rows_per_block - 1) / rows_per_block)
      : wave_splits(column_blocks, batch_blocks, max_splits, static_cast<int64_t>(sm_count()) * blocks_per_sm);
  const dim3 grid(static_cast<unsigned>(column_blocks), static_cast<unsigned>(splits),
                  static_cast<unsigned>(batch_blocks));
  grid_out[0] = grid.x, grid_out[1] = grid.y, grid_out[2] = grid.z;
  kernel<<<grid, dim3(kLanes, prod::kPairwiseRowThreads), 0, stream>>>(
      out, static_cast<const scalar_t*>(a), static_cast<const scalar_t*>(b), l, static_cast<BoxFormat>(format),
      l.n / splits, l.n % splits);
  return static_cast<int>(cudaGetLastError());
}

template <class V, bool vs, typename scalar_t>
int launch_one(float* out, const void* a, const void* b, const Layout& l, int format, int rows_per_block,
               cudaStream_t stream, int* grid_out) {
  if (l.n >= (int64_t(1) << 31) || l.m >= (int64_t(1) << 31) || l.batch > 65535) return -2;
  auto kernel = exp_iou_kernel<V, vs, scalar_t>;
  static const int blocks_per_sm = fit_blocks(kernel, V::kThreads);
  const int64_t column_blocks = (l.m + V::kTileColumns - 1) / V::kTileColumns;
  const int64_t groups = (l.n + V::kWY - 1) / V::kWY;
  const int64_t max_splits = std::max<int64_t>(1, std::min<int64_t>(groups, 65535));
  const int64_t splits = rows_per_block > 0
      ? std::min<int64_t>(max_splits, (l.n + rows_per_block - 1) / rows_per_block)
      : wave_splits(column_blocks, l.batch, max_splits, static_cast<int64_t>(sm_count()) * blocks_per_sm);
  Params p{static_cast<int>(l.n), static_cast<int>(l.m), l.batch_stride1, l.row_stride1, l.column_stride1,
           l.batch_stride2, l.row_stride2, l.column_stride2, static_cast<int>(splits),
           static_cast<int>(l.n / splits), static_cast<int>(l.n % splits), static_cast<int>(groups),
           static_cast<BoxFormat>(format)};
  const dim3 grid(static_cast<unsigned>(column_blocks), static_cast<unsigned>(splits),
                  static_cast<unsigned>(l.batch));
  grid_out[0] = grid.x, grid_out[1] = grid.y, grid_out[2] = grid.z;
  kernel<<<grid, V::kThreads, 0, stream>>>(out, static_cast<const scalar_t*>(a), static_cast<const scalar_t*>(b), p);
  return static_cast<int>(cudaGetLastError());
}

template <class V>
struct Launcher {
  template <bool vs, typename scalar_t>
  static int go(float* out, const void* a, const void* b, const Layout& l, int format, int rows_per_block,
                cudaStream_t stream, int* grid_out) {
    return launch_one<V, vs, scalar_t>(out, a, b, l, format, rows_per_block, stream, grid_out);
  }
  template <bool vs>
  static auto kernel() { return exp_iou_kernel<V, vs, float>; }
  static constexpr int kThreads = V::kThreads;
};
template <int kStore, int kRows>
struct ProdTag {};
template <int kStore, int kRows>
struct Launcher<ProdTag<kStore, kRows>> {
  template <bool vs, typename scalar_t>
  static int go(float* out, const void* a, const void* b, const Layout& l, int format, int rows_per_block,
                cudaStream_t stream, int* grid_out) {
    return launch_prod<kStore, kRows, vs, scalar_t>(out, a, b, l, format, rows_per_block, stream, grid_out);
  }
  template <bool vs>
  static auto kernel() { return prod::prod_iou_kernel<kStore, kRows, vs, float>; }
  static constexpr int kThreads = prod::kThreads;
};

// --- lin: host side -------------------------------------------------------------------------

constexpr int kLinSharedMax = 110 * 1024;  // Cols 1 stages M <= 5632 columns (20 B each), else takes Cols 0

// The prep scratch: one buffer per translation unit, grown (never while a stream captures a
// graph: the checks and every timing's warm-up run first, at the same sizes).
[[maybe_unused]] static char* lin_scratch(size_t bytes, cudaStream_t stream, int* error) {
  static char* ptr = nullptr;
  static size_t capacity = 0;
  if (bytes <= capacity) return ptr;
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  cudaStreamIsCapturing(stream, &capture);
  if (capture != cudaStreamCaptureStatusNone) {
    *error = -3;
    return nullptr;
  }
  if (ptr) {
    cudaDeviceSynchronize();  // earlier launches may still read it
    cudaFree(ptr);
  }
  const size_t want = std::max<size_t>({bytes, 2 * capacity, size_t(4) << 20});
  if (cudaMalloc(&ptr, want) != cudaSuccess) {
    ptr = nullptr, capacity = 0;
    *error = -4;
    return nullptr;
  }
  capacity = want;
  return ptr;
}

template <class L, bool kFast, bool kBoxVec, typename scalar_t>
int lin_go(float* out, const scalar_t* a, const scalar_t* b, const LinParams& p, size_t shared_bytes,
           cudaStream_t stream, int* grid_out) {
  auto kernel = lin_iou_kernel<L, kFast, kBoxVec, scalar_t>;
  if constexpr (L::kWork == 0 && L::kCols == 1) {
    static const cudaError_t set =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kLinSharedMax);
    if (set != cudaSuccess) return static_cast<int>(set);
  }
  constexpr int64_t kT = L::kThreads, kU = L::kUnits;
  int64_t blocks = (static_cast<int64_t>(p.units) + kT * kU - 1) / (kT * kU);
  if constexpr (L::kOrder == 1) {  // the resident blocks (each thread at least one unit)
    int per_sm = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, L::kThreads, shared_bytes) != cudaSuccess ||
        per_sm < 1)
      per_sm = 1;
    blocks = std::min<int64_t>((static_cast<int64_t>(p.units) + kT - 1) / kT,
                               static_cast<int64_t>(per_sm) * sm_count());
  }
  grid_out[0] = static_cast<int>(blocks), grid_out[1] = 1, grid_out[2] = 1;
  kernel<<<static_cast<unsigned>(blocks), L::kThreads, shared_bytes, stream>>>(out, a, b, p);
  return static_cast<int>(cudaGetLastError());
}

template <class L, typename scalar_t>
int launch_lin(float* out, const void* a_ptr, const void* b_ptr, const Layout& l, int format, cudaStream_t stream,
               int* grid_out) {
  grid_out[0] = grid_out[1] = grid_out[2] = 0;
  const int64_t total = l.n * l.m;
  if (l.batch <= 0 || total == 0) return 0;
  if (total > INT32_MAX - 4 || l.batch != 1) {  // the divider's range, one batch: the production kernel
    const bool vs = (l.m * 4) % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0;
    constexpr int kStore = L::kStore == 0 ? 0 : 1;
    return vs ? launch_prod<kStore, 2, true, scalar_t>(out, a_ptr, b_ptr, l, format, 0, stream, grid_out)
              : launch_prod<kStore, 2, false, scalar_t>(out, a_ptr, b_ptr, l, format, 0, stream, grid_out);
  }
  const auto* a = static_cast<const scalar_t*>(a_ptr);
  const auto* b = static_cast<const scalar_t*>(b_ptr);
  LinParams p{};
  p.n = static_cast<uint32_t>(l.n), p.m = static_cast<uint32_t>(l.m), p.total = static_cast<uint32_t>(total);
  p.units = static_cast<uint32_t>((total + 3) / 4);
  p.div_m = LinDivider(p.m);
  p.row_stride1 = l.row_stride1, p.column_stride1 = l.column_stride1;
  p.row_stride2 = l.row_stride2, p.column_stride2 = l.column_stride2;
  p.format = static_cast<BoxFormat>(format);
  p.vec_store = reinterpret_cast<uintptr_t>(out) % 16 == 0;
  const bool fast = p.vec_store && l.m % 4 == 0;
  const size_t groups = static_cast<size_t>((l.m + 3) / 4);
  size_t shared_bytes = 0;
  if constexpr (L::kWork == 0 && L::kCols == 1) {
    shared_bytes = groups * L::kGroup * sizeof(float4);
    if (shared_bytes > static_cast<size_t>(kLinSharedMax)) {  // too many columns to stage: inline
      return launch_lin<Lin<L::kUnits, L::kThreads, L::kOrder, L::kStore, L::kWork, 0>, scalar_t>(
          out, a_ptr, b_ptr, l, format, stream, grid_out);
    }
  }
  if constexpr (L::kWork == 0 && L::kCols == 2) {
    const size_t row_bytes = static_cast<size_t>(l.n) * sizeof(LinRecord);
    const size_t bytes = row_bytes + groups * L::kGroup * sizeof(float4);
    if (bytes > (size_t(1) << 30)) {  // more scratch than an experiment should take: inline
      return launch_lin<Lin<L::kUnits, L::kThreads, L::kOrder, L::kStore, L::kWork, 0>, scalar_t>(
          out, a_ptr, b_ptr, l, format, stream, grid_out);
    }
    int error = 0;
    char* s = lin_scratch(bytes, stream, &error);
    if (!s) return error;
    p.rows = reinterpret_cast<const LinRecord*>(s);
    p.columns = reinterpret_cast<const float4*>(s + row_bytes);
    const int64_t prep_blocks = (l.n + static_cast<int64_t>(groups) * 4 + 255) / 256;
    lin_prep_kernel<scalar_t><<<static_cast<unsigned>(prep_blocks), 256, 0, stream>>>(
        a, b, p, reinterpret_cast<LinRecord*>(s), reinterpret_cast<float4*>(s + row_bytes));
  }
  if constexpr (std::is_same_v<scalar_t, float> && L::kWork == 0 && L::kCols != 2) {
    const auto aligned = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
    const bool box_vec = format == static_cast<int>(BoxFormat::XYXY) && aligned(a) && aligned(b) &&
        l.row_stride1 == 4 && l.column_stride1 == 1 && l.row_stride2 == 4 && l.column_stride2 == 1;
    if (box_vec) {
      return fast ? lin_go<L, true, true>(out, a, b, p, shared_bytes, stream, grid_out)
                  : lin_go<L, false, true>(out, a, b, p, shared_bytes, stream, grid_out);
    }
  }
  return fast ? lin_go<L, true, false>(out, a, b, p, shared_bytes, stream, grid_out)
              : lin_go<L, false, false>(out, a, b, p, shared_bytes, stream, grid_out);
}

template <int U, int T, int O, int S, int W, int C>
struct Launcher<Lin<U, T, O, S, W, C>> {
  using L = Lin<U, T, O, S, W, C>;
  template <bool vs, typename scalar_t>  // vs: the tile kernels' rule; lin decides its own (launch_lin)
  static int go(float* out, const void* a, const void* b, const Layout& l, int format, int /*rows_per_block*/,
                cudaStream_t stream, int* grid_out) {
    return launch_lin<L, scalar_t>(out, a, b, l, format, stream, grid_out);
  }
  template <bool vs>  // the kernel of contiguous xyxy float boxes, M % 4 == 0
  static auto kernel() { return lin_iou_kernel<L, true, W == 0 && C != 2, float>; }
  static constexpr int kThreads = T;
};

template <class V>
int launch_variant(int half, float* out, const void* a, const void* b, const Layout& l, int format,
                   int rows_per_block, cudaStream_t stream, int* grid_out) {
  // production's rule: vector stores where every output row starts 16-byte aligned
  const bool vs = (l.m * 4) % 16 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0;
  using L = Launcher<V>;
  if (half) {
    return vs ? L::template go<true, __half>(out, a, b, l, format, rows_per_block, stream, grid_out)
              : L::template go<false, __half>(out, a, b, l, format, rows_per_block, stream, grid_out);
  }
  return vs ? L::template go<true, float>(out, a, b, l, format, rows_per_block, stream, grid_out)
            : L::template go<false, float>(out, a, b, l, format, rows_per_block, stream, grid_out);
}

// registers, local (spill) bytes, static shared bytes, resident blocks per SM
// of the float, vector-store instantiation.
template <class V>
int attributes(int* out) {
  using L = Launcher<V>;
  cudaFuncAttributes attr{};
  const cudaError_t e = cudaFuncGetAttributes(&attr, L::template kernel<true>());
  out[0] = attr.numRegs;
  out[1] = static_cast<int>(attr.localSizeBytes);
  out[2] = static_cast<int>(attr.sharedSizeBytes);
  out[3] = fit_blocks(L::template kernel<true>(), L::kThreads);
  return static_cast<int>(e);
}

// The variants, one line each: EXP_IOU_VARIANT(name, Variant<Cols, RowsPerIter,
// MinBlocks, Store, Work, WX, WY, Interleave>) // what it changes
// or EXP_IOU_VARIANT(name, ProdTag<Store, RowsPerIter>) (the production kernel,
// copied, with that store and that many rows an iteration)
// or EXP_IOU_VARIANT(name, Lin<Units, Threads, Order, Store, Work, Cols>) (linear order)
// (scripts/exp_box_iou_variants.py reads these lines). EXP_IOU_GROUP g of
// EXP_IOU_GROUPS (-D on the command line) makes this translation unit hold the
// g-th, g+GROUPS-th, ... of them, so that they can be compiled in parallel;
// -1 (the default) holds all.
#ifndef EXP_IOU_GROUP
#define EXP_IOU_GROUP -1
#endif
#ifndef EXP_IOU_GROUPS
#define EXP_IOU_GROUPS 1
#endif
#define EXP_IOU_IN_GROUP(i) (EXP_IOU_GROUP < 0 || (i) % EXP_IOU_GROUPS == EXP_IOU_GROUP)

#define EXP_IOU_VARIANT(name, ...)                                                                             \
  extern "C" int exp_iou_launch_##name(int half, float* out, const void* a, const void* b, const int64_t* lv, \
                                       int format, int rows_per_block, void* stream, int* grid_out) {       \
    const Layout l{lv[0], lv[1], lv[2], lv[3], lv[4], lv[5], lv[6], lv[7], lv[8]};                          \
    return launch_variant<__VA_ARGS__>(half, out, a, b, l, format, rows_per_block,                          \
                                       static_cast<cudaStream_t>(stream), grid_out);                        \
  }                                                                                                         \
  extern "C" int exp_iou_attributes_##name(int* out) { return attributes<__VA_ARGS__>(out); }

// clang-format off
#if EXP_IOU_IN_GROUP(0)
EXP_IOU_VARIANT(prod, ProdTag<1, 2>)  // the production kernel, copied (pairwise_iou_kernel)
#endif
#if EXP_IOU_IN_GROUP(1)
EXP_IOU_VARIANT(prod_plain, ProdTag<0, 2>)  // prod, plain st.global.v4 instead of __stcs
#endif
#if EXP_IOU_IN_GROUP(2)
EXP_IOU_VARIANT(prod_rows4, ProdTag<1, 4>)  // prod, 4 rows an iteration
#endif
#if EXP_IOU_IN_GROUP(3)
EXP_IOU_VARIANT(prod_rows4_plain, ProdTag<0, 4>)  // prod, 4 rows an iteration, plain stores
#endif
#if EXP_IOU_IN_GROUP(4)
EXP_IOU_VARIANT(base, Variant<4, 2, 4, 1, 0, 1, 8, false>)  // prod's tile, stores and grid on the lean kernel (its registers go to the loop)
#endif
#if EXP_IOU_IN_GROUP(5)
EXP_IOU_VARIANT(store_only, Variant<4, 2, 4, 1, 1, 1, 8, false>)  // base, one FADD a pair: the ceiling of its grid and stores
#endif
#if EXP_IOU_IN_GROUP(6)
EXP_IOU_VARIANT(store_only_plain, Variant<4, 2, 4, 0, 1, 1, 8, false>)  // store_only, plain stores
#endif
#if EXP_IOU_IN_GROUP(7)
EXP_IOU_VARIANT(plain_st, Variant<4, 2, 4, 0, 0, 1, 8, false>)  // base, plain st.global.v4 instead of __stcs
#endif
#if EXP_IOU_IN_GROUP(8)
EXP_IOU_VARIANT(l2_evict_first, Variant<4, 2, 4, 2, 0, 1, 8, false>)  // base, L1::no_allocate + L2 evict_first cache policy
#endif
#if EXP_IOU_IN_GROUP(9)
EXP_IOU_VARIANT(interleave, Variant<4, 2, 4, 1, 0, 1, 8, true>)  // base, rows interleaved (blocks write one compact band)
#endif
#if EXP_IOU_IN_GROUP(10)
EXP_IOU_VARIANT(interleave_plain, Variant<4, 2, 4, 0, 0, 1, 8, true>)  // interleave, plain stores
EXP_IOU_VARIANT(interleave_store_only, Variant<4, 2, 4, 1, 1, 1, 8, true>)  // interleave, store-only: the ceiling of a compact band of rows written in 512-byte pieces
EXP_IOU_VARIANT(wide_interleave, Variant<4, 2, 4, 1, 0, 8, 1, true>)  // wide, rows interleaved (a block writes 4 KB of a row; the grid one compact band)
EXP_IOU_VARIANT(wide_interleave_store_only, Variant<4, 2, 4, 1, 1, 8, 1, true>)  // wide_interleave, store-only: its ceiling
#endif
#if EXP_IOU_IN_GROUP(11)
EXP_IOU_VARIANT(rows1, Variant<4, 1, 4, 1, 0, 1, 8, false>)  // base, 1 row an iteration
#endif
#if EXP_IOU_IN_GROUP(12)
EXP_IOU_VARIANT(rows4, Variant<4, 4, 4, 1, 0, 1, 8, false>)  // base, 4 rows an iteration (16 independent pairs)
#endif
#if EXP_IOU_IN_GROUP(13)
EXP_IOU_VARIANT(rows4_plain, Variant<4, 4, 4, 0, 0, 1, 8, false>)  // rows4, plain stores
#endif
#if EXP_IOU_IN_GROUP(14)
EXP_IOU_VARIANT(occ6, Variant<4, 2, 6, 1, 0, 1, 8, false>)  // base at <= 40 registers (75% occupancy)
#endif
#if EXP_IOU_IN_GROUP(15)
EXP_IOU_VARIANT(occ6_rows1, Variant<4, 1, 6, 1, 0, 1, 8, false>)  // occ6, 1 row an iteration
#endif
#if EXP_IOU_IN_GROUP(16)
EXP_IOU_VARIANT(occ8_rows1, Variant<4, 1, 8, 1, 0, 1, 8, false>)  // <= 32 registers (100% occupancy), 1 row an iteration
EXP_IOU_VARIANT(occ6_store_only, Variant<4, 2, 6, 1, 1, 1, 8, false>)  // store_only at 6 blocks an SM (75% occupancy): does the ceiling follow the resident warps?
EXP_IOU_VARIANT(occ8_store_only, Variant<4, 1, 8, 1, 1, 1, 8, false>)  // store_only, 1 row an iteration, 8 blocks an SM (100% occupancy)
#endif
#if EXP_IOU_IN_GROUP(17)
EXP_IOU_VARIANT(cols8, Variant<8, 1, 4, 1, 0, 1, 8, false>)  // 8 columns a thread (2 x 16 B stores), 1 row an iteration
#endif
#if EXP_IOU_IN_GROUP(18)
EXP_IOU_VARIANT(cols8_rows2, Variant<8, 2, 4, 1, 0, 1, 8, false>)  // cols8, 2 rows an iteration
#endif
#if EXP_IOU_IN_GROUP(19)
EXP_IOU_VARIANT(cols8_plain, Variant<8, 1, 4, 0, 0, 1, 8, false>)  // cols8, plain stores
#endif
#if EXP_IOU_IN_GROUP(20)
EXP_IOU_VARIANT(cols8_store_only, Variant<8, 1, 4, 1, 1, 1, 8, false>)  // the ceiling of cols8's grid and stores
#endif
#if EXP_IOU_IN_GROUP(21)
EXP_IOU_VARIANT(wide, Variant<4, 2, 4, 1, 0, 8, 1, false>)  // 8 warps across 1024 columns of one row (a block writes 4 KB of a row, then the next row)
#endif
#if EXP_IOU_IN_GROUP(22)
EXP_IOU_VARIANT(wide_plain, Variant<4, 2, 4, 0, 0, 8, 1, false>)  // wide, plain stores
#endif
#if EXP_IOU_IN_GROUP(23)
EXP_IOU_VARIANT(wide_interleave_plain, Variant<4, 2, 4, 0, 0, 8, 1, true>)  // wide_plain, rows interleaved
#endif
#if EXP_IOU_IN_GROUP(24)
EXP_IOU_VARIANT(wide_store_only, Variant<4, 2, 4, 1, 1, 8, 1, false>)  // the ceiling of wide's grid and stores
#endif
#if EXP_IOU_IN_GROUP(25)
EXP_IOU_VARIANT(wide_store_only_plain, Variant<4, 2, 4, 0, 1, 8, 1, false>)  // wide_store_only, plain stores
#endif
#if EXP_IOU_IN_GROUP(26)
EXP_IOU_VARIANT(wide_rows4_plain, Variant<4, 4, 4, 0, 0, 8, 1, false>)  // wide_plain, 4 rows an iteration
#endif
#if EXP_IOU_IN_GROUP(27)
EXP_IOU_VARIANT(wide_occ6_plain, Variant<4, 1, 6, 0, 0, 8, 1, false>)  // wide_plain at <= 40 registers, 1 row an iteration
#endif
#if EXP_IOU_IN_GROUP(28)
EXP_IOU_VARIANT(mid_plain, Variant<4, 2, 4, 0, 0, 2, 4, false>)  // 2 warps across (256 columns) x 4 down, plain stores
#endif
#if EXP_IOU_IN_GROUP(29)
EXP_IOU_VARIANT(occ6_plain, Variant<4, 2, 6, 0, 0, 1, 8, false>)  // occ6, plain stores
#endif
#if EXP_IOU_IN_GROUP(30)
EXP_IOU_VARIANT(occ6_interleave_plain, Variant<4, 2, 6, 0, 0, 1, 8, true>)  // occ6, rows interleaved, plain stores
#endif
#if EXP_IOU_IN_GROUP(31)
EXP_IOU_VARIANT(occ5, Variant<4, 2, 5, 1, 0, 1, 8, false>)  // base at <= 48 registers (62.5% occupancy)
#endif
#if EXP_IOU_IN_GROUP(32)
EXP_IOU_VARIANT(occ5_rows4, Variant<4, 4, 5, 1, 0, 1, 8, false>)  // occ5, 4 rows an iteration
#endif
#if EXP_IOU_IN_GROUP(33)
EXP_IOU_VARIANT(cols2_occ8, Variant<2, 2, 8, 1, 0, 1, 8, false>)  // 2 columns a thread (8-byte stores), <= 32 registers (100% occupancy)
#endif
#if EXP_IOU_IN_GROUP(34)
EXP_IOU_VARIANT(cols2_occ8_plain, Variant<2, 2, 8, 0, 0, 1, 8, false>)  // cols2_occ8, plain stores
#endif
#if EXP_IOU_IN_GROUP(35)
EXP_IOU_VARIANT(cols2_occ8_rows4_plain, Variant<2, 4, 8, 0, 0, 1, 8, false>)  // cols2_occ8_plain, 4 rows an iteration
#endif
#if EXP_IOU_IN_GROUP(36)
EXP_IOU_VARIANT(cols2_occ6_rows4, Variant<2, 4, 6, 1, 0, 1, 8, false>)  // 2 columns, 4 rows an iteration, <= 40 registers
#endif
#if EXP_IOU_IN_GROUP(37)
EXP_IOU_VARIANT(lin_store_only, Lin<1, 128, 0, 1, 1, 0>)  // linear order, fill_'s grid (128 threads, one float4 a thread, one block per 512 outputs), __stcs of a value from the index: the ceiling of the order
#endif
#if EXP_IOU_IN_GROUP(38)
EXP_IOU_VARIANT(lin_store_only_plain, Lin<1, 128, 0, 0, 1, 0>)  // lin_store_only, plain stores (fill_'s kernel, nearly)
#endif
#if EXP_IOU_IN_GROUP(39)
EXP_IOU_VARIANT(lin_store_only_u4, Lin<4, 256, 0, 1, 1, 0>)  // lin_store_only, 256 threads, 4 float4s a thread at stride blockDim (a block writes 16 KB)
#endif
#if EXP_IOU_IN_GROUP(40)
EXP_IOU_VARIANT(lin_store_only_gs, Lin<4, 256, 1, 1, 1, 0>)  // lin_store_only on a grid of resident blocks, grid-stride (4 float4s an iteration at stride gridDim x blockDim)
#endif
#if EXP_IOU_IN_GROUP(41)
EXP_IOU_VARIANT(lin_store_only_gs_plain, Lin<4, 256, 1, 0, 1, 0>)  // lin_store_only_gs, plain stores
#endif
#if EXP_IOU_IN_GROUP(42)
EXP_IOU_VARIANT(lin, Lin<1, 256, 0, 1, 0, 0>)  // IoU in linear order: float4 unit u -> row 4u / M (IntDivider), 4 columns; row and column boxes loaded and tested inline; 256 threads, one unit a thread
#endif
#if EXP_IOU_IN_GROUP(43)
EXP_IOU_VARIANT(lin_plain, Lin<1, 256, 0, 0, 0, 0>)  // lin, plain stores
#endif
#if EXP_IOU_IN_GROUP(44)
EXP_IOU_VARIANT(lin_u2, Lin<2, 256, 0, 1, 0, 0>)  // lin, 2 units a thread (stride blockDim)
#endif
#if EXP_IOU_IN_GROUP(45)
EXP_IOU_VARIANT(lin_u4, Lin<4, 256, 0, 1, 0, 0>)  // lin, 4 units a thread (stride blockDim)
#endif
#if EXP_IOU_IN_GROUP(46)
EXP_IOU_VARIANT(lin_t512_u2, Lin<2, 512, 0, 1, 0, 0>)  // lin, 512 threads, 2 units a thread
#endif
#if EXP_IOU_IN_GROUP(47)
EXP_IOU_VARIANT(lin_gs, Lin<2, 256, 1, 1, 0, 0>)  // lin on a grid of resident blocks, grid-stride, 2 units an iteration
#endif
#if EXP_IOU_IN_GROUP(48)
EXP_IOU_VARIANT(lin_smem_gs, Lin<1, 512, 1, 1, 0, 1>)  // lin_gs with every column's IouBox staged once a block in shared memory (groups of 4 columns, 20 B a column; M <= 5632, else lin_gs), 512 threads, 1 unit an iteration
#endif
#if EXP_IOU_IN_GROUP(49)
EXP_IOU_VARIANT(lin_smem_gs_u2, Lin<2, 512, 1, 1, 0, 1>)  // lin_smem_gs, 2 units an iteration
#endif
#if EXP_IOU_IN_GROUP(50)
EXP_IOU_VARIANT(lin_prep, Lin<1, 256, 0, 1, 0, 2>)  // lin with rows' and columns' IouBox and range flag precomputed by a first kernel (scratch; the unit: 2 + 6 loads, no geometry)
#endif
#if EXP_IOU_IN_GROUP(51)
EXP_IOU_VARIANT(lin_prep_plain, Lin<1, 256, 0, 0, 0, 2>)  // lin_prep, plain stores
#endif
#if EXP_IOU_IN_GROUP(52)
EXP_IOU_VARIANT(lin_prep_u4, Lin<4, 256, 0, 1, 0, 2>)  // lin_prep, 4 units a thread
#endif
#if EXP_IOU_IN_GROUP(53)
EXP_IOU_VARIANT(lin_prep_t128_u2, Lin<2, 128, 0, 1, 0, 2>)  // lin_prep, 128 threads, 2 units a thread
#endif
#if EXP_IOU_IN_GROUP(54)
EXP_IOU_VARIANT(lin_prep_gs, Lin<2, 256, 1, 1, 0, 2>)  // lin_prep on a grid of resident blocks, grid-stride, 2 units an iteration
#endif
// clang-format on

}  // namespace exp_iou
