#pragma once
// The CPU loops of super_lstm::lstm_cell (inference and training forward) and
// its backward, reached through ATen's DispatchStub: cpu/lstm_cell_kernel.cpp
// is compiled once per CPU capability and registers each copy; the stub calls
// the one for the capability ATen itself runs at.
#include <ATen/TensorIterator.h>
#include <ATen/native/DispatchStub.h>

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

}  // namespace at::native
