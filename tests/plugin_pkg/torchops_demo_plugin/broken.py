"""A plug-in broken on purpose: its register() fails."""


def register():
    raise ImportError("this plug-in needs a library that is not installed (on purpose)")
