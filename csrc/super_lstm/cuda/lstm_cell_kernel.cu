// CUDA kernels of super_lstm::lstm_cell, its training forward and backward.
// One thread handles kVec consecutive hidden units of one batch row: it reads
// the four gates of both gate tensors, the biases and cx, and writes hy and cy
// (training: also the four activated gates, the workspace); the backward reads
// the workspace, cx and the state gradients, writes the four gate gradients
// and cx's, and sums the gate gradients over its rows for the bias gradient.
// Any 2-D strides are read in place (gates that are slices of a larger matmul
// output need no copy); vector accesses when every column stride is 1 and
// the addresses allow it. Offsets are 64-bit.
//
// Tuning, measured on an H200 at (B, H) = (16384, 2048), float32 (see
// benchmarks/results): the forward with 8-byte accesses, at least 4 blocks of
// 256 threads per SM (<= 64 registers) and streaming (evict-first) loads of
// the read-once inputs ran at 97% of copy bandwidth, against 78% for 16-byte
// accesses at the 80 registers the compiler chose (3 blocks per SM).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <type_traits>
#include <utility>

#include "common/cuda_elementwise.cuh"
#include "super_lstm/lstm_cell.h"
#include "super_lstm/lstm_cell_math.h"

namespace torchops {
namespace {

template <typename T>
struct Strided2d {
  T* ptr;
  int64_t row_stride;
  int64_t col_stride;
  __device__ T* at(int64_t row, int64_t col) const { return ptr + row * row_stride + col * col_stride; }
};

// Inputs (const T) are read through const_data_ptr, which leaves a
// copy-on-write tensor shared; outputs through mutable_data_ptr.
template <typename T>
Strided2d<T> strided(const at::Tensor& t) {
  if (!t.defined()) {
    return {nullptr, 0, 0};
  }
  T* ptr;
  if constexpr (std::is_const_v<T>) {
    ptr = static_cast<T*>(t.const_data_ptr());
  } else {
    ptr = static_cast<T*>(t.mutable_data_ptr());
  }
  if (t.dim() == 1) {  // a bias: the same for every row
    return {ptr, 0, t.stride(0)};
  }
  return {ptr, t.stride(0), t.stride(1)};
}

// Forward operands; workspace.ptr is null for inference.
template <typename scalar_t>
struct ForwardOperands {
  Strided2d<const scalar_t> input_gates, hidden_gates, b_ih, b_hh, cx;
  Strided2d<scalar_t> hy, cy, workspace;
};

template <typename scalar_t>
struct BackwardOperands {
  Strided2d<const scalar_t> workspace, cx, grad_hy, grad_cy;
  Strided2d<scalar_t> grad_gates, grad_cx;
};

// Loads/stores of kVec elements as one access (kVec * sizeof(scalar_t) bytes),
// or kVec single-element accesses on strided data.
template <typename scalar_t, int kVec, bool kStreaming = false>
__device__ void load_at(const Strided2d<const scalar_t>& t, int64_t row, int64_t col,
                        at::opmath_type<scalar_t> (&out)[kVec]) {
  using Vec = cuda::AlignedVector<scalar_t, kVec>;
  if constexpr (kVec > 1) {
    const Vec v = cuda::load_vector<kStreaming>(reinterpret_cast<const Vec*>(t.at(row, col)));
#pragma unroll
    for (int j = 0; j < kVec; ++j) out[j] = static_cast<at::opmath_type<scalar_t>>(v.val[j]);
  } else {
    out[0] = static_cast<at::opmath_type<scalar_t>>(cuda::load_vector<kStreaming>(t.at(row, col)));
  }
}

template <typename scalar_t, int kVec>
__device__ void store_at(const Strided2d<scalar_t>& t, int64_t row, int64_t col,
                         const at::opmath_type<scalar_t> (&in)[kVec]) {
  using Vec = cuda::AlignedVector<scalar_t, kVec>;
  if constexpr (kVec > 1) {
    Vec v;
#pragma unroll
    for (int j = 0; j < kVec; ++j) v.val[j] = static_cast<scalar_t>(in[j]);
    *reinterpret_cast<Vec*>(t.at(row, col)) = v;
  } else {
    *t.at(row, col) = static_cast<scalar_t>(in[0]);
  }
}

// Pre-activations of the four gates for kVec units at (row, col).
template <typename scalar_t, int kVec, int kBiases>
__device__ void load_pre_activations(const ForwardOperands<scalar_t>& p, int64_t row, int64_t col,
                                     int64_t hidden, at::opmath_type<scalar_t> (&pre)[4][kVec]) {
  using opmath_t = at::opmath_type<scalar_t>;
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    opmath_t ig[kVec], hg[kVec], bi[kVec], bh[kVec];
    load_at<scalar_t, kVec, true>(p.input_gates, row, k * hidden + col, ig);
    load_at<scalar_t, kVec, true>(p.hidden_gates, row, k * hidden + col, hg);
    if constexpr (kBiases >= 1) load_at<scalar_t, kVec>(p.b_ih, 0, k * hidden + col, bi);
    if constexpr (kBiases == 2) load_at<scalar_t, kVec>(p.b_hh, 0, k * hidden + col, bh);
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      opmath_t v = ig[j] + hg[j];
      if constexpr (kBiases >= 1) v = v + bi[j];
      if constexpr (kBiases == 2) v = v + bh[j];
      pre[k][j] = v;
    }
  }
}

constexpr int kForwardMinBlocks = 4;  // per SM: caps registers at 64
constexpr int kBackwardMinBlocks = 2;

template <typename scalar_t, int kVec, int kBiases, bool kWorkspace>
__global__ void __launch_bounds__(cuda::kThreads, kForwardMinBlocks) lstm_cell_forward_kernel(
    ForwardOperands<scalar_t> p, int64_t batch, int64_t hidden) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t columns = hidden / kVec;
  for (int64_t row = blockIdx.y; row < batch; row += gridDim.y) {
    for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < columns;
         c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      const int64_t col = c * kVec;
      opmath_t pre[4][kVec], cx[kVec];
      load_pre_activations<scalar_t, kVec, kBiases>(p, row, col, hidden, pre);
      load_at<scalar_t, kVec, true>(p.cx, row, col, cx);
      opmath_t hy[kVec], cy[kVec], act[4][kVec];
#pragma unroll
      for (int j = 0; j < kVec; ++j) {
        const auto gates = lstm_cell_gates(pre[0][j], pre[1][j], pre[2][j], pre[3][j]);
        const auto s = lstm_cell_state(gates, cx[j]);
        hy[j] = s.hy;
        cy[j] = s.cy;
        act[0][j] = gates.i;
        act[1][j] = gates.f;
        act[2][j] = gates.g;
        act[3][j] = gates.o;
      }
      store_at<scalar_t, kVec>(p.hy, row, col, hy);
      store_at<scalar_t, kVec>(p.cy, row, col, cy);
      if constexpr (kWorkspace) {
#pragma unroll
        for (int k = 0; k < 4; ++k) store_at<scalar_t, kVec>(p.workspace, row, k * hidden + col, act[k]);
      }
    }
  }
}

// Column-major over the batch: a thread keeps its kVec columns and walks the
// rows blockIdx.y, blockIdx.y + gridDim.y, ..., so with kBiasSum it sums its
// gate gradients over those rows in registers and writes one partial sum per
// gate and column to bias_partial[blockIdx.y] (reduced over blockIdx.y after).
template <typename scalar_t, int kVec, bool kBiasSum>
__global__ void __launch_bounds__(cuda::kThreads, kBackwardMinBlocks) lstm_cell_backward_kernel(
    BackwardOperands<scalar_t> p, int64_t batch, int64_t hidden,
    at::opmath_type<scalar_t>* bias_partial) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t columns = hidden / kVec;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < columns;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t col = c * kVec;
    opmath_t bias_sum[4][kVec] = {};
    for (int64_t row = blockIdx.y; row < batch; row += gridDim.y) {
      opmath_t act[4][kVec], cx[kVec], grad_hy[kVec], grad_cy[kVec];
#pragma unroll
      for (int k = 0; k < 4; ++k) load_at<scalar_t, kVec>(p.workspace, row, k * hidden + col, act[k]);
      load_at<scalar_t, kVec>(p.cx, row, col, cx);
      load_at<scalar_t, kVec>(p.grad_hy, row, col, grad_hy);
      load_at<scalar_t, kVec>(p.grad_cy, row, col, grad_cy);
      opmath_t grad_gate[4][kVec], grad_cx[kVec];
#pragma unroll
      for (int j = 0; j < kVec; ++j) {
        const LstmGates<opmath_t> gates{act[0][j], act[1][j], act[2][j], act[3][j]};
        const auto g = lstm_cell_gates_backward(gates, cx[j], grad_hy[j], grad_cy[j]);
        grad_gate[0][j] = g.gate_i;
        grad_gate[1][j] = g.gate_f;
        grad_gate[2][j] = g.gate_g;
        grad_gate[3][j] = g.gate_o;
        grad_cx[j] = g.cx;
      }
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        store_at<scalar_t, kVec>(p.grad_gates, row, k * hidden + col, grad_gate[k]);
        if constexpr (kBiasSum) {
#pragma unroll
          for (int j = 0; j < kVec; ++j) {
            // the gradient as stored: what autograd would sum over the batch
            bias_sum[k][j] += static_cast<opmath_t>(static_cast<scalar_t>(grad_gate[k][j]));
          }
        }
      }
      store_at<scalar_t, kVec>(p.grad_cx, row, col, grad_cx);
    }
    if constexpr (kBiasSum) {
#pragma unroll
      for (int k = 0; k < 4; ++k) {
#pragma unroll
        for (int j = 0; j < kVec; ++j) {
          bias_partial[blockIdx.y * 4 * hidden + k * hidden + col + j] = bias_sum[k][j];
        }
      }
    }
  }
}

// Whether every operand allows kVec-element accesses along the hidden dim.
template <typename scalar_t>
bool vectorizable(std::initializer_list<at::Tensor> tensors, int64_t hidden, int vec) {
  if (hidden % vec != 0) {
    return false;
  }
  for (const auto& t : tensors) {
    if (!t.defined()) {
      continue;
    }
    const bool unit_columns = t.stride(-1) == 1 || t.size(-1) == 1;
    const bool aligned_rows = t.dim() == 1 || t.stride(0) % vec == 0 || t.size(0) == 1;
    if (!unit_columns || !aligned_rows || !cuda::is_aligned(t.const_data_ptr(), vec * sizeof(scalar_t))) {
      return false;
    }
  }
  return true;
}

// Threads along a row (kVec units each), row_groups blocks over the rows.
template <int kVec>
std::pair<dim3, dim3> grid_for(int64_t hidden, int64_t row_groups) {
  const int64_t columns = hidden / kVec;
  const int threads = static_cast<int>(std::min<int64_t>(cuda::kThreads, (columns + 31) / 32 * 32));
  const dim3 grid(
      static_cast<unsigned>(std::min<int64_t>((columns + threads - 1) / threads, 65535)),
      static_cast<unsigned>(std::min<int64_t>(row_groups, 65535)));
  return {grid, dim3(threads)};
}

// The forward's grid: as grid_for, with narrower blocks (down to two warps)
// where 256-thread blocks would leave SMs without work ((64, 512) filled 64
// blocks on 132 SMs).
template <int kVec>
std::pair<dim3, dim3> forward_grid_for(int64_t hidden, int64_t batch) {
  auto [grid, block] = grid_for<kVec>(hidden, batch);
  const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const int64_t columns = hidden / kVec;
  int threads = static_cast<int>(block.x);
  while (threads > 64 && static_cast<int64_t>(grid.x) * grid.y < 2 * sms) {
    threads /= 2;
    grid.x = static_cast<unsigned>(std::min<int64_t>((columns + threads - 1) / threads, 65535));
  }
  return {grid, dim3(threads)};
}

template <typename scalar_t, int kVec, bool kWorkspace>
void launch_forward(const ForwardOperands<scalar_t>& p, int biases, int64_t batch, int64_t hidden) {
  const auto [grid, block] = forward_grid_for<kVec>(hidden, batch);
  auto stream = at::cuda::getCurrentCUDAStream();
  switch (biases) {
    case 0: lstm_cell_forward_kernel<scalar_t, kVec, 0, kWorkspace><<<grid, block, 0, stream>>>(p, batch, hidden); break;
    case 1: lstm_cell_forward_kernel<scalar_t, kVec, 1, kWorkspace><<<grid, block, 0, stream>>>(p, batch, hidden); break;
    default: lstm_cell_forward_kernel<scalar_t, kVec, 2, kWorkspace><<<grid, block, 0, stream>>>(p, batch, hidden); break;
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Runs the forward into hy, cy and, when defined, the workspace.
void lstm_cell_forward_into(const LstmArgs& args, const LstmOutputs& out) {
  const at::Tensor& hy = out.hy;
  const at::Tensor& cy = out.cy;
  const at::Tensor& workspace = out.workspace;
  const int64_t batch = args.shape.batch, hidden = args.shape.hidden;
  if (batch == 0 || hidden == 0) {
    return;
  }
  const at::Tensor& input_gates = args.inputs[0];
  const at::Tensor& hidden_gates = args.inputs[1];
  const at::Tensor& cx = args.inputs[2];
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, cx.scalar_type(), "lstm_cell_cuda", [&] {
    // with one bias it is passed first (kBiases == 1 reads b_ih only)
    const at::Tensor& b_ih = args.optional[0];
    const at::Tensor& b_hh = args.optional[1];
    const at::Tensor& first_bias = b_ih.defined() ? b_ih : b_hh;
    const at::Tensor& second_bias = b_ih.defined() ? b_hh : at::Tensor();
    const ForwardOperands<scalar_t> p{
        strided<const scalar_t>(input_gates), strided<const scalar_t>(hidden_gates),
        strided<const scalar_t>(first_bias), strided<const scalar_t>(second_bias),
        strided<const scalar_t>(cx), strided<scalar_t>(hy), strided<scalar_t>(cy),
        strided<scalar_t>(workspace)};
    const int biases = (first_bias.defined() ? 1 : 0) + (second_bias.defined() ? 1 : 0);
    constexpr int kVec = sizeof(scalar_t) >= 8 ? 1 : 8 / sizeof(scalar_t);  // 8-byte accesses
    const bool vector = kVec > 1 && vectorizable<scalar_t>(
        {input_gates, hidden_gates, first_bias, second_bias, cx, hy, cy, workspace}, hidden, kVec);
    if (workspace.defined()) {
      vector ? launch_forward<scalar_t, kVec, true>(p, biases, batch, hidden)
             : launch_forward<scalar_t, 1, true>(p, biases, batch, hidden);
    } else {
      vector ? launch_forward<scalar_t, kVec, false>(p, biases, batch, hidden)
             : launch_forward<scalar_t, 1, false>(p, biases, batch, hidden);
    }
  });
}

// Second stage of the bias gradient: sums the [groups, columns] partial sums
// over the groups in an order fixed by `groups` alone (lane l of kLanes adds
// groups l, l + kLanes, ... in turn; the lanes are then added in order), so
// the bits depend on the shape only, not on the GPU (ATen's sum splits its
// work by the SM count). Threads of a warp take consecutive columns.
constexpr int kSumLanes = 8;
constexpr int kSumColumns = cuda::kThreads / kSumLanes;

template <typename opmath_t, typename scalar_t>
__global__ void __launch_bounds__(cuda::kThreads) sum_groups_in_fixed_order(
    const opmath_t* partial, int64_t groups, int64_t columns, scalar_t* out) {
  __shared__ opmath_t lane_sums[kSumLanes][kSumColumns];
  const int column_in_block = threadIdx.x % kSumColumns;
  const int lane = threadIdx.x / kSumColumns;
  const int64_t column = static_cast<int64_t>(blockIdx.x) * kSumColumns + column_in_block;
  opmath_t sum = 0;
  if (column < columns) {
    for (int64_t g = lane; g < groups; g += kSumLanes) {
      sum += partial[g * columns + column];
    }
  }
  lane_sums[lane][column_in_block] = sum;
  __syncthreads();
  if (lane == 0 && column < columns) {
    opmath_t total = lane_sums[0][column_in_block];
#pragma unroll
    for (int l = 1; l < kSumLanes; ++l) {
      total += lane_sums[l][column_in_block];
    }
    out[column] = static_cast<scalar_t>(total);
  }
}

// Rows each backward thread walks when it also sums the bias gradient: enough
// to make the partial sums (row_groups x 4H) small against the gate gradient,
// few enough to keep 2^18 threads busy. A function of the shape only, so the
// summation order, and the bits of the bias gradient, do not depend on the GPU.
int64_t backward_row_groups(int64_t batch, int64_t columns) {
  constexpr int64_t kMaxRowsPerThread = 16, kBusyThreads = int64_t{1} << 18;
  const int64_t rows_per_thread =
      std::clamp<int64_t>(batch * columns / kBusyThreads, 1, kMaxRowsPerThread);
  return std::min<int64_t>((batch + rows_per_thread - 1) / rows_per_thread, 65535);
}

template <typename scalar_t, int kVec>
at::Tensor launch_backward(const BackwardOperands<scalar_t>& p, int64_t batch, int64_t hidden, bool has_bias,
                           const at::TensorOptions& options) {
  using opmath_t = at::opmath_type<scalar_t>;
  auto stream = at::cuda::getCurrentCUDAStream();
  if (!has_bias) {
    const auto [grid, block] = grid_for<kVec>(hidden, batch);
    lstm_cell_backward_kernel<scalar_t, kVec, false><<<grid, block, 0, stream>>>(p, batch, hidden, nullptr);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return at::Tensor();
  }
  const int64_t row_groups = backward_row_groups(batch, hidden / kVec);
  auto partial = at::empty({row_groups, 4 * hidden}, options.dtype(c10::CppTypeToScalarType<opmath_t>::value));
  const auto [grid, block] = grid_for<kVec>(hidden, row_groups);
  auto* partial_ptr = static_cast<opmath_t*>(partial.mutable_data_ptr());
  lstm_cell_backward_kernel<scalar_t, kVec, true><<<grid, block, 0, stream>>>(p, batch, hidden, partial_ptr);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  auto grad_bias = at::empty({4 * hidden}, options);
  const int64_t columns = 4 * hidden;
  const auto sum_blocks = static_cast<unsigned>((columns + kSumColumns - 1) / kSumColumns);
  sum_groups_in_fixed_order<opmath_t, scalar_t><<<sum_blocks, cuda::kThreads, 0, stream>>>(
      partial_ptr, row_groups, columns, grad_bias.mutable_data_ptr<scalar_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return grad_bias;
}

// hy, cy and, with `training`, the workspace (else undefined), in the caller's
// layout. Both take their arguments checked (LstmCellOp::impl_kernels).
std::tuple<at::Tensor, at::Tensor, at::Tensor> lstm_cell_cuda(const LstmArgs& args, bool training) {
  c10::cuda::CUDAGuard device_guard(args.inputs[2].device());
  const LstmOutputs out(args, training);
  lstm_cell_forward_into(args, out);
  return out.returned(args.shape);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lstm_cell_backward_cuda(const LstmBackwardArgs& args, bool has_bias) {
  const int64_t batch = args.shape.batch, hidden = args.shape.hidden;
  c10::cuda::CUDAGuard device_guard(args.cx.device());
  auto grad_gates = at::empty({batch, 4 * hidden}, args.cx.options());
  auto grad_cx = at::empty({batch, hidden}, args.cx.options());
  at::Tensor grad_bias;
  if (batch > 0 && hidden > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, args.cx.scalar_type(), "lstm_cell_backward_cuda", [&] {
      const BackwardOperands<scalar_t> p{
          strided<const scalar_t>(args.workspace), strided<const scalar_t>(args.cx),
          strided<const scalar_t>(args.grad_hy), strided<const scalar_t>(args.grad_cy),
          strided<scalar_t>(grad_gates), strided<scalar_t>(grad_cx)};
      constexpr int kVec = 16 / sizeof(scalar_t);
      const bool vector = vectorizable<scalar_t>(
          {args.workspace, args.cx, args.grad_hy, args.grad_cy, grad_gates, grad_cx}, hidden, kVec);
      grad_bias = vector ? launch_backward<scalar_t, kVec>(p, batch, hidden, has_bias, args.cx.options())
                         : launch_backward<scalar_t, 1>(p, batch, hidden, has_bias, args.cx.options());
    });
  }
  if (!grad_bias.defined()) {  // no bias, or nothing to sum
    grad_bias = has_bias ? at::zeros({4 * hidden}, args.cx.options()) : at::empty({0}, args.cx.options());
  }
  return {in_caller_layout(grad_gates, args.shape), in_caller_layout(grad_cx, args.shape), grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(super_lstm, CUDA, m) {
  LstmCellOp::impl_kernels<&lstm_cell_cuda, &lstm_cell_backward_cuda>(m);
}

}  // namespace torchops
