"""The real survey's files: bricks, coadds and tractor catalogs (:mod:`realfake.survey.legacy`), which release a
tractor catalog is and its canonical shape columns (:mod:`realfake.survey.tractor`), obiwan's rs dirs and simcats
(:mod:`realfake.survey.obiwan`), and the selections of real sources (:mod:`realfake.survey.selection`)."""
