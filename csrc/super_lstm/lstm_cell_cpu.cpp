// The CPU kernels of super_lstm::lstm_cell, _lstm_cell_forward and
// _lstm_cell_backward, given their checked arguments (LstmCellOp::impl_kernels):
// outputs and the TensorIterator over [B, H] gate views of the [B, 4H] tensors
// (no copies, strided or not); the loops run through the stubs of
// cpu/lstm_cell_kernel.h, at the CPU capability ATen runs at.
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
void lstm_cell_forward_into(const LstmArgs& args, const LstmOutputs& out) {
  const at::Tensor& hy = out.hy;
  const at::Tensor& cy = out.cy;
  const at::Tensor& workspace = out.workspace;
  const auto& [input_gates, hidden_gates, cx] = args.inputs;
  const int64_t hidden = args.shape.hidden;
  at::TensorIteratorConfig config;
  config.set_check_mem_overlap(false);  // outputs are fresh, inputs are read only
  config.add_owned_output(hy);
  config.add_owned_output(cy);
  if (workspace.defined()) {
    add_gates(config, workspace, hidden, /*output=*/true);
  }
  add_gates(config, input_gates, hidden, /*output=*/false);
  add_gates(config, hidden_gates, hidden, /*output=*/false);
  // with one bias it is passed first (the one-bias loop reads the first only)
  int biases = 0;
  for (const auto& bias : args.optional) {
    if (bias.defined()) {
      add_gates(config, bias, hidden, /*output=*/false);
      ++biases;
    }
  }
  config.add_owned_const_input(cx);
  auto iter = config.build();
  at::native::torchops_lstm_cell_forward_stub(at::kCPU, iter, biases, workspace.defined());
}

// hy, cy and, with `training`, the workspace (else undefined), in the caller's layout.
std::tuple<at::Tensor, at::Tensor, at::Tensor> lstm_cell_cpu(const LstmArgs& args, bool training) {
  const LstmOutputs out(args, training);
  lstm_cell_forward_into(args, out);
  return out.returned(args.shape);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lstm_cell_backward_cpu(const LstmBackwardArgs& args, bool has_bias) {
  const int64_t batch = args.shape.batch, hidden = args.shape.hidden;
  auto grad_gates = at::empty({batch, 4 * hidden}, args.cx.options());
  auto grad_cx = at::empty({batch, hidden}, args.cx.options());
  at::TensorIteratorConfig config;
  config.set_check_mem_overlap(false);  // outputs are fresh, inputs are read only
  add_gates(config, grad_gates, hidden, /*output=*/true);
  config.add_owned_output(grad_cx);
  add_gates(config, args.workspace, hidden, /*output=*/false);
  config.add_owned_const_input(args.cx);
  config.add_owned_const_input(args.grad_hy);
  config.add_owned_const_input(args.grad_cy);
  auto iter = config.build();
  at::native::torchops_lstm_cell_backward_stub(at::kCPU, iter);
  // the bias gradient: a deterministic reduction over the batch
  auto grad_bias = has_bias ? grad_gates.sum(0) : at::empty({0}, grad_gates.options());
  return {in_caller_layout(grad_gates, args.shape), in_caller_layout(grad_cx, args.shape), grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(super_lstm, CPU, m) {
  LstmCellOp::impl_kernels<&lstm_cell_cpu, &lstm_cell_backward_cpu>(m);
}

}  // namespace torchops
