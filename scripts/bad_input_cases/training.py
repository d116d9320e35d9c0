"""Bad inputs of training, the demo and interference: meaningless settings, output folders that
cannot or must not be written, damaged demo and interference state."""

import json

from bad_inputs import Case  # scripts/ is on sys.path when the runner loads this


def train(*settings: str, recipe: str = "sft", out: str = "{d}/new") -> list[str]:
    """`factbench train` on the fixture's split with the tiny toy model (never the toy config's own world)."""
    return ["train", "--recipe", recipe, "--config", "toy", "model=toy:tiny", "split_dir={d}/split",
            f"output_dir={out}", *settings]


def write(path: str, text: str):
    def setup(d):
        target = d / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return setup


def truncate(path: str):
    def setup(d):
        text = (d / path).read_text()
        (d / path).write_text(text[: len(text) // 2])
    return setup


INTERFERENCE = ["interference", "--model", "toy:tiny", "--relation", "P69", "--sizes", "4", "--heldout", "8",
                "--new-limit", "4"]

CASES = [
    # ---- settings that mean nothing: refused before any model is loaded
    Case("train", "num_train_epochs=0 (an untrained 'fine-tune')", train("num_train_epochs=0")),
    Case("train", "num_train_epochs=-1", train("num_train_epochs=-1")),
    Case("train", "max_steps=0", train("max_steps=0")),
    Case("train", "learning_rate=-1", train("learning_rate=-1")),
    Case("train", "learning_rate=nan", train("learning_rate=nan")),
    Case("train", "learning_rate=.inf", train("learning_rate=.inf")),
    Case("train", "learning_rate=true", train("learning_rate=true")),
    Case("train", "per_device_train_batch_size=0", train("per_device_train_batch_size=0")),
    Case("train", "gradient_accumulation_steps=0", train("gradient_accumulation_steps=0")),
    Case("train", "eval_limit=0", train("eval_limit=0")),
    Case("train", "eval_batch_size=-4", train("eval_batch_size=-4")),
    Case("train", "weight_decay=-0.1", train("weight_decay=-0.1")),
    Case("train", "selfdistill distill_tau=0", train("distill_tau=0", recipe="selfdistill")),
    Case("train", "selfdistill distill_lambda=-1", train("distill_lambda=-1", recipe="selfdistill")),
    Case("train", "l2anchor l2_lambda=-0.001", train("l2_lambda=-0.001", recipe="l2anchor")),
    Case("train", "freeze trainable=[] (no parameter to train)", train("trainable=[]", recipe="freeze")),
    Case("train", "freeze trainable=mlp (no such preset)", train("trainable=mlp", recipe="freeze")),
    Case("train", "freeze with a pattern that selects no parameter",
         train("trainable=['*.no_such_layer.*']", recipe="freeze")),
    Case("train", "an unknown setting (learning_rte)", train("learning_rte=1e-4")),
    Case("train", "an override that is not key=value", train("fast")),
    Case("train", "an unknown recipe", train(recipe="dpo")),
    Case("train", "a config that does not exist", ["train", "--recipe", "sft", "--config", "{d}/nope.yaml",
                                                   "output_dir={d}/new"]),
    # ---- output folders
    Case("train", "output_dir on a full disk", train(out="{full}/x")),
    Case("train", "output_dir over a folder that is not a model (the split)", train(out="{d}/split")),
    Case("train", "output_dir over a folder that is not a model, with overwrite=true",
         train("overwrite=true", out="{d}/split")),
    Case("train", "output_dir is a file", train("overwrite=true", out="{d}/summary.json")),
    # ---- the demo's state
    Case("demo", "a truncated demo.json in --out", ["demo", "--world", "toy", "--out", "{d}"],
         setup=truncate("demo.json")),
    Case("demo", "an empty demo.json in --out", ["demo", "--world", "toy", "--out", "{d}"],
         setup=write("demo.json", "")),
    Case("demo", "a demo.json of the wrong shape (a list)", ["demo", "--world", "toy", "--out", "{d}"],
         setup=write("demo.json", "[1, 2, 3]\n")),
    Case("demo", "a demo.json whose settings are not a mapping", ["demo", "--world", "toy", "--out", "{d}"],
         setup=write("demo.json", json.dumps({"settings": "toy"}))),
    Case("demo", "--out on a full disk", ["demo", "--world", "toy", "--out", "{full}/x"]),
    Case("demo", "--set learning_rate=-1", ["demo", "--world", "toy", "--out", "{d}/other",
                                            "--set", "learning_rate=-1"]),
    Case("demo", "--set num_train_epochs=0", ["demo", "--world", "toy", "--out", "{d}/other",
                                              "--set", "num_train_epochs=0"]),
    # ---- interference
    Case("interference", "--set learning_rate=-1", [*INTERFERENCE, "--set", "learning_rate=-1", "--out", "{d}/int"]),
    Case("interference", "--set max_steps=0", [*INTERFERENCE, "--set", "max_steps=0", "--out", "{d}/int"]),
    Case("interference", "--set per_device_train_batch_size=0",
         [*INTERFERENCE, "--set", "per_device_train_batch_size=0", "--out", "{d}/int"]),
    Case("interference", "--lr 0", [*INTERFERENCE, "--lr", "0", "--out", "{d}/int"]),
    Case("interference", "--epochs nan", [*INTERFERENCE, "--epochs", "nan", "--out", "{d}/int"]),
    Case("interference", "--out is a file", [*INTERFERENCE, "--out", "{d}/summary.json"]),
    Case("interference", "a truncated settings.json in --out", [*INTERFERENCE, "--out", "{d}/int"],
         setup=write("int/settings.json", '{"schema": 1, "mod')),
    Case("interference", "a settings.json of the wrong shape in --out", [*INTERFERENCE, "--out", "{d}/int"],
         setup=write("int/settings.json", "[1]\n")),
    Case("interference", "--out on a full disk", [*INTERFERENCE, "--out", "{full}/x"]),
]
