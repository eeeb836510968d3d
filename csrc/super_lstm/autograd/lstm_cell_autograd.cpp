// Autograd kernel of super_lstm::lstm_cell, in C++ so gradients exist in a
// C++ process too. When a gradient is needed the forward also writes the
// activated gates (the workspace, [B, 4H]) and the backward reads them: the
// backward then evaluates one tanh per unit instead of five exp/tanh and
// reads no biases, and the saved state is cx and the workspace rather than
// both [B, 4H] gate inputs. Inference writes no workspace.
#include <torch/autograd.h>
#include <torch/library.h>

#include "common/autograd.h"
#include "common/checks.h"
#include "super_lstm/lstm_cell.h"

namespace torchops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool present(const std::optional<at::Tensor>& t) {
  return t.has_value() && t->defined();
}

class LstmCellFunction : public torch::autograd::Function<LstmCellFunction> {
 public:
  // training: a gradient will be asked for (write the workspace);
  // return_workspace: also return it (as _lstm_cell_forward does), not
  // differentiable.
  static variable_list forward(
      AutogradContext* ctx, const at::Tensor& input_gates, const at::Tensor& hidden_gates,
      const at::Tensor& cx, const std::optional<at::Tensor>& b_ih,
      const std::optional<at::Tensor>& b_hh, bool training, bool return_workspace) {
    at::AutoDispatchBelowADInplaceOrView guard;
    if (!training && !return_workspace) {
      auto [hy, cy] = lstm_cell(input_gates, hidden_gates, cx, b_ih, b_hh);
      return {hy, cy};
    }
    auto [hy, cy, workspace] = _lstm_cell_forward(input_gates, hidden_gates, cx, b_ih, b_hh);
    ctx->saved_data["b_ih"] = present(b_ih);
    ctx->saved_data["b_hh"] = present(b_hh);
    ctx->save_for_backward({cx, workspace});
    if (!return_workspace) {
      return {hy, cy};
    }
    ctx->mark_non_differentiable({workspace});
    return {hy, cy, workspace};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const bool has_b_ih = ctx->saved_data["b_ih"].toBool();
    const bool has_b_hh = ctx->saved_data["b_hh"].toBool();
    auto [grad_gates, grad_cx, grad_bias] = call_backward_op(
        [&] { return _lstm_cell_backward(grads[0], grads[1], saved[0], saved[1], has_b_ih || has_b_hh); });
    // input_gates and hidden_gates enter as a sum: one gradient serves both,
    // and one batch reduction both biases.
    return {grad_gates, grad_gates, grad_cx, has_b_ih ? grad_bias : at::Tensor(),
            has_b_hh ? grad_bias : at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// The backward op is not differentiable: double backward is a clear error.
// (Plain backward passes skip this kernel: see call_backward_op.)
class LstmCellBackwardFunction : public torch::autograd::Function<LstmCellBackwardFunction> {
 public:
  static variable_list forward(
      AutogradContext* /*ctx*/, const at::Tensor& grad_hy, const at::Tensor& grad_cy,
      const at::Tensor& cx, const at::Tensor& workspace, bool has_bias) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [a, b, c] = _lstm_cell_backward(grad_hy, grad_cy, cx, workspace, has_bias);
    return {a, b, c};
  }

  static variable_list backward(AutogradContext* /*ctx*/, variable_list /*grads*/) {
    TORCH_CHECK(false, "lstm_cell: double backward (gradients of gradients) is not supported");
  }
};

// Whether autograd will record this call: then the forward saves a workspace.
bool needs_gradient(std::initializer_list<std::optional<at::Tensor>> inputs) {
  if (!at::GradMode::is_enabled()) {
    return false;
  }
  for (const auto& t : inputs) {
    if (present(t) && t->requires_grad()) {
      return true;
    }
  }
  return false;
}

std::tuple<at::Tensor, at::Tensor> lstm_cell_autograd(
    const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
    const std::optional<at::Tensor>& b_ih, const std::optional<at::Tensor>& b_hh) {
  check_defined("lstm_cell", {"input_gates", "hidden_gates", "cx"}, {input_gates, hidden_gates, cx});
  const bool training = needs_gradient({input_gates, hidden_gates, cx, b_ih, b_hh});
  auto out = LstmCellFunction::apply(input_gates, hidden_gates, cx, b_ih, b_hh, training, false);
  return {out[0], out[1]};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lstm_cell_forward_autograd(
    const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
    const std::optional<at::Tensor>& b_ih, const std::optional<at::Tensor>& b_hh) {
  check_defined("lstm_cell", {"input_gates", "hidden_gates", "cx"}, {input_gates, hidden_gates, cx});
  auto out = LstmCellFunction::apply(input_gates, hidden_gates, cx, b_ih, b_hh, true, true);
  return {out[0], out[1], out[2]};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lstm_cell_backward_autograd(
    const at::Tensor& grad_hy, const at::Tensor& grad_cy, const at::Tensor& cx,
    const at::Tensor& workspace, bool has_bias) {
  check_defined("lstm_cell_backward", {"cx", "workspace"}, {cx, workspace});
  // an unused output's gradient may be None: zeros, as the kernels read them
  const auto state_grad = [&](const at::Tensor& grad) {
    return grad.defined() ? grad : at::zeros_like(cx, at::MemoryFormat::Contiguous);
  };
  auto out = LstmCellBackwardFunction::apply(state_grad(grad_hy), state_grad(grad_cy), cx, workspace, has_bias);
  return {out[0], out[1], out[2]};
}

}  // namespace

TORCH_LIBRARY_IMPL(super_lstm, Autograd, m) {
  m.impl("lstm_cell", &lstm_cell_autograd);
  m.impl("_lstm_cell_forward", &lstm_cell_forward_autograd);
  m.impl("_lstm_cell_backward", &lstm_cell_backward_autograd);
}

}  // namespace torchops
