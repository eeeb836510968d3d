"""Comparisons used by the tests and by check_implementation: bitwise where
the kernels promise it, and "at least as accurate as eager" (against a float64
reference) elsewhere."""

from __future__ import annotations

import torch

# unit roundoff of each dtype
ULP = {
    torch.float16: 2.0**-10,
    torch.bfloat16: 2.0**-7,
    torch.float32: 2.0**-23,
    torch.float64: 2.0**-52,
}


def assert_bitwise_equal(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    same = (actual == expected) | (actual.isnan() & expected.isnan())
    if not bool(same.all()):
        i = (~same).nonzero()[0].tolist()
        raise AssertionError(
            f"{what}: {(~same).sum().item()} elements differ, first at {i}: "
            f"{actual[tuple(i)].item()} vs expected {expected[tuple(i)].item()}"
        )


def assert_as_accurate_as_eager(
    actual: torch.Tensor,
    eager: torch.Tensor,
    reference: torch.Tensor,
    what: str,
    ulps: float = 4.0,
    slack: float = 1.0,
    scale: float = 0.0,
    infinite_may_be_nonfinite: bool = False,
) -> None:
    """Each element of `actual` is at most `slack` times as far from the float64
    `reference` as eager in the same dtype, plus `ulps` units of the dtype at the
    tensor's largest finite reference magnitude (or at `scale`, the size of the
    terms that a cancelling sum adds, if larger). A NaN or inf error counts as
    infinitely far; where both eager and the reference are NaN, `actual` must be NaN;
    with `infinite_may_be_nonfinite`, where both are infinite, `actual` may be
    inf of either sign or NaN (the sign of a sum of infinities depends on its order)."""
    assert actual.shape == eager.shape == reference.shape, f"{what}: shapes differ"
    assert actual.dtype == eager.dtype, f"{what}: dtype {actual.dtype} != {eager.dtype}"
    if actual.numel() == 0:
        return
    ref = reference.double().cpu()
    act = actual.double().cpu()
    eag = eager.double().cpu()
    inf = torch.tensor(float("inf"), dtype=torch.float64)

    def error(x):
        e = (x - ref).abs()
        same_inf = torch.isinf(x) & (x == ref)
        e = torch.where(same_inf, torch.zeros_like(e), e)
        return torch.where(torch.isnan(e), inf, e)

    finite_ref = ref[torch.isfinite(ref)]
    scale = max(scale, finite_ref.abs().max().item() if finite_ref.numel() else 1.0)
    tol = ulps * ULP[actual.dtype] * max(scale, 1e-30)
    must_be_nan = torch.isnan(ref) & torch.isnan(eag)
    bad = (error(act) > slack * error(eag) + tol) | (must_be_nan & ~torch.isnan(act))
    if infinite_may_be_nonfinite:
        bad &= ~(torch.isinf(ref) & torch.isinf(eag) & ~torch.isfinite(act))
    if bool(bad.any()):
        i = tuple(bad.nonzero()[0].tolist())
        raise AssertionError(
            f"{what}: {bad.sum().item()} of {bad.numel()} elements less accurate than eager; "
            f"first at {list(i)}: got {act[i].item()}, eager {eag[i].item()}, "
            f"float64 reference {ref[i].item()} (tolerance {tol:.3g})"
        )
