// CPU kernels of super_lstm::lstm_cell, its training forward (which also
// writes the workspace of activated gates) and its backward (which reads it).
// Each gate is a [B, H] view of a [B, 4H] tensor (no copies, strided or not);
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

// Adds the four [B, H] gate views of a [B, 4H] tensor (or [4H] bias).
void add_gates(at::TensorIteratorConfig& config, const at::Tensor& gates, int64_t hidden, bool output) {
  for (int k = 0; k < 4; ++k) {
    if (output) {
      config.add_owned_output(gates.narrow(-1, k * hidden, hidden));
    } else {
      config.add_owned_const_input(gates.narrow(-1, k * hidden, hidden));
    }
  }
}

// Each hidden unit costs 5 exp/tanh evaluations forward, some 30 times an
// add: threads pay off from a few thousand units on, not from ATen's default
// of 32768 elements.
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

// Runs the forward into hy, cy and, when defined, the workspace.
void lstm_cell_forward_into(
    const detail::LstmArgs& args, const at::Tensor& hy, const at::Tensor& cy,
    const at::Tensor& workspace) {
  at::TensorIteratorConfig config;
  config.set_check_mem_overlap(false);  // outputs are fresh, inputs are read only
  config.add_owned_output(hy);
  config.add_owned_output(cy);
  if (workspace.defined()) {
    add_gates(config, workspace, args.hidden, /*output=*/true);
  }
  add_gates(config, args.input_gates, args.hidden, /*output=*/false);
  add_gates(config, args.hidden_gates, args.hidden, /*output=*/false);
  // with one bias it is passed first (kBiases == 1 reads the first only)
  for (const auto& bias : {args.b_ih, args.b_hh}) {
    if (bias.defined()) {
      add_gates(config, bias, args.hidden, /*output=*/false);
    }
  }
  config.add_owned_const_input(args.cx);
  auto iter = config.build();
  const int biases = (args.b_ih.defined() ? 1 : 0) + (args.b_hh.defined() ? 1 : 0);
  if (workspace.defined()) {
    forward_loop<true>(iter, biases);
  } else {
    forward_loop<false>(iter, biases);
  }
}

// hy, cy and, in training, the workspace (else undefined) of one forward call.
std::tuple<at::Tensor, at::Tensor, at::Tensor> run_forward(
    const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
    const std::optional<at::Tensor>& b_ih, const std::optional<at::Tensor>& b_hh, bool training) {
  const auto args = detail::check_lstm_args("lstm_cell", input_gates, hidden_gates, cx, b_ih, b_hh);
  auto hy = at::empty({args.batch, args.hidden}, args.cx.options());
  auto cy = at::empty({args.batch, args.hidden}, args.cx.options());
  auto workspace = training ? at::empty({args.batch, 4 * args.hidden}, args.cx.options()) : at::Tensor();
  lstm_cell_forward_into(args, hy, cy, workspace);
  return {hy.view(cx.sizes()), cy.view(cx.sizes()), training ? workspace.view(input_gates.sizes()) : workspace};
}

std::tuple<at::Tensor, at::Tensor> lstm_cell_cpu(
    const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
    const std::optional<at::Tensor>& b_ih, const std::optional<at::Tensor>& b_hh) {
  auto out = run_forward(input_gates, hidden_gates, cx, b_ih, b_hh, /*training=*/false);
  return {std::get<0>(out), std::get<1>(out)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lstm_cell_forward_cpu(
    const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
    const std::optional<at::Tensor>& b_ih, const std::optional<at::Tensor>& b_hh) {
  return run_forward(input_gates, hidden_gates, cx, b_ih, b_hh, /*training=*/true);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lstm_cell_backward_cpu(
    const at::Tensor& grad_hy, const at::Tensor& grad_cy, const at::Tensor& cx,
    const at::Tensor& workspace, bool has_bias) {
  const auto args = detail::check_lstm_backward_args(grad_hy, grad_cy, cx, workspace);
  auto grad_gates = at::empty({args.batch, 4 * args.hidden}, args.cx.options());
  auto grad_cx = at::empty({args.batch, args.hidden}, args.cx.options());
  at::TensorIteratorConfig config;
  config.set_check_mem_overlap(false);  // outputs are fresh, inputs are read only
  add_gates(config, grad_gates, args.hidden, /*output=*/true);
  config.add_owned_output(grad_cx);
  add_gates(config, args.workspace, args.hidden, /*output=*/false);
  config.add_owned_const_input(args.cx);
  config.add_owned_const_input(args.grad_hy);
  config.add_owned_const_input(args.grad_cy);
  auto iter = config.build();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "lstm_cell_backward_cpu", [&] {
    // one tanh per unit: cheap enough for ATen's default grain
    cpu::elementwise_kernel<scalar_t, 5, 7>(iter, [](const auto& in) {
      using T = typename std::decay_t<decltype(in)>::value_type;
      const auto g = lstm_cell_gates_backward<T>({in[0], in[1], in[2], in[3]}, in[4], in[5], in[6]);
      return std::array<T, 5>{g.gate_i, g.gate_f, g.gate_g, g.gate_o, g.cx};
    });
  });
  // the bias gradient: a deterministic reduction over the batch
  auto grad_bias = has_bias ? grad_gates.sum(0) : at::empty({0}, grad_gates.options());
  return {grad_gates.view(workspace.sizes()), grad_cx.view(cx.sizes()), grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(super_lstm, CPU, m) {
  m.impl("lstm_cell", &lstm_cell_cpu);
  m.impl("_lstm_cell_forward", &lstm_cell_forward_cpu);
  m.impl("_lstm_cell_backward", &lstm_cell_backward_cpu);
}

}  // namespace torchops
