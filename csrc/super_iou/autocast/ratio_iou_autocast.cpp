// Autocast policy of super_iou::ratio_iou: float32. Box coordinates and areas
// overflow float16 quickly (a 256 x 256 box already has area 65536), so under
// autocast the op runs in float32 and returns float32, like the ops on
// PyTorch's own float32 autocast list. float64 inputs stay float64.
#include <torch/library.h>

#include "common/autocast.h"
#include "super_iou/ratio_iou.h"

namespace torchops {
namespace {

template <c10::DeviceType device>
at::Tensor ratio_iou_autocast(
    const at::Tensor& x1, const at::Tensor& y1, const at::Tensor& w1, const at::Tensor& h1,
    const at::Tensor& x2, const at::Tensor& y2, const at::Tensor& w2, const at::Tensor& h2,
    double eps) {
  ExcludeAutocast no_autocast(kAutocastKeys);
  const auto f32 = [](const at::Tensor& t) { return autocast_to(t, at::kFloat, device); };
  return ratio_iou(f32(x1), f32(y1), f32(w1), f32(h1), f32(x2), f32(y2), f32(w2), f32(h2), eps);
}

}  // namespace

TORCH_LIBRARY_IMPL(super_iou, Autocast, m) {
  m.impl("ratio_iou", &ratio_iou_autocast<c10::DeviceType::CUDA>);
}

TORCH_LIBRARY_IMPL(super_iou, AutocastCPU, m) {
  m.impl("ratio_iou", &ratio_iou_autocast<c10::DeviceType::CPU>);
}

}  // namespace torchops
