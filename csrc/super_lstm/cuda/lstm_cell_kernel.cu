// CUDA kernels of super_lstm::lstm_cell and its backward. One thread handles
// kVec consecutive hidden units of one batch row: it reads the four gates of
// both gate tensors, the biases and cx, and writes hy and cy (backward: the
// four gate gradients and cx's). Any 2-D strides are read in place (gates that
// are slices of a larger matmul output need no copy); 16-byte accesses when
// every column stride is 1 and the addresses allow it. Offsets are 64-bit.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>

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

template <typename T>
Strided2d<T> strided(const at::Tensor& t) {
  if (!t.defined()) {
    return {nullptr, 0, 0};
  }
  if (t.dim() == 1) {  // a bias: the same for every row
    return {static_cast<T*>(t.data_ptr()), 0, t.stride(0)};
  }
  return {static_cast<T*>(t.data_ptr()), t.stride(0), t.stride(1)};
}

template <typename scalar_t>
struct LstmOperands {
  Strided2d<const scalar_t> input_gates, hidden_gates, b_ih, b_hh, cx, grad_hy, grad_cy;
  Strided2d<scalar_t> out0, out1;  // forward: hy, cy; backward: grad_gates, grad_cx
};

template <typename scalar_t, int kVec>
__device__ void load(const scalar_t* p, at::opmath_type<scalar_t> (&out)[kVec]) {
  cuda::AlignedVector<scalar_t, kVec> v = *reinterpret_cast<const cuda::AlignedVector<scalar_t, kVec>*>(p);
#pragma unroll
  for (int j = 0; j < kVec; ++j) out[j] = static_cast<at::opmath_type<scalar_t>>(v.val[j]);
}

template <typename scalar_t, int kVec>
__device__ void store(scalar_t* p, const at::opmath_type<scalar_t> (&in)[kVec]) {
  cuda::AlignedVector<scalar_t, kVec> v;
#pragma unroll
  for (int j = 0; j < kVec; ++j) v.val[j] = static_cast<scalar_t>(in[j]);
  *reinterpret_cast<cuda::AlignedVector<scalar_t, kVec>*>(p) = v;
}

// Loads kVec elements at (row, col): one vector access, or kVec strided ones.
template <typename scalar_t, int kVec>
__device__ void load_at(const Strided2d<const scalar_t>& t, int64_t row, int64_t col,
                        at::opmath_type<scalar_t> (&out)[kVec]) {
  if (kVec > 1) {
    load<scalar_t, kVec>(t.at(row, col), out);
  } else {
    out[0] = static_cast<at::opmath_type<scalar_t>>(*t.at(row, col));
  }
}

// Pre-activations of the four gates for kVec units at (row, col).
template <typename scalar_t, int kVec, int kBiases>
__device__ void load_pre_activations(const LstmOperands<scalar_t>& p, int64_t row, int64_t col,
                                     int64_t hidden, at::opmath_type<scalar_t> (&pre)[4][kVec]) {
  using opmath_t = at::opmath_type<scalar_t>;
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    opmath_t ig[kVec], hg[kVec], bi[kVec], bh[kVec];
    load_at<scalar_t, kVec>(p.input_gates, row, k * hidden + col, ig);
    load_at<scalar_t, kVec>(p.hidden_gates, row, k * hidden + col, hg);
    if (kBiases >= 1) load_at<scalar_t, kVec>(p.b_ih, 0, k * hidden + col, bi);
    if (kBiases == 2) load_at<scalar_t, kVec>(p.b_hh, 0, k * hidden + col, bh);
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      opmath_t v = ig[j] + hg[j];
      if (kBiases >= 1) v = v + bi[j];
      if (kBiases == 2) v = v + bh[j];
      pre[k][j] = v;
    }
  }
}

template <typename scalar_t, int kVec, int kBiases, bool kBackward>
__global__ void __launch_bounds__(cuda::kThreads) lstm_cell_kernel(
    LstmOperands<scalar_t> p, int64_t batch, int64_t hidden) {
  using opmath_t = at::opmath_type<scalar_t>;
  const int64_t columns = hidden / kVec;
  for (int64_t row = blockIdx.y; row < batch; row += gridDim.y) {
    for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < columns;
         c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      const int64_t col = c * kVec;
      opmath_t pre[4][kVec], cx[kVec];
      load_pre_activations<scalar_t, kVec, kBiases>(p, row, col, hidden, pre);
      load_at<scalar_t, kVec>(p.cx, row, col, cx);
      if constexpr (!kBackward) {
        opmath_t hy[kVec], cy[kVec];
#pragma unroll
        for (int j = 0; j < kVec; ++j) {
          const auto s = lstm_cell_formula(pre[0][j], pre[1][j], pre[2][j], pre[3][j], cx[j]);
          hy[j] = s.hy;
          cy[j] = s.cy;
        }
        store<scalar_t, kVec>(p.out0.at(row, col), hy);
        store<scalar_t, kVec>(p.out1.at(row, col), cy);
      } else {
        opmath_t grad_hy[kVec], grad_cy[kVec], grad_gate[4][kVec], grad_cx[kVec];
        load_at<scalar_t, kVec>(p.grad_hy, row, col, grad_hy);
        load_at<scalar_t, kVec>(p.grad_cy, row, col, grad_cy);
#pragma unroll
        for (int j = 0; j < kVec; ++j) {
          const auto g = lstm_cell_formula_backward(
              pre[0][j], pre[1][j], pre[2][j], pre[3][j], cx[j], grad_hy[j], grad_cy[j]);
          grad_gate[0][j] = g.gate_i;
          grad_gate[1][j] = g.gate_f;
          grad_gate[2][j] = g.gate_g;
          grad_gate[3][j] = g.gate_o;
          grad_cx[j] = g.cx;
        }
#pragma unroll
        for (int k = 0; k < 4; ++k) store<scalar_t, kVec>(p.out0.at(row, k * hidden + col), grad_gate[k]);
        store<scalar_t, kVec>(p.out1.at(row, col), grad_cx);
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
    if (!unit_columns || !aligned_rows || !cuda::is_aligned(t.data_ptr(), vec * sizeof(scalar_t))) {
      return false;
    }
  }
  return true;
}

template <typename scalar_t, int kVec, bool kBackward>
void launch_with_vec(const LstmOperands<scalar_t>& p, int biases, int64_t batch, int64_t hidden) {
  const int64_t columns = hidden / kVec;
  const int threads = static_cast<int>(std::min<int64_t>(cuda::kThreads, (columns + 31) / 32 * 32));
  const dim3 grid(
      static_cast<unsigned>(std::min<int64_t>((columns + threads - 1) / threads, 65535)),
      static_cast<unsigned>(std::min<int64_t>(batch, 65535)));
  auto stream = at::cuda::getCurrentCUDAStream();
  switch (biases) {
    case 0: lstm_cell_kernel<scalar_t, kVec, 0, kBackward><<<grid, threads, 0, stream>>>(p, batch, hidden); break;
    case 1: lstm_cell_kernel<scalar_t, kVec, 1, kBackward><<<grid, threads, 0, stream>>>(p, batch, hidden); break;
    default: lstm_cell_kernel<scalar_t, kVec, 2, kBackward><<<grid, threads, 0, stream>>>(p, batch, hidden); break;
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <bool kBackward>
void launch(const detail::LstmArgs& args, const at::Tensor& grad_hy, const at::Tensor& grad_cy,
            const at::Tensor& out0, const at::Tensor& out1) {
  if (args.batch == 0 || args.hidden == 0) {
    return;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, args.cx.scalar_type(), "lstm_cell_cuda", [&] {
    // with one bias it is passed first (kBiases == 1 reads b_ih only)
    const at::Tensor& first_bias = args.b_ih.defined() ? args.b_ih : args.b_hh;
    const at::Tensor& second_bias = args.b_ih.defined() ? args.b_hh : at::Tensor();
    LstmOperands<scalar_t> p{
        strided<const scalar_t>(args.input_gates), strided<const scalar_t>(args.hidden_gates),
        strided<const scalar_t>(first_bias), strided<const scalar_t>(second_bias),
        strided<const scalar_t>(args.cx), strided<const scalar_t>(grad_hy),
        strided<const scalar_t>(grad_cy), strided<scalar_t>(out0), strided<scalar_t>(out1)};
    const int biases = (first_bias.defined() ? 1 : 0) + (second_bias.defined() ? 1 : 0);
    constexpr int kVec = 16 / sizeof(scalar_t);
    if (vectorizable<scalar_t>({args.input_gates, args.hidden_gates, first_bias, second_bias, args.cx,
                                grad_hy, grad_cy, out0, out1}, args.hidden, kVec)) {
      launch_with_vec<scalar_t, kVec, kBackward>(p, biases, args.batch, args.hidden);
    } else {
      launch_with_vec<scalar_t, 1, kBackward>(p, biases, args.batch, args.hidden);
    }
  });
}

std::tuple<at::Tensor, at::Tensor> lstm_cell_cuda(
    const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
    const std::optional<at::Tensor>& b_ih, const std::optional<at::Tensor>& b_hh) {
  const auto args = detail::check_lstm_args("lstm_cell", input_gates, hidden_gates, cx, b_ih, b_hh);
  c10::cuda::CUDAGuard device_guard(cx.device());
  auto hy = at::empty({args.batch, args.hidden}, args.cx.options());
  auto cy = at::empty({args.batch, args.hidden}, args.cx.options());
  launch<false>(args, at::Tensor(), at::Tensor(), hy, cy);
  return {hy.view(cx.sizes()), cy.view(cx.sizes())};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lstm_cell_backward_cuda(
    const at::Tensor& grad_hy, const at::Tensor& grad_cy, const at::Tensor& input_gates,
    const at::Tensor& hidden_gates, const at::Tensor& cx, const std::optional<at::Tensor>& b_ih,
    const std::optional<at::Tensor>& b_hh) {
  const auto args =
      detail::check_lstm_args("lstm_cell_backward", input_gates, hidden_gates, cx, b_ih, b_hh);
  c10::cuda::CUDAGuard device_guard(cx.device());
  const auto grad_hy_2d = detail::check_state_grad("grad_hy", grad_hy, args);
  const auto grad_cy_2d = detail::check_state_grad("grad_cy", grad_cy, args);
  auto grad_gates = at::empty({args.batch, 4 * args.hidden}, args.cx.options());
  auto grad_cx = at::empty({args.batch, args.hidden}, args.cx.options());
  launch<true>(args, grad_hy_2d, grad_cy_2d, grad_gates, grad_cx);
  const bool biases = args.b_ih.defined() || args.b_hh.defined();
  // the bias gradient: a deterministic reduction over the batch
  auto grad_bias = biases ? grad_gates.sum(0) : at::empty({0}, grad_gates.options());
  return {grad_gates.view(input_gates.sizes()), grad_cx.view(cx.sizes()), grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(super_lstm, CUDA, m) {
  m.impl("lstm_cell", &lstm_cell_cuda);
  m.impl("_lstm_cell_backward", &lstm_cell_backward_cuda);
}

}  // namespace torchops
