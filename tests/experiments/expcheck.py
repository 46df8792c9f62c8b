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
