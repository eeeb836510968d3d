"""Testing support: the conformance check that an implementation of a
torchops op equals the eager reference (for plug-in authors and torchops' own
backends), and torchvision's box functions for comparisons.

    import torchops.testing
    torchops.testing.check_implementation("ratio_iou", "mybackend")
"""

from torchops.testing._conformance import check_implementation

__all__ = ["check_implementation"]
