#pragma once
// ratio_iou: intersection over union of paired boxes given as corner (x, y)
// and size (w, h), one box pair per element of eight broadcastable tensors.
// Its declaration: the op layer (common/declared.h) makes the rest.
#include <ATen/core/Tensor.h>

#include <array>
#include <vector>

#include "common/declared.h"

namespace torchops {

struct RatioIouDecl {
  static constexpr const char* kNamespace = "super_iou";
  static constexpr const char* kName = "ratio_iou";
  static constexpr std::array<const char*, 8> kArgNames = {"x1", "y1", "w1", "h1", "x2", "y2", "w2", "h2"};
  static constexpr std::array<const char*, 1> kScalarArgs = {"float eps=1e-05"};
  using Scalars = declared::Scalars<double>;
  // Box coordinates and areas overflow float16 quickly (a 256 x 256 box
  // already has area 65536), as for the ops on PyTorch's float32 list.
  static constexpr declared::Autocast kAutocast = declared::Autocast::kFloat32;
  static void check_scalars(const char* op, double eps);
};

using RatioIouOp = declared::Op<RatioIouDecl>;

// C++ entry points; they go through the dispatcher (autograd, autocast and
// the device kernels), like calling torch.ops.super_iou.* from Python.
at::Tensor ratio_iou(
    const at::Tensor& x1, const at::Tensor& y1, const at::Tensor& w1, const at::Tensor& h1,
    const at::Tensor& x2, const at::Tensor& y2, const at::Tensor& w2, const at::Tensor& h2,
    double eps = 1e-5);

// Gradients of the eight inputs, each in the broadcast shape and promoted dtype.
std::vector<at::Tensor> _ratio_iou_backward(
    const at::Tensor& grad,
    const at::Tensor& x1, const at::Tensor& y1, const at::Tensor& w1, const at::Tensor& h1,
    const at::Tensor& x2, const at::Tensor& y2, const at::Tensor& w2, const at::Tensor& h2,
    double eps);

}  // namespace torchops
