// CPU kernels of super_lstm::lstm_cell and its backward. Each gate is a
// [B, H] view of the [B, 4H] gate tensors (no copies, strided or not);
// TensorIterator broadcasts the biases and threads over the batch, and
// cpu/elementwise vectorizes along H.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "common/cpu_elementwise.h"
#include "super_lstm/lstm_cell.h"
#include "super_lstm/lstm_cell_math.h"

namespace torchops {
namespace {

// Adds the four [B, H] gate views of a [B, 4H] tensor (or [4H] bias) as inputs.
void add_gates(at::TensorIteratorConfig& config, const at::Tensor& gates, int64_t hidden) {
  for (int k = 0; k < 4; ++k) {
    config.add_owned_const_input(gates.narrow(-1, k * hidden, hidden));
  }
}

// TensorIterator takes its outputs first, then the gate, bias and cx inputs.
at::TensorIteratorConfig gate_iterator(
    const detail::LstmArgs& args, std::initializer_list<at::Tensor> outputs) {
  at::TensorIteratorConfig config;
  config.set_check_mem_overlap(false);  // outputs are fresh, inputs are read only
  for (const auto& out : outputs) {
    config.add_owned_output(out);
  }
  add_gates(config, args.input_gates, args.hidden);
  add_gates(config, args.hidden_gates, args.hidden);
  if (args.b_ih.defined()) {
    add_gates(config, args.b_ih, args.hidden);
  }
  if (args.b_hh.defined()) {
    add_gates(config, args.b_hh, args.hidden);
  }
  config.add_owned_const_input(args.cx);
  return config;
}

// Each hidden unit costs 5 (forward) or 6 (backward) exp/tanh evaluations,
// some 30 times an add: threads pay off from a few thousand units on, not
// from ATen's default of 32768 elements.
constexpr int64_t kUnitsPerThread = 2048;

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

template <int kBiases>
void forward_loop(at::TensorIteratorBase& iter) {
  constexpr size_t kIn = 8 + 4 * kBiases + 1;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "lstm_cell_cpu", [&] {
    cpu::elementwise_kernel<scalar_t, 2, kIn>(iter, [](const auto& in) {
      using T = typename std::decay_t<decltype(in)>::value_type;
      const auto s = lstm_cell_formula<T>(
          pre_activation<kBiases>(in, 0), pre_activation<kBiases>(in, 1),
          pre_activation<kBiases>(in, 2), pre_activation<kBiases>(in, 3), in[in.size() - 1]);
      return std::array<T, 2>{s.hy, s.cy};
    }, kUnitsPerThread);
  });
}

template <int kBiases>
void backward_loop(at::TensorIteratorBase& iter) {
  constexpr size_t kIn = 8 + 4 * kBiases + 3;  // ..., cx, grad_hy, grad_cy
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "lstm_cell_backward_cpu", [&] {
    cpu::elementwise_kernel<scalar_t, 5, kIn>(iter, [](const auto& in) {
      using T = typename std::decay_t<decltype(in)>::value_type;
      const auto g = lstm_cell_formula_backward<T>(
          pre_activation<kBiases>(in, 0), pre_activation<kBiases>(in, 1),
          pre_activation<kBiases>(in, 2), pre_activation<kBiases>(in, 3), in[in.size() - 3],
          in[in.size() - 2], in[in.size() - 1]);
      return std::array<T, 5>{g.gate_i, g.gate_f, g.gate_g, g.gate_o, g.cx};
    }, kUnitsPerThread);
  });
}

int bias_count(const detail::LstmArgs& args) {
  return (args.b_ih.defined() ? 1 : 0) + (args.b_hh.defined() ? 1 : 0);
}

// The biases as TensorIterator sees them: with one bias, it is the first.
detail::LstmArgs with_bias_first(detail::LstmArgs args) {
  if (!args.b_ih.defined()) {
    std::swap(args.b_ih, args.b_hh);
  }
  return args;
}

std::tuple<at::Tensor, at::Tensor> lstm_cell_cpu(
    const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
    const std::optional<at::Tensor>& b_ih, const std::optional<at::Tensor>& b_hh) {
  const auto args = with_bias_first(
      detail::check_lstm_args("lstm_cell", input_gates, hidden_gates, cx, b_ih, b_hh));
  auto hy = at::empty({args.batch, args.hidden}, args.cx.options());
  auto cy = at::empty({args.batch, args.hidden}, args.cx.options());
  auto config = gate_iterator(args, {hy, cy});
  auto iter = config.build();
  switch (bias_count(args)) {
    case 0: forward_loop<0>(iter); break;
    case 1: forward_loop<1>(iter); break;
    default: forward_loop<2>(iter); break;
  }
  return {hy.view(cx.sizes()), cy.view(cx.sizes())};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lstm_cell_backward_cpu(
    const at::Tensor& grad_hy, const at::Tensor& grad_cy, const at::Tensor& input_gates,
    const at::Tensor& hidden_gates, const at::Tensor& cx, const std::optional<at::Tensor>& b_ih,
    const std::optional<at::Tensor>& b_hh) {
  const auto args = with_bias_first(
      detail::check_lstm_args("lstm_cell_backward", input_gates, hidden_gates, cx, b_ih, b_hh));
  auto grad_gates = at::empty({args.batch, 4 * args.hidden}, args.cx.options());
  auto grad_cx = at::empty({args.batch, args.hidden}, args.cx.options());
  const auto gate = [&](int k) { return grad_gates.narrow(1, k * args.hidden, args.hidden); };
  auto config = gate_iterator(args, {gate(0), gate(1), gate(2), gate(3), grad_cx});
  config.add_owned_const_input(detail::check_state_grad("grad_hy", grad_hy, args));
  config.add_owned_const_input(detail::check_state_grad("grad_cy", grad_cy, args));
  auto iter = config.build();
  switch (bias_count(args)) {
    case 0: backward_loop<0>(iter); break;
    case 1: backward_loop<1>(iter); break;
    default: backward_loop<2>(iter); break;
  }
  // the bias gradient: a deterministic reduction over the batch
  auto grad_bias = bias_count(args) ? grad_gates.sum(0) : at::empty({0}, grad_gates.options());
  return {grad_gates.view(input_gates.sizes()), grad_cx.view(cx.sizes()), grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(super_lstm, CPU, m) {
  m.impl("lstm_cell", &lstm_cell_cpu);
  m.impl("_lstm_cell_backward", &lstm_cell_backward_cpu);
}

}  // namespace torchops
