"""User-facing errors.

Anything a user can cause (a bad path, an unknown model name, a corrupted data file) raises
`FactbenchError`; the CLI prints its message on one line and exits with code 2. Tracebacks
are kept for real bugs.
"""


class FactbenchError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class DataError(FactbenchError):
    """Bundled or user-supplied data is missing, corrupted or malformed."""


class ModelError(FactbenchError):
    """A model name or folder cannot be resolved or loaded."""


class ScoreError(FactbenchError):
    """Answers, splits or cards that cannot be scored or compared together."""


class CardError(FactbenchError):
    """A score card or audit card that is unreadable, invalid or inconsistent."""


class WriteError(FactbenchError):
    """An output that cannot be written (no space, read-only, permission); nothing half-written is left."""


class BusyError(FactbenchError):
    """An output folder another factbench process is writing right now."""
