// The CPU entry points of super_iou::ratio_iou and its backward: checks,
// outputs and the TensorIterator; the loops run through the stubs of
// cpu/ratio_iou_kernel.h, at the CPU capability ATen runs at.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "super_iou/cpu/ratio_iou_kernel.h"
#include "super_iou/ratio_iou.h"

namespace at::native {
DEFINE_DISPATCH(torchops_ratio_iou_stub);
DEFINE_DISPATCH(torchops_ratio_iou_backward_stub);
}  // namespace at::native

namespace torchops {
namespace {

at::Tensor ratio_iou_cpu(
    const at::Tensor& x1, const at::Tensor& y1, const at::Tensor& w1, const at::Tensor& h1,
    const at::Tensor& x2, const at::Tensor& y2, const at::Tensor& w2, const at::Tensor& h2,
    double eps) {
  const auto prepared = detail::prepare_boxes("ratio_iou", {x1, y1, w1, h1, x2, y2, w2, h2}, eps);
  // Always a contiguous output (the fake kernel promises that layout).
  auto out = at::empty(prepared.shape, prepared.boxes[0].options());
  at::TensorIteratorConfig config;
  config.add_owned_output(out);
  for (const auto& t : prepared.boxes) {
    config.add_owned_const_input(t);
  }
  auto iter = config.build();
  at::native::torchops_ratio_iou_stub(at::kCPU, iter, eps);
  return out;
}

std::vector<at::Tensor> ratio_iou_backward_cpu(
    const at::Tensor& grad,
    const at::Tensor& x1, const at::Tensor& y1, const at::Tensor& w1, const at::Tensor& h1,
    const at::Tensor& x2, const at::Tensor& y2, const at::Tensor& w2, const at::Tensor& h2,
    double eps) {
  const auto prepared =
      detail::prepare_boxes_backward(grad, {x1, y1, w1, h1, x2, y2, w2, h2}, eps);
  const auto dtype = prepared.boxes[0].scalar_type();
  std::vector<at::Tensor> grads;
  at::TensorIteratorConfig config;
  for (int i = 0; i < 8; ++i) {
    grads.push_back(at::empty(prepared.shape, prepared.boxes[0].options()));
    config.add_owned_output(grads.back());
  }
  config.add_owned_const_input(grad.to(dtype));
  for (const auto& t : prepared.boxes) {
    config.add_owned_const_input(t);
  }
  auto iter = config.build();
  at::native::torchops_ratio_iou_backward_stub(at::kCPU, iter, eps);
  return grads;
}

}  // namespace

TORCH_LIBRARY_IMPL(super_iou, CPU, m) {
  m.impl("ratio_iou", &ratio_iou_cpu);
  m.impl("_ratio_iou_backward", &ratio_iou_backward_cpu);
}

}  // namespace torchops
