"""The mock survey: a small survey in the real DR5 and obiwan layouts, rendered with GalSim.

It lets the whole workflow run on a fresh machine with no data, and it is the
controlled experiment that proves the classifier finds real differences: with
``mismatch="none"`` the fakes are drawn from the same population as the real
sources that pass the selection, so a good classifier must not beat chance;
every other mismatch makes the fakes wrong in one named way, by a graded
``strength`` (:data:`realfake.mock.settings.MISMATCHES`): at its identity value
(:data:`realfake.mock.settings.IDENTITY_STRENGTH`) the fakes are exactly those of ``none``, so a
grid of strengths measures what the test can detect.

Layout written under ``out`` (``AAA`` = first three characters of the brick):

- ``bricks.txt``: the brick names, one per line;
- ``dr5/survey-bricks.fits``: the brick table;
- ``dr5/coadd/AAA/<brick>/legacysurvey-<brick>-{image,invvar}-<band>.fits.fz``;
- ``dr5/tractor/AAA/tractor-<brick>.fits``: measured catalog, DR5 columns, or DR9's or DR10's with
  ``release`` (:mod:`realfake.mock.catalogs`; the same for the rs dirs' re-fits);
- ``obiwan/coadd/AAA/<brick>/<rsdir>/legacysurvey-<brick>-{image,invvar}-<band>.fits.fz``:
  the same scene plus that rs dir's fakes;
- ``obiwan/obiwan/AAA/<brick>/<rsdir>/simcat-elg-<brick>.fits``: current schema;
- ``obiwan/tractor/AAA/<brick>/<rsdir>/tractor-<brick>.fits``: legacypipe's
  re-fit of the rs dir images: the DR5 sources and the fakes, measured (the
  fakes' measured values are those they were selected on, see
  :func:`realfake.mock.fakes.draw_fakes`);
- ``truth/AAA/truth-<brick>.fits``: the true scene (mock only).

With ``injector="legacysim"`` the fakes' tree is ``legacysim/`` instead of ``obiwan/``, in legacysim's layout:
``legacysim/<run>/coadd/AAA/<brick>/...``, ``legacysim/<run>/sim/AAA/injected-<brick>.fits`` (0-indexed
``bx, by`` and a few ``collided`` rows, not rendered) and ``legacysim/<run>/tractor/AAA/tractor-<brick>.fits``,
runs ``file0_rs<N>_skip0``; the pixels are the same.
"""
