#pragma once
// Which copy of the CPU kernels runs here: a stub like the kernels' own,
// registered by each copy of cpu/cpu_capability_kernel.cpp, so it answers
// with the capability the kernel stubs pick ("DEFAULT", "AVX2", "AVX512").
// Every stub is registered with ALSO_REGISTER_AVX512_DISPATCH: ATen's plain
// REGISTER_DISPATCH leaves the AVX-512 slot empty (that CPU then runs the AVX2
// copy), and our kernels are faster with AVX-512.
#include <ATen/native/DispatchStub.h>

namespace at::native {

using torchops_cpu_capability_fn = const char* (*)();
DECLARE_DISPATCH(torchops_cpu_capability_fn, torchops_cpu_capability_stub)

}  // namespace at::native
