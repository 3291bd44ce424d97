"""realfake: do fake galaxies injected into real sky images look real?

A map of the package is in ``docs/how_the_code_fits_together.md``.
"""

__version__ = "0.1.0"
