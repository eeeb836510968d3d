"""The comparisons live in torchops.testing (shared with check_implementation)."""

from torchops.testing._accuracy import ULP, assert_as_accurate_as_eager, assert_bitwise_equal  # noqa: F401
