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
// takes N rows a block (several waves).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "super_iou/box_iou_math.h"

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
// clang-format on

}  // namespace exp_iou
