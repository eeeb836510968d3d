// The CPU entry points of the box IoU family: checks, outputs and the
// TensorIterator over row views; the loops run through the stubs of
// cpu/box_iou_kernel.h, at the CPU capability ATen runs at. A forward over the
// pairwise layout (the N x M functions' views, detail::pairwise_layout) skips
// TensorIterator for its own stub, which reads each box once per output row
// and stores the row in vectors; backwards take the row views for any shape.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <string>

#include "common/cpu_entry.h"
#include "common/raw_views.h"
#include "super_iou/box_iou.h"
#include "super_iou/cpu/box_iou_kernel.h"

namespace at::native {
DEFINE_DISPATCH(torchops_box_op_stub);
DEFINE_DISPATCH(torchops_box_op_backward_stub);
DEFINE_DISPATCH(torchops_box_pairwise_stub);
}  // namespace at::native

namespace torchops {
namespace {

BoxLoopArgs loop_args(const detail::PreparedBoxPair& p, const detail::RowViews& rows) {
  return {p.format, p.eps, p.eps_alpha, rows.column_stride1, rows.column_stride2};
}

template <size_t I>
at::Tensor box_op_cpu(const at::Tensor& boxes1, const at::Tensor& boxes2, double eps, c10::string_view fmt) {
  constexpr BoxOpDecl decl = kBoxOps[I];
  const auto p = detail::prepare_box_pair(decl.name, decl, boxes1, boxes2, fmt, eps);
  auto out = empty_output(p.shape, p.boxes1.options().dtype(p.out_dtype));
  if (out.numel() == 0) {
    return out;
  }
  if (const auto layout = detail::pairwise_layout(p)) {
    at::native::torchops_box_pairwise_stub(at::kCPU, out, p, *layout, I);
    return out;
  }
  const auto rows = detail::row_views(p);
  auto iter = at::TensorIteratorConfig()
                  .check_all_same_dtype(false)
                  .add_owned_output(out)
                  .add_owned_const_input(rows.first1)
                  .add_owned_const_input(rows.first2)
                  .build();
  at::native::torchops_box_op_stub(at::kCPU, iter, I, loop_args(p, rows));
  return out;
}

template <size_t I>
std::tuple<at::Tensor, at::Tensor> box_op_backward_cpu(
    const at::Tensor& grad, const at::Tensor& boxes1, const at::Tensor& boxes2, double eps, c10::string_view fmt) {
  constexpr BoxOpDecl decl = kBoxOps[I];
  static const std::string op = backward_name(decl).substr(1);
  const auto p = detail::prepare_box_pair_backward(op.c_str(), decl, grad, boxes1, boxes2, fmt, eps);
  auto shape = p.shape;
  shape.push_back(4);
  auto grad1 = empty_output(shape, p.boxes1.options());
  auto grad2 = empty_output(shape, p.boxes1.options());
  if (grad1.numel() == 0) {
    return {grad1, grad2};
  }
  const auto rows = detail::row_views(p);
  const auto upstream = grad.scalar_type() == p.out_dtype ? grad : grad.to(p.out_dtype);
  auto iter = at::TensorIteratorConfig()
                  .check_all_same_dtype(false)
                  .add_owned_output(raw_select(grad1, -1, 0))
                  .add_owned_output(raw_select(grad2, -1, 0))
                  .add_owned_const_input(raw_expand(upstream, p.shape))
                  .add_owned_const_input(rows.first1)
                  .add_owned_const_input(rows.first2)
                  .build();
  at::native::torchops_box_op_backward_stub(at::kCPU, iter, I, loop_args(p, rows));
  return {grad1, grad2};
}

}  // namespace

TORCH_LIBRARY_IMPL(super_iou, CPU, m) {
  for_each_box_op([&](auto index) {
    constexpr size_t I = decltype(index)::value;
    const std::string name = kBoxOps[I].name;
    m.impl(name.c_str(), &box_op_cpu<I>);
    m.impl(backward_name(kBoxOps[I]).c_str(), &box_op_backward_cpu<I>);
  });
}

}  // namespace torchops
