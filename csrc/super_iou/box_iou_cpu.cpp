// The CPU entry points of the box IoU family: checks, outputs and the
// TensorIterator over row views; the loops run through the stubs of
// cpu/box_iou_kernel.h, at the CPU capability ATen runs at. A forward over the
// pairwise layout (the N x M functions' views, detail::pairwise_layout) skips
// TensorIterator for its own stub, which reads each box once per output row
// and stores the row in vectors; backwards take the row views for any shape.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <array>
#include <optional>
#include <string>

#include "common/cpu_entry.h"
#include "common/raw_views.h"
#include "super_iou/box_iou.h"
#include "super_iou/cpu/box_iou_kernel.h"

namespace at::native {
DEFINE_DISPATCH(torchops_box_op_stub);
DEFINE_DISPATCH(torchops_box_op_backward_stub);
DEFINE_DISPATCH(torchops_box_pairwise_stub);
DEFINE_DISPATCH(torchops_box_op_chunk_stub);
DEFINE_DISPATCH(torchops_box_op_backward_chunk_stub);
}  // namespace at::native

namespace torchops {
namespace {

BoxLoopArgs loop_args(const detail::PreparedBoxPair& p, const detail::RowViews& rows) {
  return {p.format, p.eps, p.eps_alpha, rows.column_stride1, rows.column_stride2};
}

// Where both box tensors are contiguous with the same shape and the loop runs
// on one thread anyway, the loop runs as one chunk over raw pointers:
// TensorIterator would merge every dimension into one and call it once with
// the same pointers and strides, but building it and the row views costs more
// than the loop at small sizes.
bool one_chunk(const detail::PreparedBoxPair& p, int64_t n) {
  return serial_without_iterator(n, kBoxGrainSize) && p.boxes1.sizes() == p.boxes2.sizes() &&
      p.boxes1.is_contiguous() && p.boxes2.is_contiguous();
}

char* data_of(const at::Tensor& t) {
  return static_cast<char*>(const_cast<void*>(t.const_data_ptr()));
}

// The byte stride of t's elements where TensorIterator would see t, of the
// output's shape, as one dimension: contiguous (its element size) or one value
// expanded (0, as the upstream gradient of a sum); else none.
std::optional<int64_t> linear_stride(const at::Tensor& t, at::IntArrayRef shape) {
  if (t.sizes() != shape) {
    return std::nullopt;
  }
  if (t.is_contiguous()) {
    return static_cast<int64_t>(t.element_size());
  }
  for (const int64_t stride : t.strides()) {
    if (stride != 0) {
      return std::nullopt;
    }
  }
  return 0;
}

// A contiguous box tensor's rows: a box every 4 numbers, the numbers next to each other.
BoxLoopArgs contiguous_loop_args(const detail::PreparedBoxPair& p) {
  const auto size = static_cast<int64_t>(p.boxes1.element_size());
  return {p.format, p.eps, p.eps_alpha, size, size};
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
  if (one_chunk(p, out.numel())) {
    const int64_t row = 4 * static_cast<int64_t>(p.boxes1.element_size());
    std::array<char*, 3> data{data_of(out), data_of(p.boxes1), data_of(p.boxes2)};
    const std::array<int64_t, 3> strides{static_cast<int64_t>(out.element_size()), row, row};
    at::native::torchops_box_op_chunk_stub(
        at::kCPU, data.data(), strides.data(), out.numel(), p.boxes1.scalar_type(), I, contiguous_loop_args(p));
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
  const auto upstream = grad.scalar_type() == p.out_dtype ? grad : grad.to(p.out_dtype);
  const int64_t n = grad1.numel() / 4;
  const auto upstream_stride = linear_stride(upstream, p.shape);
  if (upstream_stride && one_chunk(p, n)) {
    const int64_t row = 4 * static_cast<int64_t>(p.boxes1.element_size());
    std::array<char*, 5> data{data_of(grad1), data_of(grad2), data_of(upstream), data_of(p.boxes1), data_of(p.boxes2)};
    const std::array<int64_t, 5> strides{row, row, *upstream_stride, row, row};
    at::native::torchops_box_op_backward_chunk_stub(
        at::kCPU, data.data(), strides.data(), n, p.boxes1.scalar_type(), I, contiguous_loop_args(p));
    return {grad1, grad2};
  }
  const auto rows = detail::row_views(p);
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
