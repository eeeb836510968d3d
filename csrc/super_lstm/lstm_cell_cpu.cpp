// The CPU entry points of super_lstm::lstm_cell, _lstm_cell_forward and
// _lstm_cell_backward: checks, outputs and the TensorIterator over [B, H] gate
// views of the [B, 4H] tensors (no copies, strided or not); the loops run
// through the stubs of cpu/lstm_cell_kernel.h, at the CPU capability ATen runs at.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "common/raw_views.h"
#include "super_lstm/cpu/lstm_cell_kernel.h"
#include "super_lstm/lstm_cell.h"

namespace at::native {
DEFINE_DISPATCH(torchops_lstm_cell_forward_stub);
DEFINE_DISPATCH(torchops_lstm_cell_backward_stub);
}  // namespace at::native

namespace torchops {
namespace {

// Adds the four [B, H] gate views of a [B, 4H] tensor (or [4H] bias).
void add_gates(at::TensorIteratorConfig& config, const at::Tensor& gates, int64_t hidden, bool output) {
  for (int k = 0; k < 4; ++k) {
    if (output) {
      config.add_owned_output(raw_narrow(gates, -1, k * hidden, hidden));
    } else {
      config.add_owned_const_input(raw_narrow(gates, -1, k * hidden, hidden));
    }
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
  // with one bias it is passed first (the one-bias loop reads the first only)
  for (const auto& bias : {args.b_ih, args.b_hh}) {
    if (bias.defined()) {
      add_gates(config, bias, args.hidden, /*output=*/false);
    }
  }
  config.add_owned_const_input(args.cx);
  auto iter = config.build();
  const int biases = (args.b_ih.defined() ? 1 : 0) + (args.b_hh.defined() ? 1 : 0);
  at::native::torchops_lstm_cell_forward_stub(at::kCPU, iter, biases, workspace.defined());
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
  if (!args.batched) {  // back to the caller's [H] / [4H]
    return {hy.view(cx.sizes()), cy.view(cx.sizes()), training ? workspace.view(input_gates.sizes()) : workspace};
  }
  return {hy, cy, workspace};
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
  at::native::torchops_lstm_cell_backward_stub(at::kCPU, iter);
  // the bias gradient: a deterministic reduction over the batch
  auto grad_bias = has_bias ? grad_gates.sum(0) : at::empty({0}, grad_gates.options());
  if (!args.batched) {
    return {grad_gates.view(workspace.sizes()), grad_cx.view(cx.sizes()), grad_bias};
  }
  return {grad_gates, grad_cx, grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(super_lstm, CPU, m) {
  m.impl("lstm_cell", &lstm_cell_cpu);
  m.impl("_lstm_cell_forward", &lstm_cell_forward_cpu);
  m.impl("_lstm_cell_backward", &lstm_cell_backward_cpu);
}

}  // namespace torchops
