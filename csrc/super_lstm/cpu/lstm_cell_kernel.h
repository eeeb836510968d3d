#pragma once
// The CPU loops of super_lstm::lstm_cell (inference and training forward) and
// its backward, reached through ATen's DispatchStub: cpu/lstm_cell_kernel.cpp
// is compiled once per CPU capability and registers each copy; the stub calls
// the one for the capability ATen itself runs at.
#include <ATen/TensorIterator.h>
#include <ATen/native/DispatchStub.h>

namespace torchops {

// Each hidden unit costs 5 exp/tanh evaluations forward, some 30 times an
// add: threads pay off from a few thousand units on, not from ATen's default
// of 32768 elements.
inline constexpr int64_t kLstmUnitsPerThread = 2048;
// The backward evaluates one tanh per unit: twice the forward's units per
// thread. ATen's default grain kept (64, 256) and (64, 512) on one thread, at
// 1.25x the time of two.
inline constexpr int64_t kLstmBackwardUnitsPerThread = 4096;

}  // namespace torchops

namespace at::native {

// Forward. iter: outputs hy, cy (and with a workspace its four gates i, f, g,
// o), then the four [B, H] gates of input_gates, of hidden_gates, of each of
// the `biases` (0, 1 or 2) biases present, and cx.
using torchops_lstm_cell_forward_fn = void (*)(at::TensorIteratorBase& iter, int biases, bool workspace);
DECLARE_DISPATCH(torchops_lstm_cell_forward_fn, torchops_lstm_cell_forward_stub)

// Backward. iter: outputs the four gate gradients and grad_cx, then the four
// workspace gates, cx, grad_hy and grad_cy.
using torchops_lstm_cell_backward_fn = void (*)(at::TensorIteratorBase& iter);
DECLARE_DISPATCH(torchops_lstm_cell_backward_fn, torchops_lstm_cell_backward_stub)

// The same loops on this thread, without TensorIterator (see
// torchops::cpu::elementwise_kernel_rows): data, row strides and strides (in
// bytes) of the [B, H] operands in the order above, `batch` rows of `hidden`
// units, all of dtype `dtype`.
using torchops_lstm_cell_forward_rows_fn = void (*)(
    char* const* data, const int64_t* row_strides, const int64_t* strides, int64_t batch, int64_t hidden,
    at::ScalarType dtype, int biases, bool workspace);
DECLARE_DISPATCH(torchops_lstm_cell_forward_rows_fn, torchops_lstm_cell_forward_rows_stub)
using torchops_lstm_cell_backward_rows_fn = void (*)(
    char* const* data, const int64_t* row_strides, const int64_t* strides, int64_t batch, int64_t hidden,
    at::ScalarType dtype);
DECLARE_DISPATCH(torchops_lstm_cell_backward_rows_fn, torchops_lstm_cell_backward_rows_stub)

}  // namespace at::native
