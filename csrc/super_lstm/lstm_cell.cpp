// Schema of the super_lstm ops, their C++ entry points and argument checks.
#include "super_lstm/lstm_cell.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/TypeProperties.h>
#include <torch/library.h>

#include "common/checks.h"

namespace torchops {

std::tuple<at::Tensor, at::Tensor> lstm_cell(
    const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
    const std::optional<at::Tensor>& b_ih, const std::optional<at::Tensor>& b_hh) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("super_lstm::lstm_cell", "")
                       .typed<decltype(lstm_cell)>();
  return op.call(input_gates, hidden_gates, cx, b_ih, b_hh);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> _lstm_cell_forward(
    const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
    const std::optional<at::Tensor>& b_ih, const std::optional<at::Tensor>& b_hh) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("super_lstm::_lstm_cell_forward", "")
                       .typed<decltype(_lstm_cell_forward)>();
  return op.call(input_gates, hidden_gates, cx, b_ih, b_hh);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> _lstm_cell_backward(
    const at::Tensor& grad_hy, const at::Tensor& grad_cy, const at::Tensor& cx,
    const at::Tensor& workspace, bool has_bias) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("super_lstm::_lstm_cell_backward", "")
                       .typed<decltype(_lstm_cell_backward)>();
  return op.call(grad_hy, grad_cy, cx, workspace, has_bias);
}

namespace detail {
namespace {

// t in `dtype` and as a [rows, cols] tensor; t itself where it already is one
// (to() and view() cost a dispatch each even when they change nothing).
at::Tensor as_2d(const at::Tensor& t, at::ScalarType dtype, int64_t rows, int64_t cols) {
  const auto converted = t.scalar_type() == dtype ? t : t.to(dtype);
  return converted.dim() == 2 ? converted : converted.view({rows, cols});
}

}  // namespace

LstmArgs check_lstm_args(
    const char* op, const at::Tensor& input_gates, const at::Tensor& hidden_gates,
    const at::Tensor& cx, const std::optional<at::Tensor>& b_ih,
    const std::optional<at::Tensor>& b_hh) {
  check_floating(op, "input_gates", input_gates);
  check_floating(op, "hidden_gates", hidden_gates);
  check_floating(op, "cx", cx);
  LstmArgs args;
  args.b_ih = b_ih.value_or(at::Tensor());
  args.b_hh = b_hh.value_or(at::Tensor());

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
  args.hidden = width / 4;
  args.batched = dim == 2;
  args.batch = args.batched ? input_gates.size(0) : 1;
  const auto cx_shape = args.batched ? std::vector<int64_t>{args.batch, args.hidden}
                                     : std::vector<int64_t>{args.hidden};
  TORCH_CHECK_VALUE(
      cx.sizes() == at::IntArrayRef(cx_shape), op, ": expected cx of shape ",
      format_shape(cx_shape), " (input_gates is ", format_shape(input_gates.sizes()),
      "), but got ", format_shape(cx.sizes()));

  std::vector<at::Tensor> tensors = {input_gates, hidden_gates, cx};
  std::vector<const char*> names = {"input_gates", "hidden_gates", "cx"};
  for (const auto& [bias, name] : {std::pair{args.b_ih, "b_ih"}, std::pair{args.b_hh, "b_hh"}}) {
    if (!bias.defined()) {
      continue;
    }
    check_floating(op, name, bias);
    TORCH_CHECK_VALUE(
        bias.dim() == 1 && bias.size(0) == width, op, ": expected ", name, " of shape [",
        std::to_string(width), "] (4 * hidden_size), but got ", format_shape(bias.sizes()));
    tensors.push_back(bias);
    names.push_back(name);
  }
  check_same_device(op, names, tensors);
  // Mixed dtypes promote as in the eager expression (autocast on the CPU hands
  // over lower-precision gates with a float32 cell state); an input of another
  // dtype than the promoted one is converted, one copy of that input.
  const auto dtype = at::native::result_type(at::ITensorListRef(tensors));
  const auto promoted = [dtype](const at::Tensor& t) {
    return (!t.defined() || t.scalar_type() == dtype) ? t : t.to(dtype);
  };
  args.input_gates = as_2d(input_gates, dtype, args.batch, width);
  args.hidden_gates = as_2d(hidden_gates, dtype, args.batch, width);
  args.cx = as_2d(cx, dtype, args.batch, args.hidden);
  args.b_ih = promoted(args.b_ih);
  args.b_hh = promoted(args.b_hh);
  return args;
}

LstmBackwardArgs check_lstm_backward_args(
    const at::Tensor& grad_hy, const at::Tensor& grad_cy, const at::Tensor& cx,
    const at::Tensor& workspace) {
  constexpr const char* op = "lstm_cell_backward";
  check_defined(op, {"cx", "workspace"}, {cx, workspace});
  check_floating(op, "cx", cx);
  check_floating(op, "workspace", workspace);
  TORCH_CHECK_VALUE(
      cx.dim() == 1 || cx.dim() == 2, op, ": expected cx of shape [B, H] or [H], but got ",
      format_shape(cx.sizes()));
  LstmBackwardArgs args;
  args.batched = cx.dim() == 2;
  args.batch = args.batched ? cx.size(0) : 1;
  args.hidden = cx.size(-1);
  auto workspace_shape = cx.sizes().vec();
  workspace_shape.back() *= 4;
  TORCH_CHECK_VALUE(
      workspace.sizes() == at::IntArrayRef(workspace_shape), op, ": expected workspace of shape ",
      format_shape(workspace_shape), " (cx is ", format_shape(cx.sizes()), "), but got ",
      format_shape(workspace.sizes()));
  check_same_device(op, {"cx", "workspace"}, {cx, workspace});
  // the forward's compute dtype: that of the workspace, promoted with cx's
  const auto dtype = at::promote_types(cx.scalar_type(), workspace.scalar_type());
  args.cx = as_2d(cx, dtype, args.batch, args.hidden);
  args.workspace = as_2d(workspace, dtype, args.batch, 4 * args.hidden);
  const auto state_grad = [&](const char* name, const at::Tensor& grad) {
    if (!grad.defined()) {  // that output was not used
      return at::zeros({args.batch, args.hidden}, args.cx.options());
    }
    check_floating(op, name, grad);
    TORCH_CHECK_VALUE(
        grad.sizes() == cx.sizes(), op, ": expected ", name, " of the shape of cx ",
        format_shape(cx.sizes()), ", but got ", format_shape(grad.sizes()));
    check_same_device(op, {"cx", name}, {cx, grad});
    return as_2d(grad, dtype, args.batch, args.hidden);
  };
  args.grad_hy = state_grad("grad_hy", grad_hy);
  args.grad_cy = state_grad("grad_cy", grad_cy);
  return args;
}

}  // namespace detail

TORCH_LIBRARY(super_lstm, m) {
  m.set_python_module("torchops._fake");
  m.def(
      "lstm_cell(Tensor input_gates, Tensor hidden_gates, Tensor cx, Tensor? b_ih=None, "
      "Tensor? b_hh=None) -> (Tensor, Tensor)",
      {at::Tag::pt2_compliant_tag});
  // training: the forward also returns the workspace, the backward reads it
  m.def(
      "_lstm_cell_forward(Tensor input_gates, Tensor hidden_gates, Tensor cx, Tensor? b_ih=None, "
      "Tensor? b_hh=None) -> (Tensor, Tensor, Tensor)",
      {at::Tag::pt2_compliant_tag});
  m.def(
      "_lstm_cell_backward(Tensor grad_hy, Tensor grad_cy, Tensor cx, Tensor workspace, "
      "bool has_bias) -> (Tensor, Tensor, Tensor)",
      {at::Tag::pt2_compliant_tag});
}

}  // namespace torchops
