"""The project's own error type.

Every error a user can cause (a missing file, a bad key, a brick that is not in
the survey) is raised as :class:`RealfakeError` with a message that names the
file, brick or key. The command line turns it into one line on stderr and exit
status 2; anything else is a bug and keeps its traceback.
"""


class RealfakeError(Exception):
    """A problem with the user's input, stated in one line."""
