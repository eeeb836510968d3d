// CPU loops of super_lstm::lstm_cell, its training forward (which also writes
// the workspace of activated gates) and its backward (which reads it).
// TensorIterator broadcasts the biases and threads over the batch, and
// cpu/elementwise vectorizes along H. Compiled once per CPU capability
// (torchops/_build.py); the entry points, checks and registration are in
// super_lstm/lstm_cell_cpu.cpp, built for any x86-64.
#include "super_lstm/cpu/lstm_cell_kernel.h"

#include <ATen/Dispatch.h>

#include "common/cpu_elementwise.h"
#include "super_lstm/lstm_cell_math.h"

namespace torchops {
inline namespace CPU_CAPABILITY {
namespace {

// Each hidden unit costs 5 exp/tanh evaluations forward, some 30 times an
// add: threads pay off from a few thousand units on, not from ATen's default
// of 32768 elements.
constexpr int64_t kUnitsPerThread = 2048;
// The backward evaluates one tanh per unit: twice the forward's units per
// thread. ATen's default grain kept (64, 256) and (64, 512) on one thread, at
// 1.25x the time of two.
constexpr int64_t kBackwardUnitsPerThread = 4096;

// Pre-activation gate k (0..3) from the inputs: (ig + hg) + b_ih + b_hh.
template <int kBiases, typename Array>
auto pre_activation(const Array& in, int k) {
  auto pre = in[k] + in[4 + k];
  if constexpr (kBiases == 2) {
    pre = pre + in[8 + k] + in[12 + k];
  } else if constexpr (kBiases == 1) {
    pre = pre + in[8 + k];
  }
  return pre;
}

// Outputs hy, cy (and the four workspace gates); inputs the four gates of
// input_gates, of hidden_gates, of each bias present, then cx.
template <int kBiases, bool kWorkspace>
void forward_loop(at::TensorIteratorBase& iter) {
  static constexpr size_t kIn = 8 + 4 * kBiases + 1;
  static constexpr size_t kOut = kWorkspace ? 6 : 2;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "lstm_cell_cpu", [&] {
    cpu::elementwise_kernel<scalar_t, kOut, kIn>(iter, [](const auto& in) {
      using T = typename std::decay_t<decltype(in)>::value_type;
      const auto gates = lstm_cell_gates<T>(
          pre_activation<kBiases>(in, 0), pre_activation<kBiases>(in, 1),
          pre_activation<kBiases>(in, 2), pre_activation<kBiases>(in, 3));
      const auto s = lstm_cell_state(gates, in[kIn - 1]);
      if constexpr (kWorkspace) {
        return std::array<T, kOut>{s.hy, s.cy, gates.i, gates.f, gates.g, gates.o};
      } else {
        return std::array<T, kOut>{s.hy, s.cy};
      }
    }, kUnitsPerThread);
  });
}

template <bool kWorkspace>
void forward_loop(at::TensorIteratorBase& iter, int biases) {
  switch (biases) {
    case 0: forward_loop<0, kWorkspace>(iter); break;
    case 1: forward_loop<1, kWorkspace>(iter); break;
    default: forward_loop<2, kWorkspace>(iter); break;
  }
}

void lstm_cell_forward_kernel(at::TensorIteratorBase& iter, int biases, bool workspace) {
  if (workspace) {
    forward_loop<true>(iter, biases);
  } else {
    forward_loop<false>(iter, biases);
  }
}

void lstm_cell_backward_kernel(at::TensorIteratorBase& iter) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "lstm_cell_backward_cpu", [&] {
    cpu::elementwise_kernel<scalar_t, 5, 7>(iter, [](const auto& in) {
      using T = typename std::decay_t<decltype(in)>::value_type;
      const auto g = lstm_cell_gates_backward<T>({in[0], in[1], in[2], in[3]}, in[4], in[5], in[6]);
      return std::array<T, 5>{g.gate_i, g.gate_f, g.gate_g, g.gate_o, g.cx};
    }, kBackwardUnitsPerThread);
  });
}

}  // namespace
}  // namespace CPU_CAPABILITY
}  // namespace torchops

namespace at::native {
ALSO_REGISTER_AVX512_DISPATCH(torchops_lstm_cell_forward_stub, &torchops::lstm_cell_forward_kernel)
ALSO_REGISTER_AVX512_DISPATCH(torchops_lstm_cell_backward_stub, &torchops::lstm_cell_backward_kernel)
}  // namespace at::native
