#define _GNU_SOURCE
#include "grove_kernels.h"

#include <sched.h>
#include <unistd.h>

// The cores this process may run on: its affinity mask, which taskset, a cgroup cpuset or
// mpirun's binding (one core per rank by default) narrow; the online count where that fails.
int grove_usable_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}
