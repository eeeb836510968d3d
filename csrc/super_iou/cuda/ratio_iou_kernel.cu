// CUDA kernels of super_iou::ratio_iou and its backward. Same-shape contiguous
// inputs take the vectorized fast path (common/cuda_elementwise.cuh); broadcast,
// strided or 0-d inputs go through TensorIterator's gpu_kernel, which handles
// strides without copies and splits launches past 2^31 elements.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/native/cuda/Loops.cuh>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/checks.h"
#include "common/cuda_elementwise.cuh"
#include "super_iou/ratio_iou.h"
#include "super_iou/ratio_iou_math.h"

namespace torchops {
namespace {

using cuda::Array;

template <typename opmath_t>
struct ForwardOp {
  opmath_t eps;
  C10_HOST_DEVICE Array<opmath_t, 1> operator()(const Array<opmath_t, 8>& in) const {
    return {{ratio_iou_formula(box_pair_from<opmath_t>(in), eps)}};
  }
};

// in[0] is the upstream gradient, in[1..8] the boxes.
template <typename opmath_t>
struct BackwardOp {
  opmath_t eps;
  C10_HOST_DEVICE Array<opmath_t, 8> operator()(const Array<opmath_t, 9>& in) const {
    const auto g = ratio_iou_formula_backward(box_pair_from<opmath_t>(in, 1), eps, in[0]);
    return {{g.x1, g.y1, g.w1, g.h1, g.x2, g.y2, g.w2, g.h2}};
  }
};

// A tensor whose every element is one stored value (a 1-element tensor or an
// expanded view of one), which the fast path reads as a broadcast operand.
bool is_single_value(const at::Tensor& t) {
  if (t.numel() == 1) {
    return true;
  }
  for (const auto s : t.strides()) {
    if (s != 0) {
      return false;
    }
  }
  return true;
}

// Both take their arguments checked and promoted (RatioIouOp::impl_kernels).
at::Tensor ratio_iou_cuda(const declared::Prepared<8>& prepared, double eps) {
  const auto& boxes = prepared.inputs;
  c10::cuda::CUDAGuard device_guard(boxes[0].device());
  auto out = at::empty(prepared.shape, boxes[0].options());
  if (out.numel() == 0) {
    return out;
  }
  const bool fast = all_contiguous_with_sizes(boxes, out.sizes());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, out.scalar_type(), "ratio_iou_cuda", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const ForwardOp<opmath_t> op{eps_for<scalar_t>(eps)};
    if (fast) {
      Array<const scalar_t*, 8> in;
      for (int k = 0; k < 8; ++k) {
        in[k] = boxes[k].const_data_ptr<scalar_t>();
      }
      cuda::launch_contiguous_elementwise<scalar_t, 1, 8>(
          in, 0u, Array<scalar_t*, 1>{{out.mutable_data_ptr<scalar_t>()}}, out.numel(), op);
      return;
    }
    auto iter = declared::make_iterator({out}, {}, boxes);
    at::native::gpu_kernel(
        iter,
        [op] GPU_LAMBDA(scalar_t x1, scalar_t y1, scalar_t w1, scalar_t h1,
                        scalar_t x2, scalar_t y2, scalar_t w2, scalar_t h2) -> scalar_t {
          return op({{x1, y1, w1, h1, x2, y2, w2, h2}})[0];
        });
  });
  return out;
}

std::vector<at::Tensor> ratio_iou_backward_cuda(
    const at::Tensor& grad, const declared::Prepared<8>& prepared, double eps) {
  const auto& boxes = prepared.inputs;
  c10::cuda::CUDAGuard device_guard(boxes[0].device());
  const auto grad_in = grad.to(boxes[0].scalar_type());
  std::vector<at::Tensor> grads;
  for (int k = 0; k < 8; ++k) {
    grads.push_back(at::empty(prepared.shape, boxes[0].options()));
  }
  const int64_t n = grads[0].numel();
  if (n == 0) {
    return grads;
  }
  const bool grad_single = is_single_value(grad_in);
  const bool fast = all_contiguous_with_sizes(boxes, grads[0].sizes()) &&
      (grad_single || (grad_in.is_contiguous() && grad_in.sizes() == grads[0].sizes()));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grads[0].scalar_type(), "ratio_iou_backward_cuda", [&] {
    using opmath_t = at::opmath_type<scalar_t>;
    const BackwardOp<opmath_t> op{eps_for<scalar_t>(eps)};
    if (fast) {
      Array<const scalar_t*, 9> in;
      in[0] = grad_in.const_data_ptr<scalar_t>();
      Array<scalar_t*, 8> out;
      for (int k = 0; k < 8; ++k) {
        in[k + 1] = boxes[k].const_data_ptr<scalar_t>();
        out[k] = grads[k].mutable_data_ptr<scalar_t>();
      }
      cuda::launch_contiguous_elementwise<scalar_t, 8, 9>(in, grad_single ? 1u : 0u, out, n, op);
      return;
    }
    auto iter = declared::make_iterator(grads, {grad_in}, boxes);
    at::native::gpu_kernel_multiple_outputs(
        iter,
        [op] GPU_LAMBDA(scalar_t g, scalar_t x1, scalar_t y1, scalar_t w1, scalar_t h1,
                        scalar_t x2, scalar_t y2, scalar_t w2, scalar_t h2)
            -> thrust::tuple<scalar_t, scalar_t, scalar_t, scalar_t, scalar_t, scalar_t, scalar_t, scalar_t> {
          const auto r = op({{g, x1, y1, w1, h1, x2, y2, w2, h2}});
          return {r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]};
        });
  });
  return grads;
}

}  // namespace

TORCH_LIBRARY_IMPL(super_iou, CUDA, m) {
  RatioIouOp::impl_kernels<&ratio_iou_cuda, &ratio_iou_backward_cuda>(m);
}

}  // namespace torchops
