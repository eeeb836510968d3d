// The super_lstm library's definition, with lstm_cell's schemas, autograd and
// autocast kernels from its declaration (lstm_cell.h), and what is its own:
// the shape checks, the backward's arguments and the gradients' mapping.
// Device kernels in lstm_cell_cpu.cpp and cuda/lstm_cell_kernel.cu.
#include "super_lstm/lstm_cell.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include "common/checks.h"
#include "common/cpu_entry.h"

namespace torchops {

std::tuple<at::Tensor, at::Tensor> lstm_cell(
    const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
    const std::optional<at::Tensor>& b_ih, const std::optional<at::Tensor>& b_hh) {
  return LstmCellOp::call(input_gates, hidden_gates, cx, b_ih, b_hh);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> _lstm_cell_forward(
    const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
    const std::optional<at::Tensor>& b_ih, const std::optional<at::Tensor>& b_hh) {
  return LstmCellOp::call_training(input_gates, hidden_gates, cx, b_ih, b_hh);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> _lstm_cell_backward(
    const at::Tensor& grad_hy, const at::Tensor& grad_cy, const at::Tensor& cx,
    const at::Tensor& workspace, bool has_bias) {
  return LstmCellOp::call_backward(grad_hy, grad_cy, cx, workspace, has_bias);
}

namespace {

// t as a [rows, cols] tensor; t itself where it already is one (view() costs
// a dispatch even when it changes nothing).
at::Tensor as_2d(const at::Tensor& t, int64_t rows, int64_t cols) {
  return t.dim() == 2 ? t : t.view({rows, cols});
}

}  // namespace

LstmShape LstmCellDecl::check_shapes(const char* op, declared::Prepared<3, 2, LstmShape>& args) {
  auto& [input_gates, hidden_gates, cx] = args.inputs;
  const int64_t dim = input_gates.dim();
  TORCH_CHECK_VALUE(
      dim == 1 || dim == 2, op, ": expected input_gates of shape [B, 4H] or [4H], but got ",
      format_shape(input_gates.sizes()));
  const int64_t width = input_gates.size(-1);
  TORCH_CHECK_VALUE(
      width % 4 == 0, op, ": expected the last dimension of input_gates to be 4 * hidden_size, "
      "but got ", std::to_string(width), ", which is not a multiple of 4");
  TORCH_CHECK_VALUE(
      hidden_gates.sizes() == input_gates.sizes(), op,
      ": expected hidden_gates of the shape of input_gates ", format_shape(input_gates.sizes()),
      ", but got ", format_shape(hidden_gates.sizes()));
  LstmShape shape{dim == 2 ? input_gates.size(0) : 1, width / 4, dim == 2};
  const auto cx_shape = shape.batched ? std::vector<int64_t>{shape.batch, shape.hidden}
                                      : std::vector<int64_t>{shape.hidden};
  TORCH_CHECK_VALUE(
      cx.sizes() == at::IntArrayRef(cx_shape), op, ": expected cx of shape ",
      format_shape(cx_shape), " (input_gates is ", format_shape(input_gates.sizes()),
      "), but got ", format_shape(cx.sizes()));
  for (size_t j = 0; j < 2; ++j) {
    const auto& bias = args.optional[j];
    TORCH_CHECK_VALUE(
        !bias.defined() || (bias.dim() == 1 && bias.size(0) == width), op, ": expected ", kOptionalArgs[j],
        " of shape [", std::to_string(width), "] (4 * hidden_size), but got ", format_shape(bias.sizes()));
  }
  input_gates = as_2d(input_gates, shape.batch, width);
  hidden_gates = as_2d(hidden_gates, shape.batch, width);
  cx = as_2d(cx, shape.batch, shape.hidden);
  return shape;
}

LstmBackwardArgs LstmCellDecl::Workspace::prepare(
    const char* op, std::array<at::Tensor, 2> grads, std::array<at::Tensor, 2> saved) {
  const auto& [cx, workspace] = saved;
  TORCH_CHECK_VALUE(
      cx.dim() == 1 || cx.dim() == 2, op, ": expected cx of shape [B, H] or [H], but got ",
      format_shape(cx.sizes()));
  const bool batched = cx.dim() == 2;
  const LstmShape shape{batched ? cx.size(0) : 1, cx.size(-1), batched};
  auto workspace_shape = cx.sizes().vec();
  workspace_shape.back() *= 4;
  TORCH_CHECK_VALUE(
      workspace.sizes() == at::IntArrayRef(workspace_shape), op, ": expected workspace of shape ",
      format_shape(workspace_shape), " (cx is ", format_shape(cx.sizes()), "), but got ",
      format_shape(workspace.sizes()));
  // the forward's compute dtype: that of the workspace, promoted with cx's
  const auto dtype = at::promote_types(cx.scalar_type(), workspace.scalar_type());
  const auto as_rows = [&](const at::Tensor& t, int64_t cols) {
    return as_2d(t.scalar_type() == dtype ? t : t.to(dtype), shape.batch, cols);
  };
  LstmBackwardArgs args{{}, {}, as_rows(cx, shape.hidden), as_rows(workspace, 4 * shape.hidden), shape};
  const auto state_grad = [&](const char* name, const at::Tensor& grad) {
    if (!grad.defined()) {  // that output was not used
      return at::zeros({shape.batch, shape.hidden}, args.cx.options());
    }
    TORCH_CHECK_VALUE(
        grad.sizes() == cx.sizes(), op, ": expected ", name, " of the shape of cx ",
        format_shape(cx.sizes()), ", but got ", format_shape(grad.sizes()));
    return as_rows(grad, shape.hidden);
  };
  args.grad_hy = state_grad("grad_hy", grads[0]);
  args.grad_cy = state_grad("grad_cy", grads[1]);
  return args;
}

std::array<at::Tensor, 5> LstmCellDecl::Workspace::input_grads(
    std::tuple<at::Tensor, at::Tensor, at::Tensor>&& grads, const std::array<bool, 2>& present) {
  auto& [grad_gates, grad_cx, grad_bias] = grads;
  // input_gates and hidden_gates enter as a sum: one gradient serves both,
  // and one batch reduction both biases.
  return {grad_gates, grad_gates, std::move(grad_cx), present[0] ? grad_bias : at::Tensor(),
          present[1] ? grad_bias : at::Tensor()};
}

LstmOutputs::LstmOutputs(const LstmArgs& args, bool training) {
  const auto [batch, hidden, batched] = args.shape;
  const auto options = args.inputs[2].options();
  hy = empty_output({batch, hidden}, options);
  cy = empty_output({batch, hidden}, options);
  if (training) {
    workspace = empty_output({batch, 4 * hidden}, options);
  }
}

TORCH_LIBRARY(super_lstm, m) {
  // Fake (meta) kernels for torch.compile / torch.export live in Python.
  m.set_python_module("torchops._fake");
  LstmCellOp::define(m);
}

}  // namespace torchops
