#pragma once
// Views for the entry points to hand to their kernels (TensorIterator
// operands, row views), made directly, without the dispatcher: at::narrow,
// select and expand each cost a few thousand instructions of dispatch and
// view bookkeeping, which dominated small calls that view their tensors many
// times (the LSTM cell's gates: 28 narrows per forward+backward). These views
// are operands of one kernel call only: never returned to users, so
// autograd's view tracking (which they lack) never sees them.
#include <ATen/ExpandUtils.h>
#include <ATen/core/Tensor.h>
#include <c10/core/TensorImpl.h>
#include <c10/core/WrapDimMinimal.h>
#include <c10/util/SmallVector.h>

namespace torchops {

// `t`'s storage seen with other sizes, strides and storage offset (in elements).
inline at::Tensor raw_view(const at::Tensor& t, at::IntArrayRef sizes, at::IntArrayRef strides, int64_t offset) {
  auto view = at::detail::make_tensor<c10::TensorImpl>(
      c10::TensorImpl::VIEW, c10::Storage(t.storage()), t.key_set(), t.dtype());
  view.unsafeGetTensorImpl()->set_sizes_and_strides(sizes, strides, offset);
  return view;
}

// t.narrow(dim, start, length).
inline at::Tensor raw_narrow(const at::Tensor& t, int64_t dim, int64_t start, int64_t length) {
  dim = c10::maybe_wrap_dim(dim, t.dim());
  c10::SmallVector<int64_t, 5> sizes(t.sizes().begin(), t.sizes().end());
  sizes[dim] = length;
  return raw_view(t, sizes, t.strides(), t.storage_offset() + start * t.stride(dim));
}

// t.expand(shape) (shape: one t expands to).
inline at::Tensor raw_expand(const at::Tensor& t, at::IntArrayRef shape) {
  const auto geometry = at::inferExpandGeometry_dimvector(t.sizes(), t.strides(), shape);
  return raw_view(t, geometry.sizes, geometry.strides, t.storage_offset());
}

// t.select(dim, index).
inline at::Tensor raw_select(const at::Tensor& t, int64_t dim, int64_t index) {
  dim = c10::maybe_wrap_dim(dim, t.dim());
  c10::SmallVector<int64_t, 5> sizes(t.sizes().begin(), t.sizes().end());
  c10::SmallVector<int64_t, 5> strides(t.strides().begin(), t.strides().end());
  sizes.erase(sizes.begin() + dim);
  strides.erase(strides.begin() + dim);
  return raw_view(t, sizes, strides, t.storage_offset() + index * t.stride(dim));
}

}  // namespace torchops
