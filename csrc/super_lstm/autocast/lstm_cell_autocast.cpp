// Autocast policy of super_lstm::lstm_cell: PyTorch's own for aten::lstm_cell
// (what torch.nn.LSTMCell calls) on each device.
// - CUDA: aten::lstm_cell is on the lower-precision list, so the op runs in
//   the autocast dtype (float16 or bfloat16): the gates, cx and the biases are
//   cast to it (float64 stays float64) and hy, cy come back in it. The kernels
//   compute in float internally.
// - CPU: aten::lstm_cell is on no CPU autocast list, so nothing is cast: the
//   op sees what autocast's matmuls produced (lower-precision gates) beside a
//   float32 cell state and promotes like the eager expression (float32 hy and
//   cy, as torch.nn.LSTMCell returns). No AutocastCPU kernel is registered:
//   the autocast keys fall through to the op.
#include <torch/library.h>

#include "common/autocast.h"
#include "super_lstm/lstm_cell.h"

namespace torchops {
namespace {

std::tuple<at::Tensor, at::Tensor> lstm_cell_autocast_cuda(
    const at::Tensor& input_gates, const at::Tensor& hidden_gates, const at::Tensor& cx,
    const std::optional<at::Tensor>& b_ih, const std::optional<at::Tensor>& b_hh) {
  constexpr auto device = c10::DeviceType::CUDA;
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
  m.impl("lstm_cell", &lstm_cell_autocast_cuda);
}

}  // namespace torchops
