#pragma once
// lstm_cell: the pointwise part of an LSTM cell. input_gates = x @ W_ih^T and
// hidden_gates = h @ W_hh^T are [B, 4H] (or [4H] unbatched), gate order
// i, f, g, o; cx is [B, H]; the biases are [4H] or absent.
//
// Its declaration: the op layer (common/declared.h) makes the schemas of
// lstm_cell, _lstm_cell_forward and _lstm_cell_backward, the entry points,
// the dtype and device checks, the autograd and autocast kernels. Its own:
// the shape rules, the workspace and the bias gradient (lstm_cell.cpp), and
// the kernels (lstm_cell_cpu.cpp, cuda/lstm_cell_kernel.cu).
#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include <array>
#include <tuple>

#include "common/declared.h"

namespace torchops {

// The shape of a call: gates [batch, 4 * hidden], cx [batch, hidden];
// `batched`: the caller passed 2-D tensors.
struct LstmShape {
  int64_t batch, hidden;
  bool batched;
};

// A kernel's [B, n] result in the caller's layout: [n] where the call was unbatched.
inline at::Tensor in_caller_layout(const at::Tensor& t, const LstmShape& shape) {
  return shape.batched || !t.defined() ? t : t.view({t.size(1)});
}

// The backward's arguments checked and viewed as 2-D: workspace [B, 4H], cx
// and the state gradients [B, H] (an undefined state gradient: zeros).
struct LstmBackwardArgs {
  at::Tensor grad_hy, grad_cy, cx, workspace;
  LstmShape shape;
};

struct LstmCellDecl {
  static constexpr const char* kNamespace = "super_lstm";
  static constexpr const char* kName = "lstm_cell";
  static constexpr std::array<const char*, 3> kArgNames = {"input_gates", "hidden_gates", "cx"};
  static constexpr std::array<const char*, 2> kOptionalArgs = {"b_ih", "b_hh"};
  static constexpr std::array<const char*, 0> kScalarArgs = {};
  using Scalars = declared::Scalars<>;
  static constexpr std::array<const char*, 2> kOutputNames = {"hy", "cy"};
  // PyTorch's policy for aten::lstm_cell, what torch.nn.LSTMCell calls: on
  // CUDA the gates, cx and biases run in the autocast dtype (the kernels
  // compute in float inside); on the CPU nothing is cast, and autocast's
  // lower-precision gates beside a float32 cx promote (float32 hy and cy).
  static constexpr declared::Autocast kAutocast = declared::Autocast::kLowerPrecisionOnCuda;
  static void check_scalars(const char* /*op*/) {}

  // After promotion: the shapes checked (naming the bad argument) and the
  // inputs viewed as 2-D.
  using Shape = LstmShape;
  static LstmShape check_shapes(const char* op, declared::Prepared<3, 2, LstmShape>& args);

  // When a gradient is needed the forward also writes the activated gates
  // (sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)) as a [B, 4H] workspace, and
  // the backward reads them with cx: one tanh per unit instead of five
  // exp/tanh, no biases read, and cx and the workspace saved rather than both
  // [B, 4H] gate inputs. Inference writes no workspace.
  struct Workspace {
    static constexpr std::array<size_t, 1> kSavedArgs = {2};  // cx
    static constexpr std::array<const char*, 1> kScalarArgs = {"bool has_bias"};
    using Scalars = declared::Scalars<bool>;
    // the gradient of the gates (serving both gate inputs), of cx and of the
    // bias (both biases; shape [0] unless has_bias)
    static constexpr size_t kGradients = 3;
    using Args = LstmBackwardArgs;
    static LstmBackwardArgs prepare(
        const char* op, std::array<at::Tensor, 2> grads, std::array<at::Tensor, 2> saved);
    static std::tuple<bool> scalars(const std::array<bool, 2>& present) { return {present[0] || present[1]}; }
    static std::array<at::Tensor, 5> input_grads(
        std::tuple<at::Tensor, at::Tensor, at::Tensor>&& grads, const std::array<bool, 2>& present);
  };
};

using LstmCellOp = declared::Op<LstmCellDecl>;
using LstmArgs = LstmCellOp::Args;  // inputs: input_gates, hidden_gates, cx; optional: b_ih, b_hh

// A forward kernel's outputs, fresh: hy, cy [B, H] and, in training, the
// workspace [B, 4H] (else undefined), in the computed dtype on the inputs' device.
struct LstmOutputs {
  at::Tensor hy, cy, workspace;
  LstmOutputs(const LstmArgs& args, bool training);
  // What the kernel returns: the three in the caller's layout.
  std::tuple<at::Tensor, at::Tensor, at::Tensor> returned(const LstmShape& shape) const {
    return {in_caller_layout(hy, shape), in_caller_layout(cy, shape), in_caller_layout(workspace, shape)};
  }
};

// C++ entry points through the dispatcher, like torch.ops.super_lstm.*.
std::tuple<at::Tensor, at::Tensor> lstm_cell(
    const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
    const std::optional<at::Tensor>& b_ih = std::nullopt,
    const std::optional<at::Tensor>& b_hh = std::nullopt);

// Training's forward: hy, cy and the workspace (the activated gates, of the
// gates' shape and the computed dtype) for the backward.
std::tuple<at::Tensor, at::Tensor, at::Tensor> _lstm_cell_forward(
    const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
    const std::optional<at::Tensor>& b_ih = std::nullopt,
    const std::optional<at::Tensor>& b_hh = std::nullopt);

// Gradients of (pre-activation gates, cx, bias) from the workspace.
std::tuple<at::Tensor, at::Tensor, at::Tensor> _lstm_cell_backward(
    const at::Tensor& grad_hy, const at::Tensor& grad_cy, const at::Tensor& cx,
    const at::Tensor& workspace, bool has_bias);

}  // namespace torchops
