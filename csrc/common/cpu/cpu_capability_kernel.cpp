// Compiled once per CPU capability, as the kernels are (torchops/_build.py).
#include "common/cpu/cpu_capability_kernel.h"

#include <c10/macros/Macros.h>

namespace torchops {
inline namespace CPU_CAPABILITY {
namespace {

const char* capability_name() {
  return C10_STRINGIZE(CPU_CAPABILITY);
}

}  // namespace
}  // namespace CPU_CAPABILITY
}  // namespace torchops

namespace at::native {
ALSO_REGISTER_AVX512_DISPATCH(torchops_cpu_capability_stub, &torchops::capability_name)
}  // namespace at::native
