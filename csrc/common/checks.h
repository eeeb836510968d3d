#pragma once
// Argument checks shared by every op. Each error names the op, the argument,
// what was expected and what came, so a user can act on it.
//
// Exception classes, the same as the Python checks (torchops/_checks.py) raise:
// TORCH_CHECK_TYPE (TypeError) for a missing tensor or a wrong dtype,
// TORCH_CHECK_VALUE (ValueError) for shapes and values, TORCH_CHECK
// (RuntimeError) for devices.
//
// Numbers and shapes in messages go through format_shape / format_number, not
// through c10::str's std::ostream: on torch 2.11 (Python 3.12, GPU machine)
// every error of ours that streamed a number crashed the process, while those
// streaming only strings did not (fine on torch 2.13 and under ASan here).
#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <string>
#include <vector>

namespace torchops {

// "[2, 3]", like at::IntArrayRef's operator<<, without an ostream.
std::string format_shape(at::IntArrayRef shape);

// A double as printf's "%g" writes it ("-1", "nan", "1e-05").
std::string format_number(double value);

// A dtype as Python spells it ("torch.float16"), as the Python checks do.
std::string format_dtype(at::ScalarType dtype);

// Every tensor defined (not None). Autograd kernels call it first: building
// the autograd node reads each input's device, which an undefined tensor lacks.
void check_defined(const char* op, c10::ArrayRef<const char*> names, c10::ArrayRef<at::Tensor> tensors);

// float16, bfloat16, float32 or float64.
void check_floating(const char* op, const char* name, const at::Tensor& t);

// All tensors on one device (a CPU 0-d tensor does not pass as a scalar).
void check_same_device(
    const char* op, c10::ArrayRef<const char*> names, c10::ArrayRef<at::Tensor> tensors);

// The broadcast shape of all tensors, or an error naming the first argument
// whose shape does not broadcast with those before it.
std::vector<int64_t> broadcast_shape_or_throw(
    const char* op, c10::ArrayRef<const char*> names, c10::ArrayRef<at::Tensor> tensors);

// A tensor that broadcasts to `shape` without changing it (a gradient, say).
void check_expandable_to(const char* op, const char* name, const at::Tensor& t, at::IntArrayRef shape);

// True when every tensor is contiguous with the sizes `sizes`.
bool all_contiguous_with_sizes(c10::ArrayRef<at::Tensor> tensors, at::IntArrayRef sizes);

}  // namespace torchops
