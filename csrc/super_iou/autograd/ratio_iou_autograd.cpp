// Autograd kernels of super_iou::ratio_iou. Written in C++ (not registered
// from Python) so gradients also exist in a C++ process with no Python.
#include <ATen/ExpandUtils.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include "common/autograd.h"
#include "common/checks.h"
#include "super_iou/ratio_iou.h"

namespace torchops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class RatioIouFunction : public torch::autograd::Function<RatioIouFunction> {
 public:
  static at::Tensor forward(
      AutogradContext* ctx,
      const at::Tensor& x1, const at::Tensor& y1, const at::Tensor& w1, const at::Tensor& h1,
      const at::Tensor& x2, const at::Tensor& y2, const at::Tensor& w2, const at::Tensor& h2,
      double eps) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->saved_data["eps"] = eps;
    ctx->save_for_backward({x1, y1, w1, h1, x2, y2, w2, h2});
    return ratio_iou(x1, y1, w1, h1, x2, y2, w2, h2, eps);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const double eps = ctx->saved_data["eps"].toDouble();
    auto grads = call_backward_op([&] {
      return _ratio_iou_backward(
          grad_outputs[0], saved[0], saved[1], saved[2], saved[3], saved[4], saved[5], saved[6], saved[7], eps);
    });
    // A broadcast input gets the sum of its gradient over the broadcast dims.
    for (size_t i = 0; i < grads.size(); ++i) {
      if (grads[i].sizes() != saved[i].sizes()) {
        grads[i] = at::sum_to(grads[i], saved[i].sizes());
      }
    }
    grads.emplace_back();  // eps
    return grads;
  }
};

// The backward op is not differentiable itself: double backward is an error
// that says so, instead of silently wrong second derivatives. (Plain backward
// passes skip this kernel: see call_backward_op.)
class RatioIouBackwardFunction : public torch::autograd::Function<RatioIouBackwardFunction> {
 public:
  static variable_list forward(
      AutogradContext* /*ctx*/, const at::Tensor& grad,
      const at::Tensor& x1, const at::Tensor& y1, const at::Tensor& w1, const at::Tensor& h1,
      const at::Tensor& x2, const at::Tensor& y2, const at::Tensor& w2, const at::Tensor& h2,
      double eps) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return _ratio_iou_backward(grad, x1, y1, w1, h1, x2, y2, w2, h2, eps);
  }

  static variable_list backward(AutogradContext* /*ctx*/, variable_list /*grad_outputs*/) {
    TORCH_CHECK(false, "ratio_iou: double backward (gradients of gradients) is not supported");
  }
};

at::Tensor ratio_iou_autograd(
    const at::Tensor& x1, const at::Tensor& y1, const at::Tensor& w1, const at::Tensor& h1,
    const at::Tensor& x2, const at::Tensor& y2, const at::Tensor& w2, const at::Tensor& h2,
    double eps) {
  check_defined("ratio_iou", detail::kBoxArgNames, {x1, y1, w1, h1, x2, y2, w2, h2});
  return RatioIouFunction::apply(x1, y1, w1, h1, x2, y2, w2, h2, eps);
}

std::vector<at::Tensor> ratio_iou_backward_autograd(
    const at::Tensor& grad,
    const at::Tensor& x1, const at::Tensor& y1, const at::Tensor& w1, const at::Tensor& h1,
    const at::Tensor& x2, const at::Tensor& y2, const at::Tensor& w2, const at::Tensor& h2,
    double eps) {
  check_defined("ratio_iou_backward", {"grad"}, {grad});
  check_defined("ratio_iou_backward", detail::kBoxArgNames, {x1, y1, w1, h1, x2, y2, w2, h2});
  return RatioIouBackwardFunction::apply(grad, x1, y1, w1, h1, x2, y2, w2, h2, eps);
}

}  // namespace

TORCH_LIBRARY_IMPL(super_iou, Autograd, m) {
  m.impl("ratio_iou", &ratio_iou_autograd);
  m.impl("_ratio_iou_backward", &ratio_iou_backward_autograd);
}

}  // namespace torchops
