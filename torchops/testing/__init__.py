"""Testing support: torchvision's box functions for comparisons (and, for
plug-in authors, the conformance checks)."""
