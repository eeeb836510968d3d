// The super_iou library's definition, with ratio_iou's schema, autograd and
// autocast kernels from its declaration (ratio_iou.h); device kernels in
// ratio_iou_cpu.cpp and cuda/ratio_iou_kernel.cu.
#include "super_iou/ratio_iou.h"

#include <torch/library.h>

#include <cmath>

#include "common/checks.h"

namespace torchops {

void RatioIouDecl::check_scalars(const char* op, double eps) {
  TORCH_CHECK_VALUE(
      !std::isnan(eps) && eps >= 0, op, ": expected eps to be a non-negative number, but got ",
      format_number(eps));
}

at::Tensor ratio_iou(
    const at::Tensor& x1, const at::Tensor& y1, const at::Tensor& w1, const at::Tensor& h1,
    const at::Tensor& x2, const at::Tensor& y2, const at::Tensor& w2, const at::Tensor& h2,
    double eps) {
  return RatioIouOp::call(x1, y1, w1, h1, x2, y2, w2, h2, eps);
}

std::vector<at::Tensor> _ratio_iou_backward(
    const at::Tensor& grad,
    const at::Tensor& x1, const at::Tensor& y1, const at::Tensor& w1, const at::Tensor& h1,
    const at::Tensor& x2, const at::Tensor& y2, const at::Tensor& w2, const at::Tensor& h2,
    double eps) {
  return RatioIouOp::call_backward(grad, x1, y1, w1, h1, x2, y2, w2, h2, eps);
}

TORCH_LIBRARY(super_iou, m) {
  // Fake (meta) kernels for torch.compile / torch.export live in Python.
  m.set_python_module("torchops._fake");
  RatioIouOp::define(m);
}

}  // namespace torchops
