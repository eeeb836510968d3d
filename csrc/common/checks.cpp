#include "common/checks.h"

#include <ATen/ATen.h>
#include <ATen/ExpandUtils.h>
#include <c10/util/Exception.h>

#include <cstdio>

namespace torchops {

std::string format_shape(at::IntArrayRef shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    text += (i == 0 ? "" : ", ") + std::to_string(shape[i]);
  }
  return text + "]";
}

std::string format_number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%g", value);
  return buffer;
}

std::string format_dtype(at::ScalarType dtype) {
  return "torch." + std::string(c10::getDtypeNames(dtype).first);
}

void check_defined(const char* op, c10::ArrayRef<const char*> names, c10::ArrayRef<at::Tensor> tensors) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    TORCH_CHECK_TYPE(tensors[i].defined(), op, ": expected ", names[i], " to be a tensor, but got None");
  }
}

void check_floating(const char* op, const char* name, const at::Tensor& t) {
  TORCH_CHECK_TYPE(t.defined(), op, ": expected ", name, " to be a tensor, but got None");
  const auto dtype = t.scalar_type();
  TORCH_CHECK_TYPE(
      dtype == at::kHalf || dtype == at::kBFloat16 || dtype == at::kFloat || dtype == at::kDouble,
      op, ": expected ", name, " to be a float16, bfloat16, float32 or float64 tensor, but got ",
      format_dtype(dtype));
}

void check_same_device(
    const char* op, c10::ArrayRef<const char*> names, c10::ArrayRef<at::Tensor> tensors) {
  for (size_t i = 1; i < tensors.size(); ++i) {
    TORCH_CHECK(
        tensors[i].device() == tensors[0].device(), op,
        ": expected all tensors on one device, but ", names[0], " is on ", tensors[0].device(),
        " and ", names[i], " is on ", tensors[i].device());
  }
}

std::vector<int64_t> broadcast_shape_or_throw(
    const char* op, c10::ArrayRef<const char*> names, c10::ArrayRef<at::Tensor> tensors) {
  std::vector<int64_t> shape(tensors[0].sizes().begin(), tensors[0].sizes().end());
  for (size_t i = 1; i < tensors.size(); ++i) {
    const auto sizes = tensors[i].sizes();
    const size_t ndim = std::max(shape.size(), sizes.size());
    std::vector<int64_t> merged(ndim);
    for (size_t d = 0; d < ndim; ++d) {
      // align trailing dimensions, as broadcasting does
      const int64_t a = d + shape.size() >= ndim ? shape[d + shape.size() - ndim] : 1;
      const int64_t b = d + sizes.size() >= ndim ? sizes[d + sizes.size() - ndim] : 1;
      TORCH_CHECK_VALUE(
          a == b || a == 1 || b == 1, op, ": the shape of ", names[i], " ", format_shape(sizes),
          " does not broadcast with ", format_shape(shape), ", the broadcast shape of ",
          names[0], (i > 1 ? ".." : ""), (i > 1 ? names[i - 1] : ""));
      merged[d] = a == 1 ? b : a;
    }
    shape = std::move(merged);
  }
  return shape;
}

void check_expandable_to(const char* op, const char* name, const at::Tensor& t, at::IntArrayRef shape) {
  TORCH_CHECK_VALUE(
      at::is_expandable_to(t.sizes(), shape), op, ": expected ", name, " of shape ", format_shape(shape),
      " (or one that broadcasts to it), but got ", format_shape(t.sizes()));
}

bool all_contiguous_with_sizes(c10::ArrayRef<at::Tensor> tensors, at::IntArrayRef sizes) {
  for (const auto& t : tensors) {
    if (!t.is_contiguous() || t.sizes() != sizes) {
      return false;
    }
  }
  return true;
}

}  // namespace torchops
