#pragma once
// What the autograd kernels (declared::Op's, the box family's) share.
#include <ATen/FuncTorchTLS.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/grad_mode.h>

#include <initializer_list>
#include <optional>
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

// An autograd kernel runs its call through its autograd Function
// (torch::autograd::Function::apply) where autograd records it
// (records_gradient: grad mode on and an input that requires grad), and
// where apply raises an error of its own (apply_raises: an input with a
// forward-mode gradient, "jvp is not implemented for the c++ API"; inside
// functorch's transforms, whose thread-local state is set, apply checks
// whether one is active). Elsewhere it calls the op below autograd
// (BelowAutograd), as apply would, without making a node that nothing keeps:
// the same outputs, without grad_fn. Undefined entries (nullptr, absent
// optional inputs) count as no input.
inline bool records_gradient(std::initializer_list<const at::Tensor*> inputs) {
  if (!at::GradMode::is_enabled()) {
    return false;
  }
  for (const at::Tensor* t : inputs) {
    if (t != nullptr && t->defined() && t->requires_grad()) {
      return true;
    }
  }
  return false;
}
inline bool apply_raises(std::initializer_list<const at::Tensor*> inputs) {
  if (at::functorch::functorchTLSAccessor()) {
    return true;
  }
  for (const at::Tensor* t : inputs) {
    if (t != nullptr && t->defined() && t->_fw_grad(/*level=*/0).defined()) {
      return true;
    }
  }
  return false;
}

inline const at::Tensor* optional_pointer(const std::optional<at::Tensor>& t) {
  return t.has_value() ? &*t : nullptr;
}

// While alive, calls dispatch below the autograd keys with grad mode off: how
// torch::autograd::Function::apply runs a forward.
struct BelowAutograd {
  at::AutoDispatchBelowADInplaceOrView below_autograd;
  at::AutoGradMode grad_mode{false};
};

}  // namespace torchops
