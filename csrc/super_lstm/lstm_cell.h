#pragma once
// lstm_cell: the pointwise part of an LSTM cell. input_gates = x @ W_ih^T and
// hidden_gates = h @ W_hh^T are [B, 4H] (or [4H] unbatched), gate order
// i, f, g, o; cx is [B, H]; the biases are [4H] or absent.
#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include <tuple>

namespace torchops {

// C++ entry points through the dispatcher, like torch.ops.super_lstm.*.
std::tuple<at::Tensor, at::Tensor> lstm_cell(
    const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
    const std::optional<at::Tensor>& b_ih = std::nullopt,
    const std::optional<at::Tensor>& b_hh = std::nullopt);

// Training's forward: hy, cy and the workspace, the activated gates
// (sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)) as a [B, 4H] (or [4H]) tensor
// of the gates' dtype, for the backward.
std::tuple<at::Tensor, at::Tensor, at::Tensor> _lstm_cell_forward(
    const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
    const std::optional<at::Tensor>& b_ih = std::nullopt,
    const std::optional<at::Tensor>& b_hh = std::nullopt);

// Gradients of (pre-activation gates, cx, bias) from the workspace; the gate
// gradient serves both gate inputs and the bias gradient (shape [0] unless
// has_bias) both biases.
std::tuple<at::Tensor, at::Tensor, at::Tensor> _lstm_cell_backward(
    const at::Tensor& grad_hy, const at::Tensor& grad_cy, const at::Tensor& cx,
    const at::Tensor& workspace, bool has_bias);

namespace detail {

// The arguments checked (naming the bad one) and viewed as 2-D: gates [B, 4H],
// cx [B, H]; `batched` says whether the caller passed 2-D tensors.
struct LstmArgs {
  at::Tensor input_gates, hidden_gates, cx;
  at::Tensor b_ih, b_hh;  // undefined when absent
  int64_t batch, hidden;
  bool batched;
};
LstmArgs check_lstm_args(
    const char* op, const at::Tensor& input_gates, const at::Tensor& hidden_gates,
    const at::Tensor& cx, const std::optional<at::Tensor>& b_ih,
    const std::optional<at::Tensor>& b_hh);

// The backward's arguments checked and viewed as 2-D: workspace [B, 4H], cx
// and the state gradients [B, H] (an undefined state gradient: zeros).
struct LstmBackwardArgs {
  at::Tensor grad_hy, grad_cy, cx, workspace;
  int64_t batch, hidden;
  bool batched;
};
LstmBackwardArgs check_lstm_backward_args(
    const at::Tensor& grad_hy, const at::Tensor& grad_cy, const at::Tensor& cx,
    const at::Tensor& workspace);

}  // namespace detail
}  // namespace torchops
