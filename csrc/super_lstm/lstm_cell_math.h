#pragma once
// The LSTM cell's pointwise part and its gradient, written once for every
// kernel (T: float/double, or at::vec::Vectorized of them on the CPU).
// Gate order along the last dimension is i, f, g, o, as in PyTorch.
#include "common/elementwise.h"

namespace torchops {
inline namespace CPU_CAPABILITY {  // see common/elementwise.h

// The activated gates: sigmoid(i), sigmoid(f), tanh(g), sigmoid(o). Training
// saves them as the workspace that the backward reads.
template <typename T>
struct LstmGates {
  T i, f, g, o;
};

template <typename T>
struct LstmState {
  T hy, cy;
};

// One unit's gates from the pre-activations (bias sums already added).
template <typename T>
C10_HOST_DEVICE inline LstmGates<T> lstm_cell_gates(T pre_i, T pre_f, T pre_g, T pre_o) {
  return {sigmoid(pre_i), sigmoid(pre_f), tanh_(pre_g), sigmoid(pre_o)};
}

template <typename T>
C10_HOST_DEVICE inline T lstm_cell_cy(const LstmGates<T>& gates, T cx) {
  return gates.f * cx + gates.i * gates.g;
}

template <typename T>
C10_HOST_DEVICE inline LstmState<T> lstm_cell_state(const LstmGates<T>& gates, T cx) {
  const T cy = lstm_cell_cy(gates, cx);
  return {gates.o * tanh_(cy), cy};
}

template <typename T>
struct LstmGrads {
  T gate_i, gate_f, gate_g, gate_o;  // gradient of the pre-activation gates
  T cx;
};

// The backward from the saved gates: only tanh(cy) is evaluated again (cy
// itself from the gates and cx), then autograd's chain rule for the eager
// expression.
template <typename T>
C10_HOST_DEVICE inline LstmGrads<T> lstm_cell_gates_backward(
    const LstmGates<T>& gates, T cx, T grad_hy, T grad_cy) {
  const T tanh_cy = tanh_(lstm_cell_cy(gates, cx));
  // hy = o * tanh(cy); cy also leaves the cell
  const T grad_cell = grad_cy + tanh_backward(grad_hy * gates.o, tanh_cy);
  return {sigmoid_backward(grad_cell * gates.g, gates.i), sigmoid_backward(grad_cell * cx, gates.f),
          tanh_backward(grad_cell * gates.i, gates.g), sigmoid_backward(grad_hy * tanh_cy, gates.o),
          grad_cell * gates.f};
}

}  // namespace CPU_CAPABILITY
}  // namespace torchops
