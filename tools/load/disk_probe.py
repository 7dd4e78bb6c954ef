#!/usr/bin/env python3
"""How long a durable commit takes on this machine's disk, with and without CPU load.

    tools/load/disk_probe.py [SECONDS_PER_LEVEL] [DIRECTORY]

Not a test, and nothing of Credence runs: it writes 8 KB and calls fdatasync in a loop, the
decision log's commit pattern, on a preallocated file in DIRECTORY (default: target/, the
file system the data directory is usually on), first on an idle machine and then while
other processes keep the CPU busy at set levels. For each level it prints the guest's busy
cores (from /proc/stat), the commit latency percentiles, and how the slow commits (over
4 ms) fall within each 100 ms of the clock: about 20% of them in any 20 ms window if they
come at random, most of them in one window if something runs every 100 ms — as a host
thread serving the VM's disk under a CPU quota with a 100 ms period does.

Why it exists: the service's p99 under load is bounded below by this number, since a
decision is answered only after its commit (docs/benchmarks.md).
"""
import multiprocessing
import os
import sys
import time

WRITE_BYTES = 8192
FILE_BYTES = 256 << 20
SLOW_S = 0.004


def burn(duty, seconds):
    """Keeps one CPU busy `duty` of the time, in 10 ms periods."""
    end = time.time() + seconds
    while time.time() < end:
        start = time.perf_counter()
        while time.perf_counter() - start < 0.010 * duty:
            pass
        if duty < 1:
            time.sleep(0.010 * (1 - duty))


def cpu_times():
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:9]]
    return sum(fields), fields[3] + fields[4]


def commits(fd, seconds):
    latencies = []
    offset = 0
    payload = b"x" * WRITE_BYTES
    end = time.time() + seconds
    while time.time() < end and offset + WRITE_BYTES < FILE_BYTES:
        os.pwrite(fd, payload, offset)
        offset += WRITE_BYTES
        started = time.perf_counter()
        os.fdatasync(fd)
        latencies.append((time.time(), time.perf_counter() - started))
    return latencies


def level(fd, cores, seconds):
    loaders = []
    whole, part = int(cores), cores - int(cores)
    for duty in [1.0] * whole + ([part] if part > 0 else []):
        process = multiprocessing.Process(target=burn, args=(duty, seconds + 0.5))
        process.start()
        loaders.append(process)
    time.sleep(0.2)
    total_before, idle_before = cpu_times()
    latencies = commits(fd, seconds)
    total_after, idle_after = cpu_times()
    for process in loaders:
        process.join()
    ncpu = os.cpu_count() or 1
    total = max(total_after - total_before, 1)
    busy_cores = ncpu * (1 - (idle_after - idle_before) / total)
    ms = sorted(d * 1000 for _, d in latencies)
    n = len(ms)
    slow = [t for t, d in latencies if d > SLOW_S]
    phase = "-"
    if len(slow) >= 5:
        # The largest share of slow commits within one 20 ms window of the 100 ms period:
        # about 20% if they fall at random, near 100% if something runs every 100 ms.
        phases = [(t % 0.1) * 1000 for t in slow]
        bunched = max(
            sum(1 for p in phases if min(abs(p - c), 100 - abs(p - c)) <= 10) for c in range(100)
        )
        phase = f"{100 * bunched / len(phases):.0f}% of them in one 20 ms window of each 100 ms"
    print(
        f"{cores:>4.2f} cores of load | guest busy {busy_cores:4.2f} cores | {n:6d} commits | "
        f"p50 {ms[n // 2]:5.2f} p99 {ms[int(n * 0.99)]:5.2f} p99.9 {ms[int(n * 0.999)]:6.2f} "
        f"max {ms[-1]:6.2f} ms | {len(slow) / seconds:5.1f} over 4 ms per s, {phase}"
    )


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    directory = sys.argv[2] if len(sys.argv) > 2 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "target"
    )
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"disk-probe-{os.getpid()}.bin")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        zeros = b"\0" * (1 << 20)
        for i in range(FILE_BYTES >> 20):
            os.pwrite(fd, zeros, i << 20)
        os.fsync(fd)
        print(f"machine: {os.cpu_count()} cores; file in {os.path.realpath(directory)}; "
              f"{WRITE_BYTES} B write + fdatasync per commit; date {time.strftime('%Y-%m-%d')}")
        for cores in [0, 0.5, 0.75, 1.0, 1.5]:
            level(fd, cores, seconds)
    finally:
        os.close(fd)
        os.unlink(path)


if __name__ == "__main__":
    main()
