// The CPU kernels of super_lstm::lstm_cell, _lstm_cell_forward and
// _lstm_cell_backward, given their checked arguments (LstmCellOp::impl_kernels):
// outputs and the TensorIterator over [B, H] gate views of the [B, 4H] tensors
// (no copies, strided or not), or, where every operand is contiguous and the
// loop runs on one thread anyway, plain pointers and row strides (building
// the iterator and 16-26 gate views cost more than the loop at small sizes);
// the loops run through the stubs of cpu/lstm_cell_kernel.h, at the CPU
// capability ATen runs at.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <array>

#include "common/cpu_entry.h"
#include "common/raw_views.h"
#include "super_lstm/cpu/lstm_cell_kernel.h"
#include "super_lstm/lstm_cell.h"

namespace at::native {
DEFINE_DISPATCH(torchops_lstm_cell_forward_stub);
DEFINE_DISPATCH(torchops_lstm_cell_backward_stub);
DEFINE_DISPATCH(torchops_lstm_cell_forward_rows_stub);
DEFINE_DISPATCH(torchops_lstm_cell_backward_rows_stub);
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

// The operands of a loop for the rows kernels, in bytes: each one's data,
// row stride and stride along H; the four gates of a [B, 4H] tensor (or of a
// [4H] bias, row stride 0) are four operands, as raw_narrow's views.
template <size_t N>
struct RowOperands {
  std::array<char*, N> data{};
  std::array<int64_t, N> row_strides{};
  std::array<int64_t, N> strides{};
  size_t size = 0;
  void add(const at::Tensor& t, int64_t offset = 0) {
    const auto bytes = static_cast<int64_t>(t.element_size());
    data[size] = static_cast<char*>(const_cast<void*>(t.const_data_ptr())) + offset * bytes;
    row_strides[size] = t.dim() == 2 ? t.stride(0) * bytes : 0;
    strides[size++] = t.stride(-1) * bytes;
  }
  void add_gates(const at::Tensor& t, int64_t hidden) {
    for (int k = 0; k < 4; ++k) {
      add(t, k * hidden * t.stride(-1));
    }
  }
};

// Runs the forward into hy, cy and, when defined, the workspace.
void lstm_cell_forward_into(const LstmArgs& args, const LstmOutputs& out) {
  const at::Tensor& hy = out.hy;
  const at::Tensor& cy = out.cy;
  const at::Tensor& workspace = out.workspace;
  const auto& [input_gates, hidden_gates, cx] = args.inputs;
  const int64_t batch = args.shape.batch, hidden = args.shape.hidden;
  // with one bias it is passed first (the one-bias loop reads the first only)
  int biases = 0;
  for (const auto& bias : args.optional) {
    biases += bias.defined() ? 1 : 0;
  }
  // On one thread: the rows loop, the same calls of the loop body as
  // TensorIterator's (the fresh outputs keep H its fastest dimension, and the
  // gate views keep it from merging the batch into it).
  if (batch * hidden > 0 && serial_without_iterator(batch * hidden, kLstmUnitsPerThread)) {
    RowOperands<6 + 17> ops;
    ops.add(hy);
    ops.add(cy);
    if (workspace.defined()) {
      ops.add_gates(workspace, hidden);
    }
    ops.add_gates(input_gates, hidden);
    ops.add_gates(hidden_gates, hidden);
    for (const auto& bias : args.optional) {
      if (bias.defined()) {
        ops.add_gates(bias, hidden);
      }
    }
    ops.add(cx);
    at::native::torchops_lstm_cell_forward_rows_stub(
        at::kCPU, ops.data.data(), ops.row_strides.data(), ops.strides.data(), batch, hidden, hy.scalar_type(),
        biases, workspace.defined());
    return;
  }
  at::TensorIteratorConfig config;
  config.set_check_mem_overlap(false);  // outputs are fresh, inputs are read only
  config.add_owned_output(hy);
  config.add_owned_output(cy);
  if (workspace.defined()) {
    add_gates(config, workspace, hidden, /*output=*/true);
  }
  add_gates(config, input_gates, hidden, /*output=*/false);
  add_gates(config, hidden_gates, hidden, /*output=*/false);
  for (const auto& bias : args.optional) {
    if (bias.defined()) {
      add_gates(config, bias, hidden, /*output=*/false);
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
  auto grad_gates = empty_output({batch, 4 * hidden}, args.cx.options());
  auto grad_cx = empty_output({batch, hidden}, args.cx.options());
  if (batch * hidden > 0 && serial_without_iterator(batch * hidden, kLstmBackwardUnitsPerThread)) {
    RowOperands<12> ops;  // as in the forward
    ops.add_gates(grad_gates, hidden);
    ops.add(grad_cx);
    ops.add_gates(args.workspace, hidden);
    ops.add(args.cx);
    ops.add(args.grad_hy);
    ops.add(args.grad_cy);
    at::native::torchops_lstm_cell_backward_rows_stub(
        at::kCPU, ops.data.data(), ops.row_strides.data(), ops.strides.data(), batch, hidden,
        grad_cx.scalar_type());
  } else {
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
  }
  // the bias gradient: a deterministic reduction over the batch
  auto grad_bias = has_bias ? grad_gates.sum(0) : at::empty({0}, grad_gates.options());
  return {in_caller_layout(grad_gates, args.shape), in_caller_layout(grad_cx, args.shape), grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(super_lstm, CPU, m) {
  LstmCellOp::impl_kernels<&lstm_cell_cpu, &lstm_cell_backward_cpu>(m);
}

}  // namespace torchops
