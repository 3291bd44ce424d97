"""The real survey's files: DR5 bricks, coadds and tractor catalogs and obiwan's simcats and rs dirs
(:mod:`realfake.survey.legacy`), and the named selections of real sources (:mod:`realfake.survey.selection`)."""
