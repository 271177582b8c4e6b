"""Time to the first training step, stage by stage: what every start (and so every resume) costs.

Usage: python3 benchmarks/bench_start.py [--runs 3] [--keep] [key=value ...]

Each run is a fresh `python run.py` process (the demo's settings, plus the key=value settings
given) that stops itself once its first backup is written (`save_every_steps=1` unless given),
followed by a second process that resumes that run and stops at its own first backup. The process
is the real command with timing marks set around its parts (nothing else changes), at:
- python and run.py's imports: the interpreter's start and the modules run.py imports;
- settings: the config file read, `key=value` parsed and every rule checked;
- TensorFlow import: `start_tensorflow`;
- demo data: the check that the demo files exist (built once, before the first run);
- mode module import: multi_label.tasks.train and what it imports (Keras's layers, losses, ...);
- label files and pipelines: label files read, run folder prepared, tf.data pipelines defined;
- model built: `build_model`;
- compiled: loss, optimizer, `compile`, callbacks;
- fit's set-up: the callbacks' start (a resumed run restores its backup here);
- first step: the pipeline's first batch (decoding and the shuffle buffer), the trace of the
  training step and its first run (a resumed run's first batch is drawn, not trained: its trace
  then comes in the next stage);
- first backup written: the steps up to it and the save.
Prints each stage's median over `--runs`, new and resumed, as a markdown table. The demo data must
exist (`python run.py` builds it); the runs go to models/bench_start-*/ and are removed unless
--keep. Run it on an otherwise idle machine.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ["python and run.py's imports", "settings", "TensorFlow import", "demo data", "mode module import",
          "label files and pipelines", "model built", "compiled", "fit's set-up", "first step", "first backup written"]
MARKS_VARIABLE = "BENCH_START_MARKS"  # the child writes its marks (JSON) to this file


def child(marks_path, args):
    """Runs run.py's main on `args` with timing marks; exits once the first backup is written."""
    marks = {}
    mark = lambda name: marks.setdefault(name, time.time())

    def save_and_exit(code=0):
        with open(marks_path, "w") as f:
            json.dump(marks, f)
        sys.stdout.flush()
        os._exit(code)

    sys.path.insert(0, ROOT)
    import run

    mark("python and run.py's imports")
    load_config, start_tensorflow = run.load_config, run.start_tensorflow

    def timed_load_config(argv):
        config = load_config(argv)
        mark("settings")
        return config

    def timed_start_tensorflow():
        gpus = start_tensorflow()
        mark("TensorFlow import")
        import dataset.demo  # imported by run.main next; its import counts towards the demo data stage

        ensure = dataset.demo.ensure_demo_data

        def timed_ensure(*a, **k):
            ensure(*a, **k)
            mark("demo data")

        dataset.demo.ensure_demo_data = timed_ensure
        return gpus

    def timed_import(name):
        import importlib

        module = importlib.import_module(name)
        mark("mode module import")
        instrument_train(module, mark, save_and_exit)
        return module

    run.load_config, run.start_tensorflow = timed_load_config, timed_start_tensorflow
    run.importlib = type("Importer", (), {"import_module": staticmethod(timed_import)})
    run.main(args)
    save_and_exit(1)  # training ended without a backup: the marks say how far it got


def instrument_train(train_module, mark, save_and_exit):
    """Marks the stages inside mode=train's `train` and stops the process at the first backup."""
    import keras

    from multi_label.training.backup import AtomicBackupAndRestore

    build_model, fit_unless_stopped = train_module.build_model, train_module.fit_unless_stopped
    training_callbacks = train_module.training_callbacks
    write_backup = AtomicBackupAndRestore._write_backup

    def timed_build_model(*a, **k):
        mark("label files and pipelines")
        model = build_model(*a, **k)
        mark("model built")
        return model

    def timed_fit(*a, **k):
        mark("compiled")
        return fit_unless_stopped(*a, **k)

    class SetUp(keras.callbacks.Callback):  # last: after every callback's start
        def on_train_batch_begin(self, batch, logs=None):
            mark("fit's set-up")

    class FirstStep(keras.callbacks.Callback):  # first: before the backup's save
        def on_train_batch_end(self, batch, logs=None):
            mark("first step")

    def timed_callbacks(*a, **k):
        return [FirstStep(), *training_callbacks(*a, **k), SetUp()]

    def timed_write_backup(self):
        write_backup(self)
        mark("first backup written")
        save_and_exit(0)

    train_module.build_model, train_module.fit_unless_stopped = timed_build_model, timed_fit
    train_module.training_callbacks = timed_callbacks
    AtomicBackupAndRestore._write_backup = timed_write_backup


def timed_process(args):
    """Runs one child process on `args`; returns {stage: seconds since the process was started}."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        marks_path = f.name
    start = time.time()
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", marks_path, *args], cwd=ROOT,
                            capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    with open(marks_path) as f:
        marks = json.load(f) if os.path.getsize(marks_path) else {}
    os.unlink(marks_path)
    if result.returncode != 0 or "first backup written" not in marks:
        raise SystemExit(f"run.py {' '.join(args)} stopped before its first backup (exit {result.returncode}):\n"
                         f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return {stage: marks[stage] - start for stage in STAGES if stage in marks}


def table(runs):
    """Markdown rows: each stage's median duration and the median time since start, new and resumed runs."""
    lines = ["| stage | new run: s | since start | resumed run: s | since start |", "|---|---|---|---|---|"]
    for stage in STAGES:
        cells = []
        for kind in ("new", "resumed"):
            ends = [marks[stage] for marks in runs[kind] if stage in marks]
            index = STAGES.index(stage)
            durations = [marks[stage] - max([0.0] + [marks[s] for s in STAGES[:index] if s in marks])
                         for marks in runs[kind] if stage in marks]
            cells += [f"{statistics.median(durations):.2f}", f"{statistics.median(ends):.2f}"] if ends else ["", ""]
        lines.append(f"| {stage} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main(argv):
    if argv[:1] == ["--child"]:
        return child(argv[1], argv[2:])
    runs_count, keep = 3, "--keep" in argv
    argv = [a for a in argv if a != "--keep"]
    if argv[:1] == ["--runs"]:
        runs_count, argv = int(argv[1]), argv[2:]
    settings = [a for a in argv if "=" in a]
    if not any(a.startswith("save_every_steps=") for a in settings):
        settings.append("save_every_steps=1")
    runs = {"new": [], "resumed": []}
    for index in range(runs_count):
        name = f"bench_start-{index + 1}"
        for folder in ("models", "logs"):
            shutil.rmtree(os.path.join(ROOT, folder, name), ignore_errors=True)
        args = [*settings, f"run_name={name}"]
        runs["new"].append(timed_process(args))
        runs["resumed"].append(timed_process(args))
        print(f"run {index + 1}: first backup after {runs['new'][-1]['first backup written']:.1f} s new, "
              f"{runs['resumed'][-1]['first backup written']:.1f} s resumed", flush=True)
        if not keep:
            for folder in ("models", "logs"):
                shutil.rmtree(os.path.join(ROOT, folder, name), ignore_errors=True)
    print(f"\n{' '.join(settings)}; median of {runs_count} runs; seconds\n")
    print(table(runs))


if __name__ == "__main__":
    main(sys.argv[1:])
