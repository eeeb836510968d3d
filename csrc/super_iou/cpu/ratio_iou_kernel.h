#pragma once
// The CPU loops of super_iou::ratio_iou and its backward, reached through
// ATen's DispatchStub: cpu/ratio_iou_kernel.cpp is compiled once per CPU
// capability and registers each copy; the stub calls the one for the
// capability ATen itself runs at (ATEN_CPU_CAPABILITY overrides it).
#include <ATen/TensorIterator.h>
#include <ATen/native/DispatchStub.h>

namespace at::native {

// iter: the output(s) first (ratio_iou: iou; backward: the eight gradients),
// then the inputs (backward: grad, then the eight box tensors), one dtype.
using torchops_ratio_iou_fn = void (*)(at::TensorIteratorBase& iter, double eps);
DECLARE_DISPATCH(torchops_ratio_iou_fn, torchops_ratio_iou_stub)
DECLARE_DISPATCH(torchops_ratio_iou_fn, torchops_ratio_iou_backward_stub)

// The same loops over operands that are all contiguous with n elements of
// dtype `dtype` (data: the operands' pointers in the order above).
using torchops_ratio_iou_contiguous_fn = void (*)(char* const* data, int64_t n, at::ScalarType dtype, double eps);
DECLARE_DISPATCH(torchops_ratio_iou_contiguous_fn, torchops_ratio_iou_contiguous_stub)
DECLARE_DISPATCH(torchops_ratio_iou_contiguous_fn, torchops_ratio_iou_backward_contiguous_stub)

}  // namespace at::native
