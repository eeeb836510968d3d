// Schema of the super_iou ops and their C++ entry points. Kernels live in
// cpu/, cuda/, autograd/ and autocast/, one file per op and dispatch key.
#include "super_iou/ratio_iou.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/TypeProperties.h>
#include <torch/library.h>

#include <cmath>

#include "common/checks.h"

namespace torchops {

at::Tensor ratio_iou(
    const at::Tensor& x1, const at::Tensor& y1, const at::Tensor& w1, const at::Tensor& h1,
    const at::Tensor& x2, const at::Tensor& y2, const at::Tensor& w2, const at::Tensor& h2,
    double eps) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("super_iou::ratio_iou", "")
                       .typed<decltype(ratio_iou)>();
  return op.call(x1, y1, w1, h1, x2, y2, w2, h2, eps);
}

std::vector<at::Tensor> _ratio_iou_backward(
    const at::Tensor& grad,
    const at::Tensor& x1, const at::Tensor& y1, const at::Tensor& w1, const at::Tensor& h1,
    const at::Tensor& x2, const at::Tensor& y2, const at::Tensor& w2, const at::Tensor& h2,
    double eps) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("super_iou::_ratio_iou_backward", "")
                       .typed<decltype(_ratio_iou_backward)>();
  return op.call(grad, x1, y1, w1, h1, x2, y2, w2, h2, eps);
}

namespace detail {

const std::array<const char*, 8> kBoxArgNames = {"x1", "y1", "w1", "h1", "x2", "y2", "w2", "h2"};

PreparedBoxes prepare_boxes(const char* op, const BoxTensors& boxes, double eps) {
  TORCH_CHECK_VALUE(
      !std::isnan(eps) && eps >= 0, op, ": expected eps to be a non-negative number, but got ",
      format_number(eps));
  for (size_t i = 0; i < boxes.size(); ++i) {
    check_floating(op, kBoxArgNames[i], boxes[i]);
  }
  check_same_device(op, kBoxArgNames, boxes);
  PreparedBoxes prepared{boxes, broadcast_shape_or_throw(op, kBoxArgNames, boxes)};
  // dtype promotion as in the eager expression (0-d tensors count less)
  const auto dtype = at::native::result_type(at::ITensorListRef(boxes));
  for (auto& t : prepared.boxes) {
    if (t.scalar_type() != dtype) {
      t = t.to(dtype);
    }
  }
  return prepared;
}

PreparedBoxes prepare_boxes_backward(const at::Tensor& grad, const BoxTensors& boxes, double eps) {
  constexpr const char* op = "ratio_iou_backward";
  auto prepared = prepare_boxes(op, boxes, eps);
  check_floating(op, "grad", grad);
  check_same_device(op, {"x1", "grad"}, {boxes[0], grad});
  check_expandable_to(op, "grad", grad, prepared.shape);
  return prepared;
}

}  // namespace detail

TORCH_LIBRARY(super_iou, m) {
  // Fake (meta) kernels for torch.compile / torch.export live in Python.
  m.set_python_module("torchops._fake");
  m.def(
      "ratio_iou(Tensor x1, Tensor y1, Tensor w1, Tensor h1, "
      "Tensor x2, Tensor y2, Tensor w2, Tensor h2, float eps=1e-05) -> Tensor",
      {at::Tag::pt2_compliant_tag});
  m.def(
      "_ratio_iou_backward(Tensor grad, Tensor x1, Tensor y1, Tensor w1, Tensor h1, "
      "Tensor x2, Tensor y2, Tensor w2, Tensor h2, float eps) -> Tensor[]",
      {at::Tag::pt2_compliant_tag});
}

}  // namespace torchops
