// CPU kernels of super_iou::ratio_iou and its backward: vectorized with
// at::vec, threaded by TensorIterator (at::parallel_for underneath).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "common/cpu_elementwise.h"
#include "super_iou/ratio_iou.h"
#include "super_iou/ratio_iou_math.h"

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
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "ratio_iou_cpu", [&] {
    const auto eps_op = eps_for<scalar_t>(eps);
    cpu::elementwise_kernel<scalar_t, 1, 8>(iter, [eps_op](const auto& in) {
      using T = typename std::decay_t<decltype(in)>::value_type;
      return std::array<T, 1>{ratio_iou_formula(box_pair_from<T>(in), T(eps_op))};
    });
  });
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
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "ratio_iou_backward_cpu", [&] {
    const auto eps_op = eps_for<scalar_t>(eps);
    cpu::elementwise_kernel<scalar_t, 8, 9>(iter, [eps_op](const auto& in) {
      using T = typename std::decay_t<decltype(in)>::value_type;
      const auto g = ratio_iou_formula_backward(box_pair_from<T>(in, 1), T(eps_op), in[0]);
      return std::array<T, 8>{g.x1, g.y1, g.w1, g.h1, g.x2, g.y2, g.w2, g.h2};
    });
  });
  return grads;
}

}  // namespace

TORCH_LIBRARY_IMPL(super_iou, CPU, m) {
  m.impl("ratio_iou", &ratio_iou_cpu);
  m.impl("_ratio_iou_backward", &ratio_iou_backward_cpu);
}

}  // namespace torchops
