#!/usr/bin/env python3
"""Where the main thread runs alone: the serial part of a Grove run, from a perf profile.

Grove's ops split their work over worker threads; whatever the main thread does while no other
thread is sampled leaves the other cores idle. This reads `perf script` output and counts the
main thread's samples that have no sample of another thread within 1.5 sampling periods, then
names the Grove function (innermost Swift frame of a Grove module) each such sample was in. The
period is read from the samples (the median gap between the main thread's), so any `-F` works.

    perf record -F 9999 -g -o /tmp/perf.data .build/release/grove bench --models small --parts train --steps 12
    perf script -i /tmp/perf.data -F tid,time,ip,sym | python3 Tests/Benchmarks/serial_samples.py --skip 0.5

--skip F ignores the first fraction F of the run (after the first GEMM): warm-up steps and setup.
"""
import argparse
import bisect
import collections
import subprocess
import sys


def read_samples(lines):
    """Yields (tid, seconds, [frames, innermost first]) from `perf script -F tid,time,ip,sym`."""
    sample = None
    for line in lines:
        if not line.strip():
            if sample:
                yield sample
            sample = None
        elif line.startswith("\t"):  # a frame: address and symbol
            parts = line.strip().split(None, 1)
            sample[2].append(parts[1] if len(parts) > 1 else "?")
        else:  # a sample's header: tid and time (the previous sample ends here if no blank line did)
            if sample:
                yield sample
            tid, time = line.split()[:2]
            sample = (int(tid), float(time.rstrip(":")), [])
    if sample:
        yield sample


def grove_frame(frames):
    """The innermost Grove Swift function of a stack, else its innermost frame."""
    return next((f for f in frames if f.startswith("$s") and "Grove" in f), frames[0] if frames else "?")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip", type=float, default=0.0, help="fraction of the run to ignore at its start")
    parser.add_argument("--period", type=float, default=None,
                        help="sampling period in seconds (1/frequency); default: read from the samples")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()

    samples = list(read_samples(sys.stdin))
    if not samples:
        sys.exit("no samples on standard input (pipe `perf script -F tid,time,ip,sym` into this)")
    main_tid = samples[0][0]  # the process's first sample is its main thread's
    start = min((s[1] for s in samples if any("sgemm" in f for f in s[2])), default=samples[0][1])
    start += (samples[-1][1] - start) * args.skip
    samples = [s for s in samples if s[1] >= start]
    others = sorted(s[1] for s in samples if s[0] != main_tid)
    if args.period is None:  # the usual gap between a busy thread's consecutive samples (perf record -F)
        times = [s[1] for s in samples if s[0] == main_tid]
        gaps = sorted(b - a for a, b in zip(times, times[1:]))
        args.period = gaps[len(gaps) // 2] if gaps else 1e-4

    def others_busy(t):
        i = bisect.bisect_left(others, t - 1.5 * args.period)
        return i < len(others) and others[i] <= t + 1.5 * args.period

    main_samples = [s for s in samples if s[0] == main_tid]
    alone = [s for s in main_samples if not others_busy(s[1])]
    print(f"main thread: {len(main_samples)} samples, {len(alone)} ({100 * len(alone) / max(len(main_samples), 1):.1f} %) "
          f"with no other thread busy, over {samples[-1][1] - start:.2f} s (sampling period {1e3 * args.period:.3f} ms)")
    counts = collections.Counter(grove_frame(s[2]) for s in alone).most_common(args.top)
    names = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(n for n, _ in counts),
                           capture_output=True, text=True).stdout.split("\n")
    for (_, count), name in zip(counts, names):
        print(f"{100 * count / len(main_samples):6.1f} %  {name[:140]}")


if __name__ == "__main__":
    main()
