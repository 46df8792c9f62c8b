"""What every check_NAME.py shares: the experiment folder given on the command line, its
results.csv, its settings, a training run's metrics, and how a check reports and exits."""
import csv, json, os, sys


def folder():
    return sys.argv[1]


def results(d):
    with open(os.path.join(d, "results.csv")) as f:
        return list(csv.DictReader(f))


def settings_of(d):
    with open(os.path.join(d, "experiment.json")) as f:
        return json.load(f)


def metrics(d, run):
    """One dict per epoch of runs/RUN/metrics.jsonl."""
    with open(os.path.join(d, "runs", run, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def finish(name, fail):
    for f in fail:
        print(name + ": " + f)
    sys.exit(1 if fail else 0)


def summary_of(d):
    with open(os.path.join(d, "summary.md")) as f:
        return f.read()


def check_epochs(d, rows, run_column, fail):
    """Each row's train and test error lie in [0, 1] and are the ones that epoch r["epoch"] of its
    training run (named in the column run_column) wrote to runs/RUN/metrics.jsonl: the CSV is
    those runs, not a copy of something else."""
    runs = {}
    for r in rows:
        run = r[run_column]
        if run not in runs:
            runs[run] = metrics(d, run)
        e = runs[run][int(r["epoch"]) - 1]
        for k in ("train_error", "test_error"):
            if not 0.0 <= float(r[k]) <= 1.0:
                fail.append(f"{run} epoch {r['epoch']}: {k} {r[k]} outside [0, 1]")
            elif abs(e[k] - float(r[k])) > 5e-7:
                fail.append(f"{run} epoch {r['epoch']}: {k} differs from the run's metrics.jsonl")


def check_summary(d, needles, fail):
    """summary.md holds every needle (a table row is "| NAME |"); returns its text."""
    summary = summary_of(d)
    for needle in needles:
        if needle not in summary:
            fail.append(f"summary.md lacks '{needle}'")
    return summary
