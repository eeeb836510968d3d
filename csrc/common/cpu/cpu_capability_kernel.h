#pragma once
// Which copy of the CPU kernels runs here: a stub like the kernels' own,
// registered by each copy of cpu/cpu_capability_kernel.cpp, so it answers
// with the capability the kernel stubs pick ("DEFAULT", "AVX2", "AVX512").
#include <ATen/native/DispatchStub.h>

namespace at::native {

using torchops_cpu_capability_fn = const char* (*)();
DECLARE_DISPATCH(torchops_cpu_capability_fn, torchops_cpu_capability_stub)

}  // namespace at::native
