// The CPU entry points of super_iou::ratio_iou and its backward: checks,
// outputs and the TensorIterator (or plain pointers); the loops run through
// the stubs of cpu/ratio_iou_kernel.h, at the CPU capability ATen runs at.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <array>

#include "common/checks.h"
#include "common/cpu_entry.h"
#include "super_iou/cpu/ratio_iou_kernel.h"
#include "super_iou/ratio_iou.h"

namespace at::native {
DEFINE_DISPATCH(torchops_ratio_iou_stub);
DEFINE_DISPATCH(torchops_ratio_iou_backward_stub);
DEFINE_DISPATCH(torchops_ratio_iou_contiguous_stub);
DEFINE_DISPATCH(torchops_ratio_iou_backward_contiguous_stub);
}  // namespace at::native

namespace torchops {
namespace {

// Where every operand is contiguous with the output's sizes (the usual call:
// same-shape inputs) and the loop runs on one thread anyway, it runs over
// plain pointers: no TensorIterator, whose set-up costs more than the loop at
// small sizes. Anything else (broadcasting, strides, threads) goes through
// TensorIterator.
template <typename... Tensors>
std::array<char*, sizeof...(Tensors)> data_pointers(const Tensors&... tensors) {
  // inputs are only read; the loops take one pointer type for all operands
  return {const_cast<char*>(static_cast<const char*>(tensors.const_data_ptr()))...};
}

// Both take their arguments checked and promoted (RatioIouOp::impl_kernels).
at::Tensor ratio_iou_cpu(const declared::Prepared<8>& prepared, double eps) {
  // Always a contiguous output (the fake kernel promises that layout).
  auto out = empty_output(prepared.shape, prepared.inputs[0].options());
  if (serial_without_iterator(out.numel()) && all_contiguous_with_sizes(prepared.inputs, prepared.shape)) {
    const auto& b = prepared.inputs;
    const auto data = data_pointers(out, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
    at::native::torchops_ratio_iou_contiguous_stub(at::kCPU, data.data(), out.numel(), out.scalar_type(), eps);
    return out;
  }
  auto iter = declared::make_iterator({out}, {}, prepared.inputs);
  at::native::torchops_ratio_iou_stub(at::kCPU, iter, eps);
  return out;
}

std::vector<at::Tensor> ratio_iou_backward_cpu(
    const at::Tensor& grad, const declared::Prepared<8>& prepared, double eps) {
  const auto dtype = prepared.inputs[0].scalar_type();
  std::vector<at::Tensor> grads;
  grads.reserve(8);
  for (int i = 0; i < 8; ++i) {
    grads.push_back(empty_output(prepared.shape, prepared.inputs[0].options()));
  }
  const auto grad_in = grad.scalar_type() == dtype ? grad : grad.to(dtype);
  if (serial_without_iterator(grad_in.numel()) && all_contiguous_with_sizes({grad_in}, prepared.shape) &&
      all_contiguous_with_sizes(prepared.inputs, prepared.shape)) {
    const auto& g = grads;
    const auto& b = prepared.inputs;
    const auto data = data_pointers(g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], grad_in,
                                    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
    at::native::torchops_ratio_iou_backward_contiguous_stub(at::kCPU, data.data(), grad_in.numel(), dtype, eps);
    return grads;
  }
  auto iter = declared::make_iterator(grads, {grad_in}, prepared.inputs);
  at::native::torchops_ratio_iou_backward_stub(at::kCPU, iter, eps);
  return grads;
}

}  // namespace

TORCH_LIBRARY_IMPL(super_iou, CPU, m) {
  RatioIouOp::impl_kernels<&ratio_iou_cpu, &ratio_iou_backward_cpu>(m);
}

}  // namespace torchops
