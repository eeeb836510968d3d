// CPU loops of super_iou::ratio_iou and its backward: vectorized with at::vec,
// threaded by TensorIterator (at::parallel_for underneath), or over operands
// that are all contiguous. Compiled once per CPU capability (torchops/_build.py);
// the entry points, checks and registration are in super_iou/ratio_iou_cpu.cpp,
// built for any x86-64.
#include "super_iou/cpu/ratio_iou_kernel.h"

#include <ATen/Dispatch.h>

#include "common/cpu_elementwise.h"
#include "super_iou/ratio_iou_math.h"

namespace torchops {
inline namespace CPU_CAPABILITY {
namespace {

// The formulas as cpu/elementwise's loops take them.
template <typename scalar_t>
auto forward_op(double eps) {
  const auto eps_op = eps_for<scalar_t>(eps);
  return [eps_op](const auto& in) {
    using T = typename std::decay_t<decltype(in)>::value_type;
    return std::array<T, 1>{ratio_iou_formula(box_pair_from<T>(in), T(eps_op))};
  };
}

template <typename scalar_t>
auto backward_op(double eps) {
  const auto eps_op = eps_for<scalar_t>(eps);
  return [eps_op](const auto& in) {
    using T = typename std::decay_t<decltype(in)>::value_type;
    const auto g = ratio_iou_formula_backward(box_pair_from<T>(in, 1), T(eps_op), in[0]);
    return std::array<T, 8>{g.x1, g.y1, g.w1, g.h1, g.x2, g.y2, g.w2, g.h2};
  };
}

void ratio_iou_kernel(at::TensorIteratorBase& iter, double eps) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "ratio_iou_cpu", [&] {
    cpu::elementwise_kernel<scalar_t, 1, 8>(iter, forward_op<scalar_t>(eps));
  });
}

void ratio_iou_backward_kernel(at::TensorIteratorBase& iter, double eps) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, iter.common_dtype(), "ratio_iou_backward_cpu", [&] {
    cpu::elementwise_kernel<scalar_t, 8, 9>(iter, backward_op<scalar_t>(eps));
  });
}

void ratio_iou_contiguous_kernel(char* const* data, int64_t n, at::ScalarType dtype, double eps) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "ratio_iou_cpu", [&] {
    cpu::elementwise_kernel_contiguous<scalar_t, 1, 8>(data, n, forward_op<scalar_t>(eps));
  });
}

void ratio_iou_backward_contiguous_kernel(char* const* data, int64_t n, at::ScalarType dtype, double eps) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype, "ratio_iou_backward_cpu", [&] {
    cpu::elementwise_kernel_contiguous<scalar_t, 8, 9>(data, n, backward_op<scalar_t>(eps));
  });
}

}  // namespace
}  // namespace CPU_CAPABILITY
}  // namespace torchops

namespace at::native {
ALSO_REGISTER_AVX512_DISPATCH(torchops_ratio_iou_stub, &torchops::ratio_iou_kernel)
ALSO_REGISTER_AVX512_DISPATCH(torchops_ratio_iou_backward_stub, &torchops::ratio_iou_backward_kernel)
ALSO_REGISTER_AVX512_DISPATCH(torchops_ratio_iou_contiguous_stub, &torchops::ratio_iou_contiguous_kernel)
ALSO_REGISTER_AVX512_DISPATCH(
    torchops_ratio_iou_backward_contiguous_stub, &torchops::ratio_iou_backward_contiguous_kernel)
}  // namespace at::native
