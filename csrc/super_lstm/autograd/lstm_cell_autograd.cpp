// Autograd kernel of super_lstm::lstm_cell, in C++ so gradients exist in a
// C++ process too. The backward recomputes the gate activations from the
// saved inputs rather than saving a workspace of them: the bytes moved are
// about equal (see benchmarks/results), and inference writes no workspace.
#include <torch/autograd.h>
#include <torch/library.h>

#include "common/checks.h"
#include "super_lstm/lstm_cell.h"

namespace torchops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::optional<at::Tensor> optional_of(const at::Tensor& t) {
  return t.defined() ? std::optional<at::Tensor>(t) : std::nullopt;
}

class LstmCellFunction : public torch::autograd::Function<LstmCellFunction> {
 public:
  static variable_list forward(
      AutogradContext* ctx, const at::Tensor& input_gates, const at::Tensor& hidden_gates,
      const at::Tensor& cx, const std::optional<at::Tensor>& b_ih,
      const std::optional<at::Tensor>& b_hh) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward(
        {input_gates, hidden_gates, cx, b_ih.value_or(at::Tensor()), b_hh.value_or(at::Tensor())});
    auto [hy, cy] = lstm_cell(input_gates, hidden_gates, cx, b_ih, b_hh);
    return {hy, cy};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& b_ih = saved[3];
    const auto& b_hh = saved[4];
    auto [grad_gates, grad_cx, grad_bias] = _lstm_cell_backward(
        grads[0], grads[1], saved[0], saved[1], saved[2], optional_of(b_ih), optional_of(b_hh));
    // input_gates and hidden_gates enter as a sum: one gradient serves both,
    // and one batch reduction both biases.
    return {grad_gates, grad_gates, grad_cx, b_ih.defined() ? grad_bias : at::Tensor(),
            b_hh.defined() ? grad_bias : at::Tensor()};
  }
};

class LstmCellBackwardFunction : public torch::autograd::Function<LstmCellBackwardFunction> {
 public:
  static variable_list forward(
      AutogradContext* /*ctx*/, const at::Tensor& grad_hy, const at::Tensor& grad_cy,
      const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
      const std::optional<at::Tensor>& b_ih, const std::optional<at::Tensor>& b_hh) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [a, b, c] = _lstm_cell_backward(grad_hy, grad_cy, input_gates, hidden_gates, cx, b_ih, b_hh);
    return {a, b, c};
  }

  static variable_list backward(AutogradContext* /*ctx*/, variable_list /*grads*/) {
    TORCH_CHECK(false, "lstm_cell: double backward (gradients of gradients) is not supported");
  }
};

std::tuple<at::Tensor, at::Tensor> lstm_cell_autograd(
    const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
    const std::optional<at::Tensor>& b_ih, const std::optional<at::Tensor>& b_hh) {
  check_defined("lstm_cell", {"input_gates", "hidden_gates", "cx"}, {input_gates, hidden_gates, cx});
  auto out = LstmCellFunction::apply(input_gates, hidden_gates, cx, b_ih, b_hh);
  return {out[0], out[1]};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lstm_cell_backward_autograd(
    const at::Tensor& grad_hy, const at::Tensor& grad_cy, const at::Tensor& input_gates,
    const at::Tensor& hidden_gates, const at::Tensor& cx, const std::optional<at::Tensor>& b_ih,
    const std::optional<at::Tensor>& b_hh) {
  check_defined("lstm_cell_backward", {"input_gates", "hidden_gates", "cx"}, {input_gates, hidden_gates, cx});
  // an unused output's gradient may be None: zeros, as the kernels read them
  const auto state_grad = [&](const at::Tensor& grad) {
    return grad.defined() ? grad : at::zeros_like(cx, at::MemoryFormat::Contiguous);
  };
  auto out = LstmCellBackwardFunction::apply(
      state_grad(grad_hy), state_grad(grad_cy), input_gates, hidden_gates, cx, b_ih, b_hh);
  return {out[0], out[1], out[2]};
}

}  // namespace

TORCH_LIBRARY_IMPL(super_lstm, Autograd, m) {
  m.impl("lstm_cell", &lstm_cell_autograd);
  m.impl("_lstm_cell_backward", &lstm_cell_backward_autograd);
}

}  // namespace torchops
