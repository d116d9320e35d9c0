"""Bad inputs every command shares: unknown commands, flags and paths that do not exist."""

from bad_inputs import Case  # noqa: F401 - scripts/ is on sys.path when the runner loads this

CASES = [
    Case("factbench", "an unknown command", ["frobnicate"]),
    Case("eval", "an unknown flag", ["eval", "--frob"]),
    Case("score", "a base answers folder that does not exist", ["score", "--base", "{d}/nope", "--tuned", "{d}/answers/sft"]),
]
