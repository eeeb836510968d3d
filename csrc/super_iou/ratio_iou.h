#pragma once
// ratio_iou: intersection over union of paired boxes given as corner (x, y)
// and size (w, h), one box pair per element of eight broadcastable tensors.
#include <ATen/core/Tensor.h>

#include <array>
#include <vector>

namespace torchops {

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

namespace detail {

using BoxTensors = std::array<at::Tensor, 8>;
extern const std::array<const char*, 8> kBoxArgNames;

// Checks ratio_iou's arguments (dtypes, devices, shapes, eps), naming the bad
// one, and returns the inputs converted to their promoted dtype (a copy only
// for inputs whose dtype differs from it) together with the broadcast shape.
struct PreparedBoxes {
  BoxTensors boxes;
  std::vector<int64_t> shape;
};
PreparedBoxes prepare_boxes(const char* op, const BoxTensors& boxes, double eps);

// The same for the backward, whose upstream gradient must have the output's
// shape (or broadcast to it).
PreparedBoxes prepare_boxes_backward(const at::Tensor& grad, const BoxTensors& boxes, double eps);

}  // namespace detail
}  // namespace torchops
