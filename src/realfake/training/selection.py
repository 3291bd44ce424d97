"""Best-validation selection: the weights of the epoch with the lowest validation loss, kept in ``best/``.

``best/epoch-<N>.weights.h5`` holds the weights of epoch N (1-based) while it
has the lowest validation loss so far. It is written (atomically) before the
checkpoint that names N as the best epoch, and the previous best is removed
only after that checkpoint, so a resumed run always finds the weights its
checkpoint names. Only the chief writes or removes them.
"""

from __future__ import annotations

from pathlib import Path

from realfake.atomic import atomic_output
from realfake.errors import RealfakeError


class BestWeights:
    """The ``best/`` directory of a run; writing and removing are no-ops when not ``enabled`` (non-chief workers)."""

    def __init__(self, directory: Path, enabled: bool):
        self.directory = Path(directory)
        self.enabled = enabled

    def path(self, epoch: int) -> Path:
        return self.directory / f"epoch-{epoch}.weights.h5"

    def write(self, model, epoch: int) -> None:
        """Save ``model``'s weights as those of ``epoch``."""
        if not self.enabled:
            return
        # Keras insists on the .weights.h5 suffix, so the temporary name keeps it.
        with atomic_output(self.path(epoch), suffix=".weights.h5") as temporary:
            model.save_weights(temporary)

    def remove_others(self, epoch: int) -> None:
        """Remove the weights of every epoch but ``epoch``."""
        if not self.enabled:
            return
        for path in self.directory.glob("epoch-*.weights.h5"):
            if path != self.path(epoch):
                path.unlink(missing_ok=True)

    def load(self, model, epoch: int, checkpoint_directory: Path) -> None:
        """Load the weights of ``epoch`` into ``model``; RealfakeError when they are gone."""
        path = self.path(epoch)
        if not path.is_file():
            raise RealfakeError(
                f"{path} is missing: the weights of epoch {epoch}, the best validation loss, are "
                f"gone; train again from scratch (move {checkpoint_directory} away) or use select last"
            )
        model.load_weights(path)
