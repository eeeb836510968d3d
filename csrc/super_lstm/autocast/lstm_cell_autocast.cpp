// Autocast policy of super_lstm::lstm_cell: the autocast dtype (float16 or
// bfloat16), as for aten::lstm_cell on PyTorch's lower-precision list. The
// gates come from matmuls that autocast already runs in that dtype; cx and
// the biases are cast to match (float64 stays float64). The kernels compute
// in float internally.
#include <torch/library.h>

#include "common/autocast.h"
#include "super_lstm/lstm_cell.h"

namespace torchops {
namespace {

template <c10::DeviceType device>
std::tuple<at::Tensor, at::Tensor> lstm_cell_autocast(
    const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
    const std::optional<at::Tensor>& b_ih, const std::optional<at::Tensor>& b_hh) {
  ExcludeAutocast no_autocast(kAutocastKeys);
  const auto dtype = autocast_lower_precision(device);
  const auto cast = [dtype](const at::Tensor& t) { return autocast_to(t, dtype, device); };
  const auto cast_optional = [&](const std::optional<at::Tensor>& t) {
    return t.has_value() ? std::optional<at::Tensor>(cast(*t)) : std::nullopt;
  };
  return lstm_cell(cast(input_gates), cast(hidden_gates), cast(cx), cast_optional(b_ih), cast_optional(b_hh));
}

}  // namespace

TORCH_LIBRARY_IMPL(super_lstm, Autocast, m) {
  m.impl("lstm_cell", &lstm_cell_autocast<c10::DeviceType::CUDA>);
}

TORCH_LIBRARY_IMPL(super_lstm, AutocastCPU, m) {
  m.impl("lstm_cell", &lstm_cell_autocast<c10::DeviceType::CPU>);
}

}  // namespace torchops
