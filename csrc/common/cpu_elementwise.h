#pragma once
// One vectorized, multi-threaded elementwise loop for the CPU kernels, driven
// by TensorIterator (which handles broadcasting, strides and threading).
//
// `op` is a generic callable taking std::array<T, NIn> and returning
// std::array<T, NOut>, for T = the op-math scalar (float for half types) and
// T = at::vec::Vectorized of it. Inside a TensorIterator chunk, operands that
// are contiguous or broadcast (stride 0) run the vector code; any other stride
// runs the scalar code, so strided inputs are never copied.
#include <ATen/OpMathType.h>
#include <ATen/TensorIterator.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <array>
#include <cstddef>
#include <utility>

namespace torchops {
inline namespace CPU_CAPABILITY {  // see common/elementwise.h
namespace cpu {

// Loads/stores one Vectorized<scalar_t> worth of elements as op-math vectors:
// one vector for float/double, two float vectors for half/bfloat16.
template <typename scalar_t>
struct OpmathVectorIO {
  using opmath_t = at::opmath_type<scalar_t>;
  using OpVec = at::vec::Vectorized<opmath_t>;
  static constexpr int64_t kStep = at::vec::Vectorized<scalar_t>::size();
  static constexpr int kPieces = kStep / OpVec::size();
  using Pieces = std::array<OpVec, kPieces>;

  static Pieces load(const char* ptr, bool broadcast) {
    if (broadcast) {
      Pieces out;
      out.fill(OpVec(static_cast<opmath_t>(*reinterpret_cast<const scalar_t*>(ptr))));
      return out;
    }
    if constexpr (kPieces == 1) {
      return {OpVec::loadu(ptr)};
    } else {
      auto [lo, hi] = at::vec::convert_to_float<scalar_t>(at::vec::Vectorized<scalar_t>::loadu(ptr));
      return {lo, hi};
    }
  }

  static void store(char* ptr, const Pieces& v) {
    if constexpr (kPieces == 1) {
      v[0].store(ptr);
    } else {
      at::vec::convert_from_float<scalar_t>(v[0], v[1]).store(ptr);
    }
  }
};

// The body of a TensorIterator 1-d loop: data/strides hold NOut outputs first,
// then NIn inputs, all of dtype scalar_t.
// flatten: inline everything `op` calls (formula, Vectorized exp/tanh). Left
// to its heuristics, GCC called the LSTM backward formula and exp_u20 out of
// line, passing vectors through memory: 1.6x slower with two biases.
template <typename scalar_t, size_t NOut, size_t NIn, typename Op>
__attribute__((flatten)) void elementwise_chunk(char** data, const int64_t* strides, int64_t n, const Op& op) {
  using IO = OpmathVectorIO<scalar_t>;
  using opmath_t = typename IO::opmath_t;
  constexpr int64_t kSize = sizeof(scalar_t);

  bool vectorizable = true;
  std::array<bool, NIn> broadcast{};
  for (size_t o = 0; o < NOut; ++o) {
    vectorizable = vectorizable && strides[o] == kSize;
  }
  for (size_t k = 0; k < NIn; ++k) {
    broadcast[k] = strides[NOut + k] == 0;
    vectorizable = vectorizable && (broadcast[k] || strides[NOut + k] == kSize);
  }

  int64_t i = 0;
  if (vectorizable) {
    for (; i + IO::kStep <= n; i += IO::kStep) {
      std::array<typename IO::Pieces, NIn> in;
      for (size_t k = 0; k < NIn; ++k) {
        in[k] = IO::load(data[NOut + k] + (broadcast[k] ? 0 : i * kSize), broadcast[k]);
      }
      std::array<typename IO::Pieces, NOut> out;
      for (int p = 0; p < IO::kPieces; ++p) {
        std::array<typename IO::OpVec, NIn> args;
        for (size_t k = 0; k < NIn; ++k) {
          args[k] = in[k][p];
        }
        const auto results = op(args);
        for (size_t o = 0; o < NOut; ++o) {
          out[o][p] = results[o];
        }
      }
      for (size_t o = 0; o < NOut; ++o) {
        IO::store(data[o] + i * kSize, out[o]);
      }
    }
  }
  for (; i < n; ++i) {
    std::array<opmath_t, NIn> args;
    for (size_t k = 0; k < NIn; ++k) {
      args[k] = static_cast<opmath_t>(
          *reinterpret_cast<const scalar_t*>(data[NOut + k] + i * strides[NOut + k]));
    }
    const auto results = op(args);
    for (size_t o = 0; o < NOut; ++o) {
      *reinterpret_cast<scalar_t*>(data[o] + i * strides[o]) = static_cast<scalar_t>(results[o]);
    }
  }
}

// Runs `op` over a TensorIterator whose operands all have dtype scalar_t.
// grain_size: the fewest elements worth a thread of their own; ops that spend
// many cycles per element (transcendentals) pass less than ATen's default,
// which is sized for one arithmetic operation per element.
template <typename scalar_t, size_t NOut, size_t NIn, typename Op>
void elementwise_kernel(
    at::TensorIteratorBase& iter, const Op& op, int64_t grain_size = at::internal::GRAIN_SIZE) {
  TORCH_INTERNAL_ASSERT(iter.noutputs() == static_cast<int>(NOut));
  TORCH_INTERNAL_ASSERT(iter.ninputs() == static_cast<int>(NIn));
  iter.for_each(
      [&op](char** data, const int64_t* strides, int64_t n) {
        elementwise_chunk<scalar_t, NOut, NIn>(data, strides, n, op);
      },
      grain_size);
}

// The same loop over operands that are all contiguous with `n` elements, on
// this thread, for entry points that skip TensorIterator where every operand
// has one shape and layout (building one costs more than the loop at small
// sizes). Only where TensorIterator would not thread the loop either (see
// serial_without_iterator): at::parallel_for, compiled in this library
// (without OpenMP), would run serially.
template <typename scalar_t, size_t NOut, size_t NIn, typename Op>
void elementwise_kernel_contiguous(char* const* data, int64_t n, const Op& op) {
  std::array<int64_t, NOut + NIn> strides;
  strides.fill(sizeof(scalar_t));
  elementwise_chunk<scalar_t, NOut, NIn>(const_cast<char**>(data), strides.data(), n, op);
}

// The same loop over [rows, n] operands, on this thread, row by row: operand
// k's element (r, i) is at data[k] + r * row_strides[k] + i * strides[k]
// (bytes). That is what TensorIterator runs where it cannot merge the two
// dimensions (gate views of wider rows) and the rows hold the fastest-varying
// dimension of the outputs, without building it (see
// elementwise_kernel_contiguous): the same calls of elementwise_chunk.
template <typename scalar_t, size_t NOut, size_t NIn, typename Op>
void elementwise_kernel_rows(
    char* const* data, const int64_t* row_strides, const int64_t* strides, int64_t rows, int64_t n, const Op& op) {
  constexpr size_t kOperands = NOut + NIn;
  std::array<char*, kOperands> row;
  for (int64_t r = 0; r < rows; ++r) {
    for (size_t k = 0; k < kOperands; ++k) {
      row[k] = data[k] + r * row_strides[k];
    }
    elementwise_chunk<scalar_t, NOut, NIn>(row.data(), strides, n, op);
  }
}

}  // namespace cpu
}  // namespace CPU_CAPABILITY
}  // namespace torchops
