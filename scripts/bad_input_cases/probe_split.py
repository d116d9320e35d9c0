"""Bad inputs of `probe`, `split`, `models` and `data`: full disks, damaged profiles, probe state and
split manifests, sizes that select nothing, a busy output folder, hub ids out of reach."""

import fcntl
import json
import os
import shutil

from bad_inputs import Case  # scripts/ is on sys.path when the runner loads this

TOY_PROBE = ["probe", "--model", "toy:tiny", "--relations", "P17", "--per-relation", "4", "--budget", "smoke"]
SPLIT = ["split", "--known", "5", "--unknown", "5", "--heldout", "5", "--ood", "0", "--min-known-share", "0.05"]
OFFLINE_HUB = {"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}
_held = []  # lock file descriptors held for the whole run (a second writer, in this very process)


def _profile(d, damage=None):
    """A copy of the bundled SmolLM2 profile at d/prof, damaged by `damage(folder)`."""
    from factbench import knowledge

    folder = d / "prof"
    shutil.copytree(knowledge.bundled_profile_dir(), folder, ignore=shutil.ignore_patterns("split"))
    if damage:
        damage(folder)


def _manifest(folder, edit):
    m = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps(edit(m)))


def _partial_probe(d, chunks=1):
    """A probe of TOY_PROBE's pool into d/pp killed after `chunks` chunks (its .probe-work kept)."""
    from factbench import knowledge
    from factbench.engines import make_engine

    class Killed(Exception):
        pass

    engine = make_engine("hf", "toy:tiny", progress=False)

    class Dies:
        name, left = engine.name, chunks

        def generate(self, texts, params):
            if self.left == 0:
                raise Killed
            self.left -= 1
            return engine.generate(texts, params)

        def describe(self):
            return engine.describe()

    try:
        knowledge.probe(Dies(), knowledge.Pool(relations=("P17",), per_relation=4),
                        knowledge.ProbeSettings(budget=knowledge.BUDGETS["smoke"]), d / "pp")
    except Killed:
        pass
    return d / "pp" / ".probe-work"


def _damaged_chunk(d):
    work = _partial_probe(d)
    chunk = next(p for p in work.glob("greedy-*.json"))
    chunk.write_bytes(chunk.read_bytes()[:25])  # truncated mid-write


def _damaged_state(d):
    (_partial_probe(d) / "protocol.json").write_text("[1, 2]")


def _work_is_a_file(d):
    (d / "pp").mkdir()
    (d / "pp" / ".probe-work").write_text("not a folder")


def _locked(d):
    (d / "busy").mkdir()
    fd = os.open(d / "busy" / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _held.append(fd)


CASES = [
    # full disks: one line, nothing half-written
    Case("probe", "--out on a full disk", [*TOY_PROBE, "--out", "{full}/p"]),
    Case("split", "--out on a full disk", [*SPLIT, "--profile", "bundled", "--out", "{full}/s"]),
    # sizes
    Case("split", "every size 0 (no question at all)",
         ["split", "--profile", "bundled", "--known", "0", "--unknown", "0", "--heldout", "0", "--ood", "0",
          "--out", "{d}/s0"]),
    # damaged profiles
    Case("split", "a profile manifest that is a JSON list", [*SPLIT, "--profile", "{d}/prof", "--out", "{d}/s"],
         setup=lambda d: _profile(d, lambda f: (f / "manifest.json").write_text("[1, 2, 3]"))),
    Case("split", "a profile manifest missing protocol_hash", [*SPLIT, "--profile", "{d}/prof", "--out", "{d}/s"],
         setup=lambda d: _profile(d, lambda f: _manifest(f, lambda m: {k: v for k, v in m.items()
                                                                       if k != "protocol_hash"}))),
    Case("split", "a profile manifest that is not UTF-8", [*SPLIT, "--profile", "{d}/prof", "--out", "{d}/s"],
         setup=lambda d: _profile(d, lambda f: (f / "manifest.json").write_bytes(
             b"\xff\xfe" + (f / "manifest.json").read_bytes()))),
    Case("split", "a truncated profile.jsonl.xz", [*SPLIT, "--profile", "{d}/prof", "--out", "{d}/s"],
         setup=lambda d: _profile(d, lambda f: (f / "profile.jsonl.xz").write_bytes(
             (f / "profile.jsonl.xz").read_bytes()[:1000]))),
    Case("split", "--out is an existing split", [*SPLIT, "--profile", "bundled", "--out", "{d}/split"]),
    Case("split", "--out is a file", [*SPLIT, "--profile", "bundled", "--out", "{d}/split/manifest.json"]),
    Case("split", "--out is being written by another process", [*SPLIT, "--profile", "bundled", "--out", "{d}/busy"],
         setup=_locked),
    # damaged split folders, read by the commands that score on them
    Case("score", "a split manifest without files",
         ["score", "--base", "{d}/answers/base", "--tuned", "{d}/answers/sft", "--split", "{d}/split"],
         setup=lambda d: _manifest(d / "split", lambda m: {k: v for k, v in m.items() if k != "files"})),
    Case("score", "a split manifest that is a JSON list",
         ["score", "--base", "{d}/answers/base", "--tuned", "{d}/answers/sft", "--split", "{d}/split"],
         setup=lambda d: (d / "split" / "manifest.json").write_text("[]")),
    # probe state
    Case("probe", "--out holds a finished profile", [*TOY_PROBE, "--out", "{d}/prof"], setup=_profile),
    Case("probe", "a damaged .probe-work/protocol.json", [*TOY_PROBE, "--out", "{d}/pp"], setup=_damaged_state),
    Case("probe", ".probe-work is a file", [*TOY_PROBE, "--out", "{d}/pp"], setup=_work_is_a_file),
    Case("probe", "--out is being written by another process", [*TOY_PROBE, "--out", "{d}/busy"], setup=_locked),
    Case("probe", "a truncated chunk in .probe-work (recomputed)", [*TOY_PROBE, "--out", "{d}/pp"],
         setup=_damaged_chunk, expect=0),
    # hub ids out of reach
    Case("probe", "--model a hub id, offline", ["probe", "--model", "nobody/nothing", "--budget", "smoke",
                                               "--out", "{d}/p"], env={"HF_HUB_OFFLINE": "1"}),
    Case("models", "prepare a hub id, offline", ["models", "prepare", "nobody/nothing"], env={"HF_HUB_OFFLINE": "1"}),
    Case("models", "prepare a hub id, the hub unreachable", ["models", "prepare", "nobody/nothing"], env=OFFLINE_HUB),
    Case("probe", "--model a hub id, the hub unreachable", ["probe", "--model", "nobody/nothing", "--budget", "smoke",
                                                           "--out", "{d}/p"], env=OFFLINE_HUB),
]
