// The box IoU family's schemas, argument checks, autograd and the public
// functions (pairwise, paired, losses) made from the declarations in
// box_iou.h. Kernels: cpu/box_iou_kernel.cpp, cuda/box_iou_kernel.cu.
#include "super_iou/box_iou.h"

#include <ATen/ATen.h>
#include <ATen/ExpandUtils.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/TypeProperties.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <cmath>
#include <string>

#include "common/autograd.h"
#include "common/checks.h"
#include "common/raw_views.h"

namespace torchops {
namespace detail {
namespace {

BoxFormat parse_format(const char* op, c10::string_view fmt) {
  if (fmt == "xyxy") return BoxFormat::XYXY;
  if (fmt == "xywh") return BoxFormat::XYWH;
  if (fmt == "cxcywh") return BoxFormat::CXCYWH;
  TORCH_CHECK_VALUE(
      false, op, ": expected fmt to be 'xyxy', 'xywh' or 'cxcywh', but got '", std::string(fmt), "'");
}

void check_boxes(const char* op, const char* name, const at::Tensor& t) {
  check_floating(op, name, t);
  TORCH_CHECK_VALUE(
      t.dim() >= 1 && t.size(-1) == 4, op, ": expected ", name, " of shape [..., 4], but got ",
      format_shape(t.sizes()));
}

bool broadcastable(at::IntArrayRef a, at::IntArrayRef b) {
  for (size_t d = 0; d < std::min(a.size(), b.size()); ++d) {
    const int64_t x = a[a.size() - 1 - d], y = b[b.size() - 1 - d];
    if (x != y && x != 1 && y != 1) return false;
  }
  return true;
}

}  // namespace

PreparedBoxPair prepare_box_pair(
    const char* op, const BoxOpDecl& decl, const at::Tensor& boxes1, const at::Tensor& boxes2,
    c10::string_view fmt, double eps) {
  check_defined(op, {"boxes1", "boxes2"}, {boxes1, boxes2});
  check_boxes(op, "boxes1", boxes1);
  check_boxes(op, "boxes2", boxes2);
  TORCH_CHECK_VALUE(
      !std::isnan(eps) && eps >= 0, op, ": expected eps to be a non-negative number, but got ",
      format_number(eps));
  PreparedBoxPair p;
  p.format = parse_format(op, fmt);
  check_same_device(op, {"boxes1", "boxes2"}, {boxes1, boxes2});
  const auto leading1 = boxes1.sizes().slice(0, boxes1.dim() - 1);
  const auto leading2 = boxes2.sizes().slice(0, boxes2.dim() - 1);
  TORCH_CHECK_VALUE(
      broadcastable(leading1, leading2), op, ": the boxes do not pair: boxes1 ", format_shape(boxes1.sizes()),
      " and boxes2 ", format_shape(boxes2.sizes()), " have leading dimensions that do not broadcast");
  p.shape = at::infer_size(leading1, leading2);
  const auto dtype = at::promote_types(boxes1.scalar_type(), boxes2.scalar_type());
  p.boxes1 = boxes1.scalar_type() == dtype ? boxes1 : boxes1.to(dtype);
  p.boxes2 = boxes2.scalar_type() == dtype ? boxes2 : boxes2.to(dtype);
  p.out_dtype = (dtype == at::kHalf || dtype == at::kBFloat16) ? at::kFloat : dtype;
  // complete_box_iou_loss gives its eps to alpha only; torchvision's DIoU part
  // inside it keeps its default 1e-7
  p.eps = (decl.kind == BoxKind::CIoU && decl.loss) ? 1e-7 : eps;
  p.eps_alpha = eps;
  return p;
}

PreparedBoxPair prepare_box_pair_backward(
    const char* op, const BoxOpDecl& decl, const at::Tensor& grad, const at::Tensor& boxes1,
    const at::Tensor& boxes2, c10::string_view fmt, double eps) {
  check_defined(op, {"grad"}, {grad});
  auto p = prepare_box_pair(op, decl, boxes1, boxes2, fmt, eps);
  check_floating(op, "grad", grad);
  check_same_device(op, {"boxes1", "grad"}, {boxes1, grad});
  check_expandable_to(op, "grad", grad, p.shape);
  return p;
}

namespace {

// The strides of `boxes` expanded to the broadcast shape plus its last
// dimension of 4 (what boxes.expand(shape).strides() are, without making it).
at::DimVector expanded_strides(const at::Tensor& boxes, std::vector<int64_t> shape) {
  shape.push_back(4);
  return at::inferExpandGeometry_dimvector(boxes.sizes(), boxes.strides(), shape).strides;
}

}  // namespace

RowViews row_views(const PreparedBoxPair& p) {
  const auto strides1 = expanded_strides(p.boxes1, p.shape), strides2 = expanded_strides(p.boxes2, p.shape);
  const auto rows = [&](const at::Tensor& boxes, const at::DimVector& strides) {
    return raw_view(boxes, p.shape, at::IntArrayRef(strides).slice(0, p.shape.size()), boxes.storage_offset());
  };
  const auto size = static_cast<int64_t>(p.boxes1.element_size());
  return {rows(p.boxes1, strides1), rows(p.boxes2, strides2), strides1.back() * size, strides2.back() * size};
}

std::optional<PairwiseLayout> pairwise_layout(const PreparedBoxPair& p) {
  const auto rank = static_cast<int64_t>(p.shape.size());
  if (rank < 2 || rank > 3) return std::nullopt;
  const auto s1 = expanded_strides(p.boxes1, p.shape), s2 = expanded_strides(p.boxes2, p.shape);
  // (s1, s2: [..., N, M, 4] strides; index rank is the box's 4 numbers)
  if (s1[rank - 1] != 0 || s2[rank - 2] != 0) return std::nullopt;
  const bool batched = rank == 3;
  return PairwiseLayout{
      batched ? p.shape[0] : 1, p.shape[rank - 2], p.shape[rank - 1],
      batched ? s1[0] : 0, s1[rank - 2], s1[rank],
      batched ? s2[0] : 0, s2[rank - 1], s2[rank]};
}

}  // namespace detail

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

using ForwardSignature = at::Tensor(const at::Tensor&, const at::Tensor&, double, c10::string_view);
using BackwardSignature =
    std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, const at::Tensor&, double, c10::string_view);

template <size_t I>
const c10::TypedOperatorHandle<ForwardSignature>& forward_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow((std::string("super_iou::") + kBoxOps[I].name).c_str(), "")
                             .typed<ForwardSignature>();
  return op;
}

template <size_t I>
const c10::TypedOperatorHandle<BackwardSignature>& backward_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow(("super_iou::" + backward_name(kBoxOps[I])).c_str(), "")
                             .typed<BackwardSignature>();
  return op;
}

// The formats' names, indexed by BoxFormat: the autograd context keeps the
// index (no string per call) and the backward passes the name back.
constexpr std::array<const char*, 3> kFormatNames = {"xyxy", "xywh", "cxcywh"};

template <size_t I>
class BoxPairFunction : public torch::autograd::Function<BoxPairFunction<I>> {
 public:
  static at::Tensor forward(
      AutogradContext* ctx, const at::Tensor& boxes1, const at::Tensor& boxes2, double eps, c10::string_view fmt) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto out = forward_op<I>().call(boxes1, boxes2, eps, fmt);
    // (after the op: it has rejected a bad fmt with its own message)
    ctx->saved_data["fmt"] = static_cast<int64_t>(detail::parse_format(kBoxOps[I].name, fmt));
    ctx->saved_data["eps"] = eps;
    ctx->save_for_backward({boxes1, boxes2});
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const c10::string_view fmt = kFormatNames[ctx->saved_data["fmt"].toInt()];
    const double eps = ctx->saved_data["eps"].toDouble();
    auto [grad1, grad2] =
        call_backward_op([&] { return backward_op<I>().call(grad_outputs[0], saved[0], saved[1], eps, fmt); });
    // a broadcast input gets the sum of its gradient over the broadcast dims
    if (grad1.sizes() != saved[0].sizes()) grad1 = at::sum_to(grad1, saved[0].sizes());
    if (grad2.sizes() != saved[1].sizes()) grad2 = at::sum_to(grad2, saved[1].sizes());
    return {grad1, grad2, at::Tensor(), at::Tensor()};
  }
};

// The backward op is not differentiable: double backward is a clear error.
// (Plain backward passes skip this kernel: see call_backward_op.)
template <size_t I>
class BoxPairBackwardFunction : public torch::autograd::Function<BoxPairBackwardFunction<I>> {
 public:
  static variable_list forward(
      AutogradContext* /*ctx*/, const at::Tensor& grad, const at::Tensor& boxes1, const at::Tensor& boxes2,
      double eps, c10::string_view fmt) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [grad1, grad2] = backward_op<I>().call(grad, boxes1, boxes2, eps, fmt);
    return {grad1, grad2};
  }

  static variable_list backward(AutogradContext* /*ctx*/, variable_list /*grad_outputs*/) {
    TORCH_CHECK(false, kBoxOps[I].name, ": double backward (gradients of gradients) is not supported");
  }
};

template <size_t I>
at::Tensor box_pair_autograd(const at::Tensor& boxes1, const at::Tensor& boxes2, double eps, c10::string_view fmt) {
  check_defined(kBoxOps[I].name, {"boxes1", "boxes2"}, {boxes1, boxes2});
  if (!records_gradient({&boxes1, &boxes2}) && !apply_raises({&boxes1, &boxes2})) {
    BelowAutograd below;
    return forward_op<I>().call(boxes1, boxes2, eps, fmt);
  }
  return BoxPairFunction<I>::apply(boxes1, boxes2, eps, fmt);
}

template <size_t I>
std::tuple<at::Tensor, at::Tensor> box_pair_backward_autograd(
    const at::Tensor& grad, const at::Tensor& boxes1, const at::Tensor& boxes2, double eps, c10::string_view fmt) {
  check_defined(kBoxOps[I].name, {"grad", "boxes1", "boxes2"}, {grad, boxes1, boxes2});
  if (!records_gradient({&grad, &boxes1, &boxes2}) && !apply_raises({&grad, &boxes1, &boxes2})) {
    BelowAutograd below;
    return backward_op<I>().call(grad, boxes1, boxes2, eps, fmt);
  }
  auto grads = BoxPairBackwardFunction<I>::apply(grad, boxes1, boxes2, eps, fmt);
  return {grads[0], grads[1]};
}

// --- the public functions, composed of the ops above --------------------------------

constexpr size_t kPairedIou = 0, kPairedGiou = 1, kPairedDiou = 2, kPairedCiou = 3;
constexpr size_t kGiouLoss = 4, kDiouLoss = 5, kCiouLoss = 6;

// [..., N, 4] x [..., M, 4] -> [..., N, M]: the paired op over [..., N, 1, 4]
// and [..., 1, M, 4] views.
template <size_t I>
at::Tensor pairwise(const char* name, const at::Tensor& boxes1, const at::Tensor& boxes2, c10::string_view fmt,
                    double eps) {
  check_defined(name, {"boxes1", "boxes2"}, {boxes1, boxes2});
  TORCH_CHECK_VALUE(
      boxes1.dim() >= 2, name, ": expected boxes1 of shape [..., N, 4], but got ", format_shape(boxes1.sizes()));
  TORCH_CHECK_VALUE(
      boxes2.dim() >= 2, name, ": expected boxes2 of shape [..., M, 4], but got ", format_shape(boxes2.sizes()));
  return forward_op<I>().call(boxes1.unsqueeze(-2), boxes2.unsqueeze(-3), eps, fmt);
}

template <size_t I>
at::Tensor loss_with_reduction(const char* name, const at::Tensor& boxes1, const at::Tensor& boxes2,
                               c10::string_view reduction, double eps, c10::string_view fmt) {
  TORCH_CHECK_VALUE(
      reduction == "none" || reduction == "mean" || reduction == "sum", name,
      ": expected reduction to be 'none', 'mean' or 'sum', but got '", std::string(reduction), "'");
  const auto loss = forward_op<I>().call(boxes1, boxes2, eps, fmt);
  if (reduction == "sum") return loss.sum();
  if (reduction == "mean") {  // torchvision's empty mean; sym_numel: the sizes may be symbolic (torch.export)
    return loss.sym_numel() > 0 ? loss.mean() : 0.0 * loss.sum();
  }
  return loss;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(super_iou, m) {
  for_each_box_op([&](auto index) {
    constexpr size_t I = decltype(index)::value;
    const std::string name = kBoxOps[I].name;
    m.def((name + "(Tensor boxes1, Tensor boxes2, float eps=1e-07, str fmt=\"xyxy\") -> Tensor").c_str(),
          {at::Tag::pt2_compliant_tag});
    m.def((backward_name(kBoxOps[I]) + "(Tensor grad, Tensor boxes1, Tensor boxes2, float eps, str fmt) -> (Tensor, Tensor)")
              .c_str(),
          {at::Tag::pt2_compliant_tag});
  });
  // torchvision.ops' signatures (plus fmt), made of the ops above.
  m.def("box_iou(Tensor boxes1, Tensor boxes2, str fmt=\"xyxy\") -> Tensor", {at::Tag::pt2_compliant_tag});
  m.def("generalized_box_iou(Tensor boxes1, Tensor boxes2, str fmt=\"xyxy\") -> Tensor", {at::Tag::pt2_compliant_tag});
  m.def("distance_box_iou(Tensor boxes1, Tensor boxes2, float eps=1e-07, str fmt=\"xyxy\") -> Tensor",
        {at::Tag::pt2_compliant_tag});
  m.def("complete_box_iou(Tensor boxes1, Tensor boxes2, float eps=1e-07, str fmt=\"xyxy\") -> Tensor",
        {at::Tag::pt2_compliant_tag});
  for (const char* loss : {"generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss"}) {
    m.def((std::string(loss) +
           "(Tensor boxes1, Tensor boxes2, str reduction=\"none\", float eps=1e-07, str fmt=\"xyxy\") -> Tensor")
              .c_str(),
          {at::Tag::pt2_compliant_tag});
  }
}

TORCH_LIBRARY_IMPL(super_iou, Autograd, m) {
  for_each_box_op([&](auto index) {
    constexpr size_t I = decltype(index)::value;
    const std::string name = kBoxOps[I].name;
    m.impl(name.c_str(), &box_pair_autograd<I>);
    m.impl(backward_name(kBoxOps[I]).c_str(), &box_pair_backward_autograd<I>);
  });
}

TORCH_LIBRARY_IMPL(super_iou, CompositeImplicitAutograd, m) {
  m.impl("box_iou", [](const at::Tensor& b1, const at::Tensor& b2, c10::string_view fmt) {
    return pairwise<kPairedIou>("box_iou", b1, b2, fmt, 0.0);
  });
  m.impl("generalized_box_iou", [](const at::Tensor& b1, const at::Tensor& b2, c10::string_view fmt) {
    return pairwise<kPairedGiou>("generalized_box_iou", b1, b2, fmt, 0.0);
  });
  m.impl("distance_box_iou", [](const at::Tensor& b1, const at::Tensor& b2, double eps, c10::string_view fmt) {
    return pairwise<kPairedDiou>("distance_box_iou", b1, b2, fmt, eps);
  });
  m.impl("complete_box_iou", [](const at::Tensor& b1, const at::Tensor& b2, double eps, c10::string_view fmt) {
    return pairwise<kPairedCiou>("complete_box_iou", b1, b2, fmt, eps);
  });
  m.impl("generalized_box_iou_loss",
         [](const at::Tensor& b1, const at::Tensor& b2, c10::string_view reduction, double eps, c10::string_view fmt) {
           return loss_with_reduction<kGiouLoss>("generalized_box_iou_loss", b1, b2, reduction, eps, fmt);
         });
  m.impl("distance_box_iou_loss",
         [](const at::Tensor& b1, const at::Tensor& b2, c10::string_view reduction, double eps, c10::string_view fmt) {
           return loss_with_reduction<kDiouLoss>("distance_box_iou_loss", b1, b2, reduction, eps, fmt);
         });
  m.impl("complete_box_iou_loss",
         [](const at::Tensor& b1, const at::Tensor& b2, c10::string_view reduction, double eps, c10::string_view fmt) {
           return loss_with_reduction<kCiouLoss>("complete_box_iou_loss", b1, b2, reduction, eps, fmt);
         });
}

}  // namespace torchops
