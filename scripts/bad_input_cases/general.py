"""Bad inputs every command shares (unknown commands, flags, paths), and the shard flags."""

from bad_inputs import Case  # noqa: F401 - scripts/ is on sys.path when the runner loads this

CASES = [
    Case("factbench", "an unknown command", ["frobnicate"]),
    Case("eval", "an unknown flag", ["eval", "--frob"]),
    Case("score", "a base answers folder that does not exist", ["score", "--base", "{d}/nope", "--tuned", "{d}/answers/sft"]),
    Case("data", "an unknown data command", ["data", "sizes"]),
    Case("models", "prepare a model spec that is no model", ["models", "prepare", "{d}/split"]),
    Case("probe", "--shard that is not I/N", ["probe", "--model", "toy:tiny", "--shard", "2/2", "--out", "{d}/p"]),
    Case("probe", "--merge with no shards", ["probe", "--merge", "--out", "{d}/p"]),
    Case("probe", "--shard and --workers together", ["probe", "--shard", "0/2", "--workers", "2", "--out", "{d}/p"]),
    Case("eval", "--sets --merge with no shards", ["eval", "--sets", "heldout", "--split-dir", "{d}/split", "--merge",
                                                    "--out", "{d}/m"]),
    Case("eval", "--workers 0", ["eval", "--sets", "heldout", "--workers", "0", "--out", "{d}/m"]),
]
