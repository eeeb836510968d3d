// CPU loops of super_lstm::lstm_cell, its training forward (which also writes
// the workspace of activated gates) and its backward (which reads it).
// TensorIterator broadcasts the biases and threads over the batch, and
// cpu/elementwise vectorizes along H; the rows kernels run the same loops on
// one thread over contiguous operands, without TensorIterator. Compiled once
// per CPU capability (torchops/_build.py); the entry points, checks and
// registration are in super_lstm/lstm_cell_cpu.cpp, built for any x86-64.
#include "super_lstm/cpu/lstm_cell_kernel.h"

#include <ATen/Dispatch.h>

#include "common/cpu_elementwise.h"
#include "super_lstm/lstm_cell_math.h"

namespace torchops {
inline namespace CPU_CAPABILITY {
namespace {

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

// The forward of one unit. Outputs hy, cy (and the four workspace gates);
// inputs the four gates of input_gates, of hidden_gates, of each bias
// present, then cx.
template <int kBiases, bool kWorkspace>
struct Forward {
  static constexpr size_t kIn = 8 + 4 * kBiases + 1;
  static constexpr size_t kOut = kWorkspace ? 6 : 2;
  template <typename Array>
  auto operator()(const Array& in) const {
    using T = typename Array::value_type;
    const auto gates = lstm_cell_gates<T>(
        pre_activation<kBiases>(in, 0), pre_activation<kBiases>(in, 1),
        pre_activation<kBiases>(in, 2), pre_activation<kBiases>(in, 3));
    const auto s = lstm_cell_state(gates, in[kIn - 1]);
    if constexpr (kWorkspace) {
      return std::array<T, kOut>{s.hy, s.cy, gates.i, gates.f, gates.g, gates.o};
    } else {
      return std::array<T, kOut>{s.hy, s.cy};
    }
  }
};

// The backward of one unit: outputs the four gate gradients and grad_cx;
// inputs the four workspace gates, cx, grad_hy and grad_cy.
struct Backward {
  template <typename Array>
  auto operator()(const Array& in) const {
    using T = typename Array::value_type;
    const auto g = lstm_cell_gates_backward<T>({in[0], in[1], in[2], in[3]}, in[4], in[5], in[6]);
    return std::array<T, 5>{g.gate_i, g.gate_f, g.gate_g, g.gate_o, g.cx};
  }
};

// Calls f(Forward<kBiases, kWorkspace>{}) for the call's biases and workspace.
template <typename F>
void with_forward(int biases, bool workspace, const F& f) {
  const auto with = [&](auto has_workspace) {
    constexpr bool kWorkspace = decltype(has_workspace)::value;
    switch (biases) {
      case 0: f(Forward<0, kWorkspace>{}); break;
      case 1: f(Forward<1, kWorkspace>{}); break;
      default: f(Forward<2, kWorkspace>{}); break;
    }
  };
  if (workspace) {
    with(std::true_type{});
  } else {
    with(std::false_type{});
  }
}

void lstm_cell_forward_kernel(at::TensorIteratorBase& iter, int biases, bool workspace) {
  with_forward(biases, workspace, [&](auto op) {
    using Op = decltype(op);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "lstm_cell_cpu", [&] {
      cpu::elementwise_kernel<scalar_t, Op::kOut, Op::kIn>(iter, op, kLstmUnitsPerThread);
    });
  });
}

void lstm_cell_forward_rows_kernel(
    char* const* data, const int64_t* row_strides, const int64_t* strides, int64_t batch, int64_t hidden,
    at::ScalarType dtype, int biases, bool workspace) {
  with_forward(biases, workspace, [&](auto op) {
    using Op = decltype(op);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "lstm_cell_cpu", [&] {
      cpu::elementwise_kernel_rows<scalar_t, Op::kOut, Op::kIn>(data, row_strides, strides, batch, hidden, op);
    });
  });
}

void lstm_cell_backward_kernel(at::TensorIteratorBase& iter) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "lstm_cell_backward_cpu", [&] {
    cpu::elementwise_kernel<scalar_t, 5, 7>(iter, Backward{}, kLstmBackwardUnitsPerThread);
  });
}

void lstm_cell_backward_rows_kernel(
    char* const* data, const int64_t* row_strides, const int64_t* strides, int64_t batch, int64_t hidden,
    at::ScalarType dtype) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "lstm_cell_backward_cpu", [&] {
    cpu::elementwise_kernel_rows<scalar_t, 5, 7>(data, row_strides, strides, batch, hidden, Backward{});
  });
}

}  // namespace
}  // namespace CPU_CAPABILITY
}  // namespace torchops

namespace at::native {
ALSO_REGISTER_AVX512_DISPATCH(torchops_lstm_cell_forward_stub, &torchops::lstm_cell_forward_kernel)
ALSO_REGISTER_AVX512_DISPATCH(torchops_lstm_cell_backward_stub, &torchops::lstm_cell_backward_kernel)
ALSO_REGISTER_AVX512_DISPATCH(torchops_lstm_cell_forward_rows_stub, &torchops::lstm_cell_forward_rows_kernel)
ALSO_REGISTER_AVX512_DISPATCH(torchops_lstm_cell_backward_rows_stub, &torchops::lstm_cell_backward_rows_kernel)
}  // namespace at::native
