#pragma once
// The op layer: an op is a declaration (a struct) and Op<Decl> makes its
// schemas, C++ entry points, checks, autograd and autocast kernels, and the
// wrappers that hand the device kernels their checked arguments
// (impl_kernels). Its Python twin is torchops/_declared.py.
//
// The plain form (super_iou/ratio_iou.h): N tensor inputs that broadcast
// together, scalar parameters, one output, and a backward op
// `_<name>_backward(Tensor grad, <inputs>, <scalars>) -> Tensor[]` returning
// the N input gradients:
//
//   struct MyOp {
//     static constexpr const char* kNamespace = "super_iou";
//     static constexpr const char* kName = "my_op";
//     static constexpr std::array<const char*, 2> kArgNames = {"a", "b"};
//     static constexpr std::array<const char*, 1> kScalarArgs = {"float eps=1e-05"};
//     using Scalars = declared::Scalars<double>;
//     static constexpr declared::Autocast kAutocast = declared::Autocast::kFloat32;
//     static void check_scalars(const char* op, double eps);
//   };
//
// The workspace form (super_lstm/lstm_cell.h) adds to that:
//   kOptionalArgs   `Tensor? x=None` inputs after the tensors;
//   kOutputNames    several outputs (their gradients are grad_<output>);
//   Shape, check_shapes(op, args)
//                   its own shape rules instead of broadcasting, run after
//                   promotion (it may view the tensors for the kernels);
//   Workspace       a nested struct: a training forward `_<name>_forward`
//                   also returns a workspace, and the backward op
//                   `_<name>_backward(<output grads>, <kSavedArgs inputs>,
//                   Tensor workspace, <kScalarArgs>) -> kGradients tensors`
//                   reads it instead of every input. Its Args and prepare()
//                   make the backward kernel's arguments (after the layer's
//                   dtype and device checks), scalars() the backward's scalars
//                   from which optional inputs were given, input_grads() the
//                   input gradients from the backward's results.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ExpandUtils.h>
#include <ATen/TensorIterator.h>
#include <ATen/native/TypeProperties.h>
#include <c10/util/SmallVector.h>
#include <torch/autograd.h>
#include <torch/library.h>

#include <array>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/autocast.h"
#include "common/autograd.h"
#include "common/checks.h"

namespace torchops::declared {

enum class Autocast {
  kNone,     // not on an autocast list: the kernels take half types as they are
  kFloat32,  // runs in float32 under autocast (float64 stays float64)
  // As aten::lstm_cell: on CUDA's lower-precision list (runs in the autocast
  // dtype), on no CPU list (mixed dtypes promote).
  kLowerPrecisionOnCuda,
};

template <typename... S>
struct Scalars {};

// The inputs after the checks, in their promoted dtype, and their shape (the
// broadcast shape, or the declaration's Shape).
template <size_t N, size_t M = 0, class Shape = std::vector<int64_t>>
struct Prepared {
  std::array<at::Tensor, N> inputs;
  std::array<at::Tensor, M> optional;  // undefined where absent
  Shape shape;
};

// One `const at::Tensor&` (or optional, or tensor) per index. Through a
// class, not a plain alias: nvcc's front end drops a pack-expanded alias that
// ignores its parameter, and the host compiler then fails on the code it generates.
template <size_t>
struct TensorRefOf {
  using type = const at::Tensor&;
};
template <size_t I>
using TensorRef = typename TensorRefOf<I>::type;
template <size_t>
struct OptionalRefOf {
  using type = const std::optional<at::Tensor>&;
};
template <size_t J>
using OptionalRef = typename OptionalRefOf<J>::type;
template <size_t>
struct TensorOf {
  using type = at::Tensor;
};

// K tensors as a schema returns them: at::Tensor for one, else a tuple.
template <class K>
struct TensorTuple;
template <size_t... K>
struct TensorTuple<std::index_sequence<K...>> {
  using type = std::tuple<typename TensorOf<K>::type...>;
};
template <size_t K>
using Tensors = std::conditional_t<K == 1, at::Tensor, typename TensorTuple<std::make_index_sequence<K>>::type>;

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

// What a declaration may leave out: optional inputs, the workspace form,
// several outputs, its own shape rules (detected C++17-style: the GPU
// machine's torch builds extensions as C++17).
template <class Decl, class = void>
constexpr bool has_optional_args = false;
template <class Decl>
constexpr bool has_optional_args<Decl, std::void_t<decltype(Decl::kOptionalArgs)>> = true;
template <class Decl, class = void>
constexpr bool has_output_names = false;
template <class Decl>
constexpr bool has_output_names<Decl, std::void_t<decltype(Decl::kOutputNames)>> = true;
template <class Decl, class = void>
constexpr bool has_workspace = false;
template <class Decl>
constexpr bool has_workspace<Decl, std::void_t<typename Decl::Workspace>> = true;
template <class Decl, class = void>
constexpr bool has_own_shapes = false;
template <class Decl>
constexpr bool has_own_shapes<Decl, std::void_t<typename Decl::Shape>> = true;
template <class T, class = void>
constexpr bool is_tuple_like = false;
template <class T>
constexpr bool is_tuple_like<T, std::void_t<decltype(std::tuple_size<T>::value)>> = true;

template <class Decl>
constexpr size_t optional_count() {
  if constexpr (has_optional_args<Decl>) {
    return Decl::kOptionalArgs.size();
  } else {
    return 0;
  }
}
template <class Decl>
constexpr size_t output_count() {
  if constexpr (has_output_names<Decl>) {
    return Decl::kOutputNames.size();
  } else {
    return 1;
  }
}

// The backward op's parameters: the output gradients (G), the saved tensors
// (V) and the scalars (B); its results and what its device kernel is given.
template <class Decl, bool = has_workspace<Decl>>
struct BackwardOf {  // plain: the gradient, every input, the forward's scalars
  using Grads = std::index_sequence<0>;
  using Saved = std::make_index_sequence<Decl::kArgNames.size()>;
  using Scalars = typename Decl::Scalars;
  using Out = std::vector<at::Tensor>;
  using Args = std::nullptr_t;  // unused: the plain kernel takes the forward's Prepared
};
template <class Decl>
struct BackwardOf<Decl, true> {  // workspace: output gradients, kSavedArgs inputs and the workspace
  using W = typename Decl::Workspace;
  using Grads = std::make_index_sequence<output_count<Decl>()>;
  using Saved = std::make_index_sequence<W::kSavedArgs.size() + 1>;
  using Scalars = typename W::Scalars;
  using Out = Tensors<W::kGradients>;
  using Args = typename W::Args;
};

template <class Decl, bool = has_own_shapes<Decl>>
struct ShapeOf {
  using type = std::vector<int64_t>;
};
template <class Decl>
struct ShapeOf<Decl, true> {
  using type = typename Decl::Shape;
};

// A kernel's outputs as autograd passes them (variable_list) and back.
inline torch::autograd::variable_list as_list(at::Tensor&& t) {
  return {std::move(t)};
}
inline torch::autograd::variable_list as_list(std::vector<at::Tensor>&& t) {
  return std::move(t);
}
template <class... T>
torch::autograd::variable_list as_list(std::tuple<T...>&& t) {
  torch::autograd::variable_list out;
  out.reserve(sizeof...(T));
  std::apply([&](auto&... x) { (out.push_back(std::move(x)), ...); }, t);
  return out;
}
template <class Out, size_t... L>
Out from_list(torch::autograd::variable_list&& list, std::index_sequence<L...>) {
  if constexpr (std::is_same_v<Out, at::Tensor>) {
    return std::move(list[0]);
  } else if constexpr (std::is_same_v<Out, std::vector<at::Tensor>>) {
    return std::move(list);
  } else {
    return Out{std::move(list[L])...};
  }
}
template <class Out>
Out from_list(torch::autograd::variable_list&& list) {
  if constexpr (is_tuple_like<Out>) {
    return from_list<Out>(std::move(list), std::make_index_sequence<std::tuple_size_v<Out>>{});
  } else {
    return from_list<Out>(std::move(list), std::index_sequence<>{});
  }
}

inline std::optional<at::Tensor> as_optional(const at::Tensor& t) {
  return t.defined() ? std::optional<at::Tensor>(t) : std::nullopt;
}
inline at::Tensor value_or_undefined(const std::optional<at::Tensor>& t) {
  return t.has_value() ? *t : at::Tensor();
}

// The autograd Functions of an op and of its backward op (below Op).
template <class Decl>
struct Autograd;
template <class Decl>
struct BackwardAutograd;

template <class Decl, class I = std::make_index_sequence<Decl::kArgNames.size()>,
          class J = std::make_index_sequence<optional_count<Decl>()>, class S = typename Decl::Scalars,
          class G = typename BackwardOf<Decl>::Grads, class V = typename BackwardOf<Decl>::Saved,
          class B = typename BackwardOf<Decl>::Scalars>
struct Op;

// I: tensor inputs, J: optional inputs, S: scalars; the backward op takes the
// G output gradients, the V saved tensors and the B scalars.
template <class Decl, size_t... I, size_t... J, typename... S, size_t... G, size_t... V, typename... B>
struct Op<Decl, std::index_sequence<I...>, std::index_sequence<J...>, Scalars<S...>, std::index_sequence<G...>,
          std::index_sequence<V...>, Scalars<B...>> {
  static constexpr size_t N = sizeof...(I);
  static constexpr size_t M = sizeof...(J);
  static constexpr size_t K = output_count<Decl>();
  static constexpr bool kWorkspace = has_workspace<Decl>;
  static constexpr bool kOwnShapes = has_own_shapes<Decl>;
  static_assert(Decl::kScalarArgs.size() == sizeof...(S), "one schema argument per scalar");
  static_assert(kWorkspace || (M == 0 && K == 1), "optional inputs and several outputs need the workspace form");

  using Args = Prepared<N, M, typename ShapeOf<Decl>::type>;
  using Out = Tensors<K>;
  using TrainingOut = Tensors<K + 1>;  // the outputs and the workspace
  using BackwardOut = typename BackwardOf<Decl>::Out;
  using Forward = Out(TensorRef<I>..., OptionalRef<J>..., S...);
  using Training = TrainingOut(TensorRef<I>..., OptionalRef<J>..., S...);
  using Backward = BackwardOut(TensorRef<G>..., TensorRef<V>..., B...);
  // Device kernels: checked arguments in, outputs out. The workspace form's
  // forward kernel returns the outputs and, if asked, the workspace (else
  // undefined); its backward kernel gets what Workspace::prepare made.
  using ForwardKernel = std::conditional_t<kWorkspace, TrainingOut (*)(const Args&, bool workspace, S...),
                                           at::Tensor (*)(const Args&, S...)>;
  using BackwardKernel =
      std::conditional_t<kWorkspace, BackwardOut (*)(const typename BackwardOf<Decl>::Args&, B...),
                         std::vector<at::Tensor> (*)(const at::Tensor& grad, const Args&, S...)>;

  static const std::string& training_name() {
    static const std::string name = std::string("_") + Decl::kName + "_forward";
    return name;
  }
  static const std::string& backward_name() {
    static const std::string name = std::string("_") + Decl::kName + "_backward";
    return name;
  }
  // The op name in the backward's error messages.
  static const char* backward_label() {
    static const std::string label = std::string(Decl::kName) + "_backward";
    return label.c_str();
  }

  static std::string schema() { return signature(Decl::kName) + " -> " + returns(K); }
  static std::string training_schema() { return signature(training_name()) + " -> " + returns(K + 1); }
  static std::string backward_schema() {
    std::string s = backward_name() + "(";
    for (size_t g = 0; g < sizeof...(G); ++g) {
      s += std::string(g ? ", " : "") + "Tensor " + grad_name(g);
    }
    for (const char* name : saved_names()) {
      s += std::string(", Tensor ") + name;
    }
    if constexpr (kWorkspace) {
      return s + scalar_args(Decl::Workspace::kScalarArgs, false) + ") -> " + returns(Decl::Workspace::kGradients);
    } else {
      return s + scalar_args(Decl::kScalarArgs, false) + ") -> Tensor[]";
    }
  }

  // C++ entry points through the dispatcher, as torch.ops.<ns>.<name> from Python.
  static Out call(TensorRef<I>... t, OptionalRef<J>... o, S... s) {
    static const auto op = find_typed_op<Forward>(qualified(Decl::kName));
    return op.call(t..., o..., s...);
  }
  static TrainingOut call_training(TensorRef<I>... t, OptionalRef<J>... o, S... s) {
    static const auto op = find_typed_op<Training>(qualified(training_name()));
    return op.call(t..., o..., s...);
  }
  static BackwardOut call_backward(TensorRef<G>... g, TensorRef<V>... v, B... b) {
    static const auto op = find_typed_op<Backward>(qualified(backward_name()));
    return op.call(g..., v..., b...);
  }

  static Args prepare(const char* op, std::array<at::Tensor, N> inputs, std::array<at::Tensor, M> optional, S... s) {
    Decl::check_scalars(op, s...);
    Args prepared{std::move(inputs), std::move(optional), {}};
    const auto dtype = check_dtypes_and_device(op, prepared);
    if constexpr (kOwnShapes) {
      promote(prepared, dtype);
      prepared.shape = Decl::check_shapes(op, prepared);
    } else {
      prepared.shape = broadcast_shape_or_throw(op, Decl::kArgNames, prepared.inputs);
      promote(prepared, dtype);
    }
    return prepared;
  }

  // The plain backward's upstream gradient must have the output's shape (or broadcast to it).
  static Args prepare_backward(const at::Tensor& grad, const std::array<at::Tensor, N>& inputs, S... s) {
    const char* op = backward_label();
    auto prepared = prepare(op, inputs, {}, s...);
    check_floating(op, "grad", grad);
    check_same_device(op, {Decl::kArgNames[0], "grad"}, {inputs[0], grad});
    check_expandable_to(op, "grad", grad, prepared.shape);
    return prepared;
  }

  // The device kernels of the ops, each given its checked arguments.
  template <ForwardKernel F, BackwardKernel Bk>
  static void impl_kernels(torch::Library& m) {
    m.impl(Decl::kName, &forward_entry<F>);
    if constexpr (kWorkspace) {
      m.impl(training_name().c_str(), &training_entry<F>);
    }
    m.impl(backward_name().c_str(), &backward_entry<Bk>);
  }

  // The schemas, and the autograd and autocast kernels.
  static void define(torch::Library& m) {
    m.def(schema().c_str(), {at::Tag::pt2_compliant_tag});
    if constexpr (kWorkspace) {
      m.def(training_schema().c_str(), {at::Tag::pt2_compliant_tag});
    }
    m.def(backward_schema().c_str(), {at::Tag::pt2_compliant_tag});
    m.impl(Decl::kName, c10::DispatchKey::Autograd, &autograd_entry);
    if constexpr (kWorkspace) {
      m.impl(training_name().c_str(), c10::DispatchKey::Autograd, &training_autograd_entry);
    }
    m.impl(backward_name().c_str(), c10::DispatchKey::Autograd, &backward_autograd_entry);
    if constexpr (Decl::kAutocast != Autocast::kNone) {
      m.impl(Decl::kName, c10::DispatchKey::Autocast, &autocast_entry<c10::DeviceType::CUDA>);
    }
    if constexpr (Decl::kAutocast == Autocast::kFloat32) {
      m.impl(Decl::kName, c10::DispatchKey::AutocastCPU, &autocast_entry<c10::DeviceType::CPU>);
    }
  }

 private:
  friend struct Autograd<Decl>;
  friend struct BackwardAutograd<Decl>;
  using AutogradContext = torch::autograd::AutogradContext;
  using variable_list = torch::autograd::variable_list;

  static std::string qualified(const std::string& name) { return std::string(Decl::kNamespace) + "::" + name; }
  static std::string returns(size_t count) {
    if (count == 1) {
      return "Tensor";
    }
    std::string s = "(Tensor";
    for (size_t k = 1; k < count; ++k) {
      s += ", Tensor";
    }
    return s + ")";
  }
  static std::string signature(const std::string& name) {
    std::string s = name + "(";
    for (size_t i = 0; i < N; ++i) {
      s += std::string(i ? ", " : "") + "Tensor " + Decl::kArgNames[i];
    }
    if constexpr (M > 0) {
      for (const char* arg : Decl::kOptionalArgs) {
        s += std::string(", Tensor? ") + arg + "=None";
      }
    }
    return s + scalar_args(Decl::kScalarArgs, true) + ")";
  }
  // The backward takes the scalars without defaults.
  template <class Names>
  static std::string scalar_args(const Names& args, bool defaults) {
    std::string s;
    for (const char* arg : args) {
      std::string a = arg;
      if (!defaults) {
        a = a.substr(0, a.find('='));
      }
      s += ", " + a;
    }
    return s;
  }
  // One output's gradient is `grad`; with several, grad_<output>.
  static const char* grad_name(size_t g) {
    if constexpr (has_output_names<Decl>) {
      static const std::array<std::string, K> names{(std::string("grad_") + Decl::kOutputNames[G])...};
      return names[g].c_str();
    } else {
      return "grad";
    }
  }
  static std::array<const char*, sizeof...(V)> saved_names() {
    if constexpr (kWorkspace) {
      std::array<const char*, sizeof...(V)> names{};
      for (size_t v = 0; v + 1 < names.size(); ++v) {
        names[v] = Decl::kArgNames[Decl::Workspace::kSavedArgs[v]];
      }
      names.back() = "workspace";
      return names;
    } else {
      return Decl::kArgNames;
    }
  }
  // The scalars in the autograd context: saved_data["scalar<j>"] (keys made once).
  static const std::array<std::string, sizeof...(S)>& scalar_keys() {
    static const auto keys = [] {
      std::array<std::string, sizeof...(S)> k;
      for (size_t j = 0; j < k.size(); ++j) {
        k[j] = "scalar" + std::to_string(j);
      }
      return k;
    }();
    return keys;
  }
  static void save_scalars([[maybe_unused]] AutogradContext* ctx, S... s) {
    [[maybe_unused]] size_t j = 0;
    ((ctx->saved_data[scalar_keys()[j++]] = s), ...);
  }
  static std::tuple<S...> saved_scalars(AutogradContext* ctx) {
    return saved_scalars(ctx, std::index_sequence_for<S...>{});
  }
  template <size_t... L>
  static std::tuple<S...> saved_scalars([[maybe_unused]] AutogradContext* ctx, std::index_sequence<L...>) {
    return std::tuple<S...>{ctx->saved_data[scalar_keys()[L]].template to<S>()...};
  }

  // Every tensor given floating and on one device; the promoted dtype, as in
  // the eager expression (0-d tensors count less).
  static at::ScalarType check_dtypes_and_device(const char* op, const Args& prepared) {
    for (size_t i = 0; i < N; ++i) {
      check_floating(op, Decl::kArgNames[i], prepared.inputs[i]);
    }
    if constexpr (M == 0) {
      check_same_device(op, Decl::kArgNames, prepared.inputs);
      return at::native::result_type(at::ITensorListRef(prepared.inputs));
    } else {
      c10::SmallVector<at::Tensor, N + M> present(prepared.inputs.begin(), prepared.inputs.end());
      c10::SmallVector<const char*, N + M> names(Decl::kArgNames.begin(), Decl::kArgNames.end());
      for (size_t j = 0; j < M; ++j) {
        if (prepared.optional[j].defined()) {
          check_floating(op, Decl::kOptionalArgs[j], prepared.optional[j]);
          present.push_back(prepared.optional[j]);
          names.push_back(Decl::kOptionalArgs[j]);
        }
      }
      check_same_device(op, names, present);
      return at::native::result_type(at::ITensorListRef(c10::ArrayRef<at::Tensor>(present)));
    }
  }
  static void promote(Args& prepared, at::ScalarType dtype) {
    for (auto& t : prepared.inputs) {
      if (t.scalar_type() != dtype) {
        t = t.to(dtype);
      }
    }
    for (auto& t : prepared.optional) {
      if (t.defined() && t.scalar_type() != dtype) {
        t = t.to(dtype);
      }
    }
  }

  template <ForwardKernel F>
  static Out forward_entry(TensorRef<I>... t, OptionalRef<J>... o, S... s) {
    if constexpr (kWorkspace) {
      auto out = F(prepare(Decl::kName, {t...}, {value_or_undefined(o)...}, s...), /*workspace=*/false, s...);
      return first_outputs(std::move(out), std::make_index_sequence<K>{});
    } else {
      return F(prepare(Decl::kName, {t...}, {}, s...), s...);
    }
  }
  template <ForwardKernel F>
  static TrainingOut training_entry(TensorRef<I>... t, OptionalRef<J>... o, S... s) {
    return F(prepare(Decl::kName, {t...}, {value_or_undefined(o)...}, s...), /*workspace=*/true, s...);
  }
  template <BackwardKernel Bk>
  static BackwardOut backward_entry(TensorRef<G>... g, TensorRef<V>... v, B... b) {
    if constexpr (kWorkspace) {
      return Bk(prepare_workspace_backward({g...}, {v...}), b...);
    } else {
      return Bk(g..., prepare_backward(g..., {v...}, b...), b...);
    }
  }
  template <size_t... L>
  static Out first_outputs(TrainingOut&& all, std::index_sequence<L...>) {
    return Out{std::move(std::get<L>(all))...};
  }

  // The workspace form's backward: the saved tensors given, every tensor
  // floating and on one device; the rest (shapes, an undefined output
  // gradient read as zeros) is Workspace::prepare's.
  static typename BackwardOf<Decl>::Args prepare_workspace_backward(
      std::array<at::Tensor, sizeof...(G)> grads, std::array<at::Tensor, sizeof...(V)> saved) {
    const char* op = backward_label();
    const auto names = saved_names();
    c10::SmallVector<at::Tensor, sizeof...(G) + sizeof...(V)> present(saved.begin(), saved.end());
    c10::SmallVector<const char*, sizeof...(G) + sizeof...(V)> present_names(names.begin(), names.end());
    for (size_t v = 0; v < saved.size(); ++v) {
      check_floating(op, names[v], saved[v]);
    }
    for (size_t g = 0; g < grads.size(); ++g) {
      if (grads[g].defined()) {
        check_floating(op, grad_name(g), grads[g]);
        present.push_back(grads[g]);
        present_names.push_back(grad_name(g));
      }
    }
    check_same_device(op, present_names, present);
    return Decl::Workspace::prepare(op, std::move(grads), std::move(saved));
  }

  // The autograd Function's forward, for both forms (Autograd<Decl>): runs the
  // op below autograd and saves what the backward reads. Plain form: the
  // inputs and the scalars. Workspace form: with `training` (autograd records
  // the call) the training op, which also returns the workspace, saving the
  // kSavedArgs inputs, the workspace, the scalars and which optional inputs
  // were given; without, the op (no workspace written); return_workspace: the
  // training op, whose workspace is also returned (as that op returns it),
  // not differentiable. (The plain form ignores both flags.)
  static variable_list autograd_forward(
      AutogradContext* ctx, TensorRef<I>... t, OptionalRef<J>... o, S... s, bool training, bool return_workspace) {
    at::AutoDispatchBelowADInplaceOrView guard;
    if constexpr (!kWorkspace) {
      (void)training;
      (void)return_workspace;
      save_scalars(ctx, s...);
      ctx->save_for_backward({t...});
      return {call(t..., s...)};
    } else {
      if (!training && !return_workspace) {
        return as_list(call(t..., o..., s...));
      }
      save_scalars(ctx, s...);
      auto out = as_list(call_training(t..., o..., s...));
      if constexpr (M > 0) {
        int64_t present = 0;  // bit j: optional input j given
        ((present |= (o.has_value() && o->defined()) ? int64_t{1} << J : 0), ...);
        ctx->saved_data["present"] = present;
      }
      const std::array<const at::Tensor*, N> inputs{&t...};
      variable_list saved;
      saved.reserve(sizeof...(V));
      for (const size_t i : Decl::Workspace::kSavedArgs) {
        saved.push_back(*inputs[i]);
      }
      saved.push_back(out[K]);
      ctx->save_for_backward(std::move(saved));
      if (!return_workspace) {
        out.pop_back();
        return out;
      }
      ctx->mark_non_differentiable({out[K]});
      return out;
    }
  }

  // The autograd Function's backward: the backward op on what the forward
  // saved, a gradient for each input.
  static variable_list autograd_backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    if constexpr (!kWorkspace) {
      auto grads = call_backward_op([&] {
        return std::apply(
            [&](S... sc) { return call_backward(grad_outputs[0], saved[I]..., sc...); }, saved_scalars(ctx));
      });
      // A broadcast input gets the sum of its gradient over the broadcast dims.
      for (size_t i = 0; i < N; ++i) {
        if (grads[i].sizes() != saved[i].sizes()) {
          grads[i] = at::sum_to(grads[i], saved[i].sizes());
        }
      }
      grads.resize(N + sizeof...(S) + 2);  // none for the scalars and the flags
      return grads;
    } else {
      std::array<bool, M> present{};
      if constexpr (M > 0) {
        const int64_t bits = ctx->saved_data["present"].toInt();
        present = {((bits >> J) & 1) != 0 ...};
      }
      const auto scalars =
          std::apply([&](S... sc) { return Decl::Workspace::scalars(present, sc...); }, saved_scalars(ctx));
      auto input_grads = Decl::Workspace::input_grads(
          call_backward_op([&] {
            return std::apply([&](B... b) { return call_backward(grad_outputs[G]..., saved[V]..., b...); }, scalars);
          }),
          present);
      variable_list grads(N + M + sizeof...(S) + 2);  // none for the scalars and the flags
      std::move(input_grads.begin(), input_grads.end(), grads.begin());
      return grads;
    }
  }

  // The backward op's autograd Function's forward (BackwardAutograd<Decl>).
  // The gradients come as optionals: an undefined one (an output not used) is
  // no input of the node.
  static variable_list backward_autograd_forward(
      AutogradContext* /*ctx*/, typename OptionalRefOf<G>::type... g, TensorRef<V>... v, B... b) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return as_list(call_backward(value_or_undefined(g)..., v..., b...));
  }

  static Out autograd_entry(TensorRef<I>... t, OptionalRef<J>... o, S... s) {
    // building the autograd node reads each input's device
    check_defined(Decl::kName, Decl::kArgNames, {t...});
    const bool training = records_gradient({&t..., optional_pointer(o)...});
    if (!training && !apply_raises({&t..., optional_pointer(o)...})) {
      BelowAutograd below;
      return call(t..., o..., s...);
    }
    return from_list<Out>(Autograd<Decl>::apply(t..., o..., s..., training, false));
  }
  static TrainingOut training_autograd_entry(TensorRef<I>... t, OptionalRef<J>... o, S... s) {
    check_defined(Decl::kName, Decl::kArgNames, {t...});
    if (!records_gradient({&t..., optional_pointer(o)...}) && !apply_raises({&t..., optional_pointer(o)...})) {
      BelowAutograd below;
      return call_training(t..., o..., s...);
    }
    return from_list<TrainingOut>(Autograd<Decl>::apply(t..., o..., s..., true, true));
  }
  static BackwardOut backward_autograd_entry(TensorRef<G>... g, TensorRef<V>... v, B... b) {
    if constexpr (!kWorkspace) {
      check_defined(backward_label(), {"grad"}, {g...});
    }
    check_defined(backward_label(), saved_names(), {v...});
    if (!records_gradient({&g..., &v...}) && !apply_raises({&g..., &v...})) {
      BelowAutograd below;
      return call_backward(g..., v..., b...);
    }
    return from_list<BackwardOut>(BackwardAutograd<Decl>::apply(as_optional(g)..., v..., b...));
  }

  template <c10::DeviceType device>
  static Out autocast_entry(TensorRef<I>... t, OptionalRef<J>... o, S... s) {
    ExcludeAutocast no_autocast(kAutocastKeys);
    const auto dtype = Decl::kAutocast == Autocast::kFloat32 ? at::kFloat : autocast_lower_precision(device);
    return call(autocast_to(t, dtype, device)..., autocast_optional(o, dtype, device)..., s...);
  }
  static std::optional<at::Tensor> autocast_optional(
      const std::optional<at::Tensor>& t, at::ScalarType dtype, c10::DeviceType device) {
    return t.has_value() ? std::optional<at::Tensor>(autocast_to(*t, dtype, device)) : std::nullopt;
  }
};

// The autograd Function of an op (both forms; what it does is Op's
// autograd_forward and autograd_backward) and that of its backward op, whose
// backward is an error that says so: double backward is not supported, rather
// than silently wrong second derivatives. (Plain backward passes skip that
// kernel: see call_backward_op.) Templates of the declaration alone, not
// members of Op: CppNode::apply demangles its Function's type name on every
// backward call (Node::name(), for its error messages), and the name of a
// member of Op, with its index-sequence parameters, cost 22k instructions a
// call for lstm_cell, 4k for a short name.
template <class Decl>
struct Autograd : torch::autograd::Function<Autograd<Decl>> {
  template <class... A>
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, A&&... a) {
    return Op<Decl>::autograd_forward(ctx, std::forward<A>(a)...);
  }
  static torch::autograd::variable_list backward(
      torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grad_outputs) {
    return Op<Decl>::autograd_backward(ctx, std::move(grad_outputs));
  }
};

template <class Decl>
struct BackwardAutograd : torch::autograd::Function<BackwardAutograd<Decl>> {
  template <class... A>
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, A&&... a) {
    return Op<Decl>::backward_autograd_forward(ctx, std::forward<A>(a)...);
  }
  static torch::autograd::variable_list backward(
      torch::autograd::AutogradContext* /*ctx*/, torch::autograd::variable_list /*grad_outputs*/) {
    TORCH_CHECK(false, Decl::kName, ": double backward (gradients of gradients) is not supported");
  }
};

}  // namespace torchops::declared
