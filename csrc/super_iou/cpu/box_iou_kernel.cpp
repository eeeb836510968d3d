// CPU kernels of the box IoU family (every op declared in box_iou.h).
//
// Row views: a [..., 4] box tensor is read through its column-0 view, which
// TensorIterator broadcasts, orders and splits over threads like any operand;
// the other three numbers of a box sit at the column stride from it. Each
// chunk gathers Vectorized::size() boxes into column registers (any row and
// column strides, broadcast included: nothing is copied beforehand), runs the
// formula of box_iou_math.h on vectors, and stores the result; the last
// boxes of a chunk run the same formula on scalars.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/TensorIterator.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <string>

#include "super_iou/box_iou.h"

namespace torchops {
namespace {

// Transcendental-heavy (CIoU's atan): fewer elements per thread than ATen's default.
constexpr int64_t kGrainSize = 4096;

template <typename scalar_t>
struct BoxColumns {
  using opmath_t = at::opmath_type<scalar_t>;
  using Vec = at::vec::Vectorized<opmath_t>;
  static constexpr int kLanes = Vec::size();

  // kLanes boxes starting at `ptr`, `stride` bytes apart, as four column vectors.
  static Box4<Vec> gather(const char* ptr, int64_t stride, int64_t column_stride) {
    alignas(64) opmath_t columns[4][kLanes];
    for (int k = 0; k < kLanes; ++k) {
      for (int c = 0; c < 4; ++c) {
        columns[c][k] = static_cast<opmath_t>(*reinterpret_cast<const scalar_t*>(ptr + k * stride + c * column_stride));
      }
    }
    return {{Vec::loadu(columns[0]), Vec::loadu(columns[1]), Vec::loadu(columns[2]), Vec::loadu(columns[3])}};
  }

  static Box4<opmath_t> load(const char* ptr, int64_t column_stride) {
    Box4<opmath_t> b;
    for (int c = 0; c < 4; ++c) {
      b.v[c] = static_cast<opmath_t>(*reinterpret_cast<const scalar_t*>(ptr + c * column_stride));
    }
    return b;
  }

  // Four column vectors back into kLanes rows of four (a contiguous [n, 4] gradient).
  static void scatter(char* ptr, int64_t stride, const Box4<Vec>& b) {
    alignas(64) opmath_t columns[4][kLanes];
    for (int c = 0; c < 4; ++c) {
      b.v[c].store(columns[c]);
    }
    for (int k = 0; k < kLanes; ++k) {
      for (int c = 0; c < 4; ++c) {
        reinterpret_cast<scalar_t*>(ptr + k * stride)[c] = static_cast<scalar_t>(columns[c][k]);
      }
    }
  }

  static void store(char* ptr, const Box4<opmath_t>& b) {
    for (int c = 0; c < 4; ++c) {
      reinterpret_cast<scalar_t*>(ptr)[c] = static_cast<scalar_t>(b.v[c]);
    }
  }
};

template <size_t I>
at::Tensor box_op_cpu(const at::Tensor& boxes1, const at::Tensor& boxes2, double eps, c10::string_view fmt) {
  constexpr BoxOpDecl decl = kBoxOps[I];
  const auto p = detail::prepare_box_pair(decl.name, decl, boxes1, boxes2, fmt, eps);
  auto out = at::empty(p.shape, p.boxes1.options().dtype(p.out_dtype));
  if (out.numel() == 0) {
    return out;
  }
  const auto rows = detail::row_views(p);
  auto iter = at::TensorIteratorConfig()
                  .check_all_same_dtype(false)
                  .add_owned_output(out)
                  .add_owned_const_input(rows.first1)
                  .add_owned_const_input(rows.first2)
                  .build();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.boxes1.scalar_type(), decl.name, [&] {
    using Columns = BoxColumns<scalar_t>;
    using opmath_t = typename Columns::opmath_t;
    using Vec = typename Columns::Vec;
    const BoxParams<opmath_t> params{p.format, static_cast<opmath_t>(p.eps), static_cast<opmath_t>(p.eps_alpha)};
    const BoxParams<Vec> vparams{p.format, Vec(params.eps), Vec(params.eps_alpha)};
    const int64_t cs1 = rows.column_stride1, cs2 = rows.column_stride2;
    iter.for_each(
        [&](char** data, const int64_t* strides, int64_t n) {
          int64_t i = 0;
          if (strides[0] == sizeof(opmath_t)) {
            for (; i + Columns::kLanes <= n; i += Columns::kLanes) {
              const auto a = Columns::gather(data[1] + i * strides[1], strides[1], cs1);
              const auto b = Columns::gather(data[2] + i * strides[2], strides[2], cs2);
              box_pair_value<kBoxOps[I].kind, kBoxOps[I].loss>(a, b, vparams).store(data[0] + i * strides[0]);
            }
          }
          for (; i < n; ++i) {
            const auto a = Columns::load(data[1] + i * strides[1], cs1);
            const auto b = Columns::load(data[2] + i * strides[2], cs2);
            *reinterpret_cast<opmath_t*>(data[0] + i * strides[0]) =
                box_pair_value<kBoxOps[I].kind, kBoxOps[I].loss>(a, b, params);
          }
        },
        kGrainSize);
  });
  return out;
}

template <size_t I>
std::tuple<at::Tensor, at::Tensor> box_op_backward_cpu(
    const at::Tensor& grad, const at::Tensor& boxes1, const at::Tensor& boxes2, double eps, c10::string_view fmt) {
  constexpr BoxOpDecl decl = kBoxOps[I];
  const std::string op = backward_name(decl).substr(1);
  const auto p = detail::prepare_box_pair_backward(op.c_str(), decl, grad, boxes1, boxes2, fmt, eps);
  auto shape = p.shape;
  shape.push_back(4);
  auto grad1 = at::empty(shape, p.boxes1.options());
  auto grad2 = at::empty(shape, p.boxes1.options());
  if (grad1.numel() == 0) {
    return {grad1, grad2};
  }
  const auto rows = detail::row_views(p);
  auto iter = at::TensorIteratorConfig()
                  .check_all_same_dtype(false)
                  .add_owned_output(grad1.select(-1, 0))
                  .add_owned_output(grad2.select(-1, 0))
                  .add_owned_const_input(grad.to(p.out_dtype).expand(p.shape))
                  .add_owned_const_input(rows.first1)
                  .add_owned_const_input(rows.first2)
                  .build();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.boxes1.scalar_type(), decl.name, [&] {
    using Columns = BoxColumns<scalar_t>;
    using opmath_t = typename Columns::opmath_t;
    using Vec = typename Columns::Vec;
    const BoxParams<opmath_t> params{p.format, static_cast<opmath_t>(p.eps), static_cast<opmath_t>(p.eps_alpha)};
    const BoxParams<Vec> vparams{p.format, Vec(params.eps), Vec(params.eps_alpha)};
    const int64_t cs1 = rows.column_stride1, cs2 = rows.column_stride2;
    constexpr int64_t kRow = 4 * sizeof(scalar_t);
    iter.for_each(
        [&](char** data, const int64_t* strides, int64_t n) {
          int64_t i = 0;
          if (strides[0] == kRow && strides[1] == kRow) {
            for (; i + Columns::kLanes <= n; i += Columns::kLanes) {
              Vec g;
              if (strides[2] == 0) {
                g = Vec(*reinterpret_cast<const opmath_t*>(data[2]));
              } else {
                alignas(64) opmath_t values[Columns::kLanes];
                for (int k = 0; k < Columns::kLanes; ++k) {
                  values[k] = *reinterpret_cast<const opmath_t*>(data[2] + (i + k) * strides[2]);
                }
                g = Vec::loadu(values);
              }
              const auto a = Columns::gather(data[3] + i * strides[3], strides[3], cs1);
              const auto b = Columns::gather(data[4] + i * strides[4], strides[4], cs2);
              const auto grads = box_pair_backward<kBoxOps[I].kind, kBoxOps[I].loss>(a, b, vparams, g);
              Columns::scatter(data[0] + i * kRow, kRow, grads.a);
              Columns::scatter(data[1] + i * kRow, kRow, grads.b);
            }
          }
          for (; i < n; ++i) {
            const opmath_t g = *reinterpret_cast<const opmath_t*>(data[2] + i * strides[2]);
            const auto a = Columns::load(data[3] + i * strides[3], cs1);
            const auto b = Columns::load(data[4] + i * strides[4], cs2);
            const auto grads = box_pair_backward<kBoxOps[I].kind, kBoxOps[I].loss>(a, b, params, g);
            Columns::store(data[0] + i * strides[0], grads.a);
            Columns::store(data[1] + i * strides[1], grads.b);
          }
        },
        kGrainSize);
  });
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
