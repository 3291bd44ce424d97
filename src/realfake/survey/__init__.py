"""The real survey's files: DR5 bricks, coadds and tractor catalogs (:mod:`realfake.survey.legacy`), obiwan's
rs dirs and simcats (:mod:`realfake.survey.obiwan`), and the named selections of real sources
(:mod:`realfake.survey.selection`)."""
