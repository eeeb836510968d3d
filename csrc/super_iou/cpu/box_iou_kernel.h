#pragma once
// The CPU loops of the box IoU family (every op of kBoxOps in box_iou.h),
// reached through ATen's DispatchStub: cpu/box_iou_kernel.cpp is compiled
// once per CPU capability and registers each copy; the stub calls the one for
// the capability ATen itself runs at.
#include <ATen/TensorIterator.h>
#include <ATen/native/DispatchStub.h>

#include <cstddef>
#include <cstdint>

#include "super_iou/box_iou.h"
#include "super_iou/box_iou_math.h"

namespace torchops {

// One call's parameters: the op's formula parameters and the byte stride
// from one number of a box to the next in each box tensor (row views, see
// detail::row_views).
struct BoxLoopArgs {
  BoxFormat format;
  double eps, eps_alpha;
  int64_t column_stride1, column_stride2;
};

// Transcendental-heavy (CIoU's atan): fewer elements per thread than ATen's default.
inline constexpr int64_t kBoxGrainSize = 4096;

}  // namespace torchops

namespace at::native {

// op: the index of the op in kBoxOps. Forward iter: the output, then the
// column-0 views of both box tensors (half types stay half, the output is
// float32 for them). Backward iter: column-0 views of both [..., 4] gradients,
// the upstream gradient (output dtype), then the two box views.
using torchops_box_op_fn = void (*)(at::TensorIteratorBase& iter, size_t op, const torchops::BoxLoopArgs& args);
DECLARE_DISPATCH(torchops_box_op_fn, torchops_box_op_stub)
DECLARE_DISPATCH(torchops_box_op_fn, torchops_box_op_backward_stub)

// The same loops on this thread over one chunk of n pairs, without
// TensorIterator: data and strides (bytes) of the operands in the order
// above, boxes of dtype `dtype`. What TensorIterator runs where it merges
// every dimension into one and does not split it over threads.
using torchops_box_op_chunk_fn = void (*)(
    char** data, const int64_t* strides, int64_t n, at::ScalarType dtype, size_t op, const torchops::BoxLoopArgs& args);
DECLARE_DISPATCH(torchops_box_op_chunk_fn, torchops_box_op_chunk_stub)
DECLARE_DISPATCH(torchops_box_op_chunk_fn, torchops_box_op_backward_chunk_stub)

// The forward of op kBoxOps[op] over the pairwise layout (see
// detail::pairwise_layout): out is a contiguous [batch, n, m] tensor of the
// output dtype; p.boxes1 and p.boxes2 are read at the layout's strides.
using torchops_box_pairwise_fn = void (*)(
    const at::Tensor& out, const torchops::detail::PreparedBoxPair& p, const torchops::detail::PairwiseLayout& layout,
    size_t op);
DECLARE_DISPATCH(torchops_box_pairwise_fn, torchops_box_pairwise_stub)

}  // namespace at::native
