#pragma once
// The box IoU family: one declaration per op (kBoxOps), from which the
// schemas, checks, autograd and kernels are made. Each op is elementwise over
// pairs of [..., 4] boxes that broadcast in their leading dimensions; the
// pairwise N x M functions are the same op over [N, 1, 4] x [1, M, 4] views
// (see box_iou.cpp), so they write only the N x M output.
#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <array>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "super_iou/box_iou_math.h"

namespace torchops {

struct BoxOpDecl {
  const char* name;  // of the op super_iou::<name>; its backward: backward_name()
  BoxKind kind;
  bool loss;  // torchvision's loss convention (value 1 - metric), else its metric's
};

inline constexpr std::array<BoxOpDecl, 7> kBoxOps = {{
    {"paired_box_iou", BoxKind::IoU, false},
    {"paired_generalized_box_iou", BoxKind::GIoU, false},
    {"paired_distance_box_iou", BoxKind::DIoU, false},
    {"paired_complete_box_iou", BoxKind::CIoU, false},
    {"_generalized_box_iou_loss", BoxKind::GIoU, true},
    {"_distance_box_iou_loss", BoxKind::DIoU, true},
    {"_complete_box_iou_loss", BoxKind::CIoU, true},
}};

// "_<name>_backward", the name's own leading underscore dropped (a "__" name
// would be mangled where Python code that torch.compile generates names it).
inline std::string backward_name(const BoxOpDecl& decl) {
  const std::string name = decl.name;
  return "_" + name.substr(name[0] == '_' ? 1 : 0) + "_backward";
}

template <typename F, size_t... I>
void for_each_box_op_impl(F&& f, std::index_sequence<I...>) {
  (f(std::integral_constant<size_t, I>{}), ...);
}

// Calls f(std::integral_constant<size_t, I>{}) for every declared op I.
template <typename F>
void for_each_box_op(F&& f) {
  for_each_box_op_impl(f, std::make_index_sequence<kBoxOps.size()>{});
}

namespace detail {

// Checked, promoted arguments of one call: boxes in their common dtype
// (half types stay half: the kernels read them and compute in float), the
// broadcast shape of the leading dimensions, the output dtype (float32 for
// half types, as torchvision's _upcast) and the formula's parameters.
struct PreparedBoxPair {
  at::Tensor boxes1, boxes2;
  std::vector<int64_t> shape;
  at::ScalarType out_dtype;
  BoxFormat format;
  double eps, eps_alpha;
};

PreparedBoxPair prepare_box_pair(
    const char* op, const BoxOpDecl& decl, const at::Tensor& boxes1, const at::Tensor& boxes2,
    c10::string_view fmt, double eps);

// The same for the backward op, whose upstream gradient has the output's
// shape (or broadcasts to it).
PreparedBoxPair prepare_box_pair_backward(
    const char* op, const BoxOpDecl& decl, const at::Tensor& grad, const at::Tensor& boxes1,
    const at::Tensor& boxes2, c10::string_view fmt, double eps);

// Row views: the column-0 views of both boxes expanded to the broadcast
// shape (an operand TensorIterator broadcasts, orders and splits like any
// other) and the byte stride from one number of a box to the next.
struct RowViews {
  at::Tensor first1, first2;
  int64_t column_stride1, column_stride2;
};
RowViews row_views(const PreparedBoxPair& p);

// The pairwise layout: boxes1 does not vary along the output's last dimension
// and boxes2 not along the one before it (the [..., N, 1, 4] x [..., 1, M, 4]
// views of the pairwise functions, any row and column strides), with at most
// one leading (batch) dimension. Output element (b, i, j) is the pair
// (boxes1 row b, i; boxes2 row b, j). Strides are in elements. The kernels
// give it its own loop: each box is read once per tile of the output instead
// of once per output element, and the output is written in vectors.
struct PairwiseLayout {
  int64_t batch, n, m;
  int64_t batch_stride1, row_stride1, column_stride1;
  int64_t batch_stride2, row_stride2, column_stride2;
};
std::optional<PairwiseLayout> pairwise_layout(const PreparedBoxPair& p);

}  // namespace detail

}  // namespace torchops
