#!/usr/bin/python3
"""The model of docs/scaling.md: predicted efficiency of data-parallel training over N machines.

Each step, every process computes its own batch (t_c seconds, measured with `resnet bench --mode
train`) and the gradients are summed by a ring all-reduce, which moves 2 (N - 1) / N x 4 bytes x
parameters in and out of every process, in 2 (N - 1) messages:

    t_comm = 2 (N - 1) / N x 4 P / bandwidth + 2 (N - 1) x latency

Without overlap a step takes t_c + t_comm. With buckets (the trainer's: the gradients of the
blocks a backward pass has finished, queued from 256 KiB on, the last layers' first, as
DistributedDataParallel does) the sums run while the backward pass goes on: up to the backward
pass's time (taken as 2/3 of t_c, a backward costing about twice a forward) is hidden, except the
last bucket's sum, which can only start when the backward ends (taken as one block's share):

    exposed = max(t_comm - 2/3 t_c, t_comm / blocks)

Synchronised batch norm adds three small sums per batch norm and step (the forward's sums and
squared deviations, the backward's gradient sums), which the layer waits for, never hidden; they
go by recursive doubling (src/dist/dist.c), log2 N rounds, two more when N is not a power of 2,
and their few kilobytes make bandwidth negligible:

    t_bn = 3 x batch norms x (ceil(log2 N) + (2 if N is not a power of 2)) x latency

Efficiency = t_c / (t_c + exposed + t_bn). Usage:
scaling-model.py NAME=PARAMS:BATCH_NORMS:BLOCKS:SECONDS_PER_STEP ... (prints the markdown
tables)."""
import sys

BANDWIDTHS = (10, 25, 100)  # Gbit/s
NS = (2, 4, 8, 16, 32, 64)
LATENCY = 20e-6  # seconds per message: TCP over Ethernet, through Open MPI


def comm_seconds(params, n, gbit):
    volume = 2 * (n - 1) / n * 4 * params
    return volume / (gbit * 1e9 / 8) + 2 * (n - 1) * LATENCY


def bn_seconds(bns, n):
    rounds = (n - 1).bit_length() + (0 if n & (n - 1) == 0 else 2)
    return 3 * bns * rounds * LATENCY


def efficiency(t_c, params, bns, blocks, n, gbit, overlap):
    t = comm_seconds(params, n, gbit)
    if overlap:
        t = max(t - 2.0 / 3.0 * t_c, t / blocks)
    return t_c / (t_c + t + bn_seconds(bns, n))


def main(argv):
    nets = []
    for arg in argv:
        name, rest = arg.split("=")
        params, bns, blocks, seconds = rest.split(":")
        nets.append((name, int(params), int(bns), int(blocks), float(seconds)))
    for name, params, bns, blocks, t_c in nets:
        print("%s: %s parameters (%.1f MB of gradients), %d batch norms, %d blocks, %.3f s of "
              "compute per step\n" % (name, format(params, ","), 4 * params / 1e6, bns, blocks, t_c))
        print("| N | sync BN ms | " +
              " | ".join("%d Gbit/s: all-reduce ms, efficiency, overlapped" % b for b in BANDWIDTHS) + " |")
        print("|---|---|" + "---|" * len(BANDWIDTHS))
        for n in NS:
            cells = []
            for b in BANDWIDTHS:
                cells.append("%.1f, %.1f%%, %.1f%%" % (1e3 * comm_seconds(params, n, b),
                                                       100 * efficiency(t_c, params, bns, blocks, n, b, 0),
                                                       100 * efficiency(t_c, params, bns, blocks, n, b, 1)))
            print("| %d | %.1f | %s |" % (n, 1e3 * bn_seconds(bns, n), " | ".join(cells)))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
