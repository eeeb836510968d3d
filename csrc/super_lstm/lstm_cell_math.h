#pragma once
// The LSTM cell's pointwise part and its gradient, written once for every
// kernel (T: float/double, or at::vec::Vectorized of them on the CPU).
// Gate order along the last dimension is i, f, g, o, as in PyTorch.
#include "common/elementwise.h"

namespace torchops {

template <typename T>
struct LstmState {
  T hy, cy;
};

// One unit: pre-activation gates (bias sums already added) and the old cell.
template <typename T>
C10_HOST_DEVICE inline LstmState<T> lstm_cell_formula(T pre_i, T pre_f, T pre_g, T pre_o, T cx) {
  const T i = sigmoid(pre_i), f = sigmoid(pre_f), g = tanh_(pre_g), o = sigmoid(pre_o);
  const T cy = f * cx + i * g;
  return {o * tanh_(cy), cy};
}

template <typename T>
struct LstmGrads {
  T gate_i, gate_f, gate_g, gate_o;  // gradient of the pre-activation gates
  T cx;
};

// Recomputes the activations from the pre-activations (no saved workspace)
// and applies autograd's chain rule for the eager expression.
template <typename T>
C10_HOST_DEVICE inline LstmGrads<T> lstm_cell_formula_backward(
    T pre_i, T pre_f, T pre_g, T pre_o, T cx, T grad_hy, T grad_cy) {
  const T i = sigmoid(pre_i), f = sigmoid(pre_f), g = tanh_(pre_g), o = sigmoid(pre_o);
  const T cy = f * cx + i * g;
  const T tanh_cy = tanh_(cy);
  // hy = o * tanh(cy); cy also leaves the cell
  const T grad_cell = grad_cy + tanh_backward(grad_hy * o, tanh_cy);
  return {sigmoid_backward(grad_cell * g, i), sigmoid_backward(grad_cell * cx, f),
          tanh_backward(grad_cell * i, g), sigmoid_backward(grad_hy * tanh_cy, o),
          grad_cell * f};
}

}  // namespace torchops
