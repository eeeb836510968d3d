// torchops::_cpu_capability() -> str: the CPU capability the kernels run at,
// in the spelling of torch.backends.cpu.get_cpu_capability() (behind
// torchops.cpu_capability()).
#include <torch/library.h>

#include <string>

#include "common/cpu/cpu_capability_kernel.h"

namespace at::native {
DEFINE_DISPATCH(torchops_cpu_capability_stub);
}  // namespace at::native

namespace torchops {
namespace {

std::string cpu_capability() {
  return at::native::torchops_cpu_capability_stub(c10::DeviceType::CPU);
}

}  // namespace

TORCH_LIBRARY(torchops, m) {
  m.def("_cpu_capability() -> str", &cpu_capability);
}

}  // namespace torchops
