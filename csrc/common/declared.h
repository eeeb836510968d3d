#pragma once
// The op layer for pointwise ops: N tensor inputs that broadcast together,
// scalar parameters, one output and a backward op returning the N input
// gradients. An op is a declaration (a struct, see super_iou/ratio_iou.h):
//
//   struct MyOp {
//     static constexpr const char* kNamespace = "super_iou";
//     static constexpr const char* kName = "my_op";           // backward: _my_op_backward
//     static constexpr std::array<const char*, 2> kArgNames = {"a", "b"};
//     static constexpr std::array<const char*, 1> kScalarArgs = {"float eps=1e-05"};
//     using Scalars = declared::Scalars<double>;
//     static constexpr declared::Autocast kAutocast = declared::Autocast::kFloat32;
//     static void check_scalars(const char* op, double eps);
//   };
//
// and Op<MyOp> gives the schema of both ops, the C++ entry points, the checks
// (named arguments, floating dtypes, one device, broadcasting, dtype
// promotion), the autograd and autocast kernels, and the wrappers that hand
// the device kernels their checked arguments (impl_kernels). Its Python twin
// is torchops/_declared.py.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ExpandUtils.h>
#include <ATen/TensorIterator.h>
#include <ATen/native/TypeProperties.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "common/autocast.h"
#include "common/autograd.h"
#include "common/checks.h"

namespace torchops::declared {

enum class Autocast {
  kNone,     // not on an autocast list: the kernels take half types as they are
  kFloat32,  // runs in float32 under autocast (float64 stays float64)
};

template <typename... S>
struct Scalars {};

// The inputs after the checks, in their promoted dtype, and the broadcast shape.
template <size_t N>
struct Prepared {
  std::array<at::Tensor, N> inputs;
  std::vector<int64_t> shape;
};

// One `const at::Tensor&` per input index. Through a class, not a plain alias:
// nvcc's front end drops a pack-expanded alias that ignores its parameter, and
// the host compiler then fails on the code it generates.
template <size_t>
struct TensorRefOf {
  using type = const at::Tensor&;
};
template <size_t I>
using TensorRef = typename TensorRefOf<I>::type;

// The TensorIterator of a kernel's general path (broadcasts, strides, 0-d
// tensors): `outputs`, then the `lead` inputs (an upstream gradient), then `inputs`.
inline at::TensorIterator make_iterator(
    c10::ArrayRef<at::Tensor> outputs, c10::ArrayRef<at::Tensor> lead, c10::ArrayRef<at::Tensor> inputs) {
  at::TensorIteratorConfig config;
  for (const auto& t : outputs) {
    config.add_owned_output(t);
  }
  for (const auto* list : {&lead, &inputs}) {
    for (const auto& t : *list) {
      config.add_owned_const_input(t);
    }
  }
  return config.build();
}

template <class Sig>
c10::TypedOperatorHandle<Sig> find_typed_op(const std::string& name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name.c_str(), "").typed<Sig>();
}

template <class Decl, class I = std::make_index_sequence<Decl::kArgNames.size()>,
          class S = typename Decl::Scalars>
struct Op;

template <class Decl, size_t... I, typename... S>
struct Op<Decl, std::index_sequence<I...>, Scalars<S...>> {
  static constexpr size_t N = sizeof...(I);
  static_assert(Decl::kScalarArgs.size() == sizeof...(S), "one schema argument per scalar");

  using Forward = at::Tensor(TensorRef<I>..., S...);
  using Backward = std::vector<at::Tensor>(const at::Tensor&, TensorRef<I>..., S...);
  // Device kernels: checked arguments in, output(s) out.
  using ForwardKernel = at::Tensor (*)(const Prepared<N>&, S...);
  using BackwardKernel = std::vector<at::Tensor> (*)(const at::Tensor& grad, const Prepared<N>&, S...);

  static const std::string& backward_name() {
    static const std::string name = std::string("_") + Decl::kName + "_backward";
    return name;
  }
  // The op name in the backward's error messages.
  static const char* backward_label() {
    static const std::string label = std::string(Decl::kName) + "_backward";
    return label.c_str();
  }

  static std::string schema() {
    std::string s = std::string(Decl::kName) + "(" + tensor_args() + scalar_args(true) + ") -> Tensor";
    return s;
  }
  static std::string backward_schema() {
    return backward_name() + "(Tensor grad, " + tensor_args() + scalar_args(false) + ") -> Tensor[]";
  }

  // C++ entry points through the dispatcher, as torch.ops.<ns>.<name> from Python.
  static at::Tensor call(TensorRef<I>... t, S... s) {
    static const auto op = find_typed_op<Forward>(std::string(Decl::kNamespace) + "::" + Decl::kName);
    return op.call(t..., s...);
  }
  static std::vector<at::Tensor> call_backward(const at::Tensor& grad, TensorRef<I>... t, S... s) {
    static const auto op = find_typed_op<Backward>(std::string(Decl::kNamespace) + "::" + backward_name());
    return op.call(grad, t..., s...);
  }

  static Prepared<N> prepare(const char* op, const std::array<at::Tensor, N>& inputs, S... s) {
    Decl::check_scalars(op, s...);
    for (size_t i = 0; i < N; ++i) {
      check_floating(op, Decl::kArgNames[i], inputs[i]);
    }
    check_same_device(op, Decl::kArgNames, inputs);
    Prepared<N> prepared{inputs, broadcast_shape_or_throw(op, Decl::kArgNames, inputs)};
    // dtype promotion as in the eager expression (0-d tensors count less)
    const auto dtype = at::native::result_type(at::ITensorListRef(inputs));
    for (auto& t : prepared.inputs) {
      if (t.scalar_type() != dtype) {
        t = t.to(dtype);
      }
    }
    return prepared;
  }

  // The backward's upstream gradient must have the output's shape (or broadcast to it).
  static Prepared<N> prepare_backward(const at::Tensor& grad, const std::array<at::Tensor, N>& inputs, S... s) {
    const char* op = backward_label();
    auto prepared = prepare(op, inputs, s...);
    check_floating(op, "grad", grad);
    check_same_device(op, {Decl::kArgNames[0], "grad"}, {inputs[0], grad});
    check_expandable_to(op, "grad", grad, prepared.shape);
    return prepared;
  }

  // The device kernels of both ops, each given its checked arguments.
  template <ForwardKernel F, BackwardKernel B>
  static void impl_kernels(torch::Library& m) {
    m.impl(Decl::kName, &forward_entry<F>);
    m.impl(backward_name().c_str(), &backward_entry<B>);
  }

  // Both schemas, and the autograd and autocast kernels.
  static void define(torch::Library& m) {
    m.def(schema().c_str(), {at::Tag::pt2_compliant_tag});
    m.def(backward_schema().c_str(), {at::Tag::pt2_compliant_tag});
    m.impl(Decl::kName, c10::DispatchKey::Autograd, &autograd_entry);
    m.impl(backward_name().c_str(), c10::DispatchKey::Autograd, &backward_autograd_entry);
    if constexpr (Decl::kAutocast == Autocast::kFloat32) {
      m.impl(Decl::kName, c10::DispatchKey::Autocast, &autocast_entry<c10::DeviceType::CUDA>);
      m.impl(Decl::kName, c10::DispatchKey::AutocastCPU, &autocast_entry<c10::DeviceType::CPU>);
    }
  }

 private:
  using AutogradContext = torch::autograd::AutogradContext;
  using variable_list = torch::autograd::variable_list;

  static std::string tensor_args() {
    std::string s;
    for (size_t i = 0; i < N; ++i) {
      s += std::string(i ? ", " : "") + "Tensor " + Decl::kArgNames[i];
    }
    return s;
  }
  // The backward takes the scalars without defaults.
  static std::string scalar_args(bool defaults) {
    std::string s;
    for (const char* arg : Decl::kScalarArgs) {
      std::string a = arg;
      if (!defaults) {
        a = a.substr(0, a.find('='));
      }
      s += ", " + a;
    }
    return s;
  }
  static std::string scalar_key(size_t j) { return "scalar" + std::to_string(j); }

  template <ForwardKernel F>
  static at::Tensor forward_entry(TensorRef<I>... t, S... s) {
    return F(prepare(Decl::kName, {t...}, s...), s...);
  }
  template <BackwardKernel B>
  static std::vector<at::Tensor> backward_entry(const at::Tensor& grad, TensorRef<I>... t, S... s) {
    return B(grad, prepare_backward(grad, {t...}, s...), s...);
  }

  struct Function : torch::autograd::Function<Function> {
    static at::Tensor forward(AutogradContext* ctx, TensorRef<I>... t, S... s) {
      at::AutoDispatchBelowADInplaceOrView guard;
      size_t j = 0;
      ((ctx->saved_data[scalar_key(j++)] = s), ...);
      ctx->save_for_backward({t...});
      return call(t..., s...);
    }

    static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
      const auto saved = ctx->get_saved_variables();
      auto grads = call_backward_op(
          [&] { return call_saved(ctx, grad_outputs[0], saved, std::index_sequence_for<S...>{}); });
      // A broadcast input gets the sum of its gradient over the broadcast dims.
      for (size_t i = 0; i < N; ++i) {
        if (grads[i].sizes() != saved[i].sizes()) {
          grads[i] = at::sum_to(grads[i], saved[i].sizes());
        }
      }
      grads.resize(N + sizeof...(S));  // none for the scalars
      return grads;
    }

    template <size_t... J>
    static std::vector<at::Tensor> call_saved(
        AutogradContext* ctx, const at::Tensor& grad, const variable_list& saved, std::index_sequence<J...>) {
      return call_backward(grad, saved[I]..., ctx->saved_data[scalar_key(J)].template to<S>()...);
    }
  };

  // The backward op is not differentiable itself: double backward is an error
  // that says so, instead of silently wrong second derivatives. (Plain backward
  // passes skip this kernel: see call_backward_op.)
  struct BackwardFunction : torch::autograd::Function<BackwardFunction> {
    static variable_list forward(AutogradContext* /*ctx*/, const at::Tensor& grad, TensorRef<I>... t, S... s) {
      at::AutoDispatchBelowADInplaceOrView guard;
      return call_backward(grad, t..., s...);
    }
    static variable_list backward(AutogradContext* /*ctx*/, variable_list /*grad_outputs*/) {
      TORCH_CHECK(false, Decl::kName, ": double backward (gradients of gradients) is not supported");
    }
  };

  static at::Tensor autograd_entry(TensorRef<I>... t, S... s) {
    // building the autograd node reads each input's device
    check_defined(Decl::kName, Decl::kArgNames, {t...});
    return Function::apply(t..., s...);
  }
  static std::vector<at::Tensor> backward_autograd_entry(const at::Tensor& grad, TensorRef<I>... t, S... s) {
    check_defined(backward_label(), {"grad"}, {grad});
    check_defined(backward_label(), Decl::kArgNames, {t...});
    return BackwardFunction::apply(grad, t..., s...);
  }

  template <c10::DeviceType device>
  static at::Tensor autocast_entry(TensorRef<I>... t, S... s) {
    ExcludeAutocast no_autocast(kAutocastKeys);
    return call(autocast_to(t, at::kFloat, device)..., s...);
  }
};

}  // namespace torchops::declared
