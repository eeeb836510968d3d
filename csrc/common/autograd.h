#pragma once
// What the autograd kernels (declared::Op's, the box family's) share.
#include <ATen/core/grad_mode.h>
#include <ATen/core/LegacyTypeDispatch.h>

#include <utility>

namespace torchops {

// Runs `call`, a call of an op's backward op through the dispatcher, from the
// backward of that op's autograd Function.
//
// Without create_graph (grad mode is off inside the engine, the usual case) it
// runs below the Autograd keys: the backward op's own autograd kernel would
// only wrap the call in a Function whose node nobody keeps. The dispatcher
// still picks the device kernel, and Python modes and fake tensors (what
// torch.compile traces the backward with) still see the op.
//
// With create_graph it goes through that autograd kernel, whose node makes
// double backward a clear error rather than silently wrong second derivatives.
template <typename Call>
decltype(auto) call_backward_op(Call&& call) {
  if (at::GradMode::is_enabled()) {
    return std::forward<Call>(call)();
  }
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  return std::forward<Call>(call)();
}

}  // namespace torchops
