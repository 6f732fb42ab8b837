// Open MPI through dlopen. The MPI handles are Open MPI's: MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM…
// are the addresses of its predefined globals (ompi_mpi_comm_world, …), MPI_IN_PLACE is (void *)1
// (mpi.h of Open MPI 4 and 5), so dlsym of those names gives the handles without the headers.
#include "grove_mpi.h"

#include <dlfcn.h>
#include <stdio.h>

typedef int (*init_fn)(int *, char ***);
typedef int (*comm_int_fn)(void *comm, int *out);
typedef int (*reduce_fn)(const void *send, void *recv, int count, void *type, void *op, int root, void *comm);
typedef int (*bcast_fn)(void *buffer, int count, void *type, int root, void *comm);
typedef int (*allgather_fn)(const void *send, int send_count, void *send_type, void *recv, int recv_count, void *recv_type, void *comm);
typedef int (*allgatherv_fn)(const void *send, int send_count, void *send_type, void *recv, const int *counts, const int *offsets,
                             void *recv_type, void *comm);
typedef int (*abort_fn)(void *comm, int code);
typedef int (*finalize_fn)(void);

static struct {
    comm_int_fn comm_rank, comm_size;
    reduce_fn reduce;
    bcast_fn bcast;
    allgather_fn allgather;
    allgatherv_fn allgatherv;
    abort_fn abort;
    finalize_fn finalize;
    void *world, *float_type, *int_type, *byte_type, *sum;
} mpi;

#define IN_PLACE ((void *)1)

int grove_mpi_load(char *error, size_t error_size) {
    // RTLD_GLOBAL: Open MPI's own plugins (mca_*.so) resolve their symbols against libmpi.
    void *lib = dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL);
    if (!lib) lib = dlopen("libmpi.so", RTLD_NOW | RTLD_GLOBAL);
    if (!lib) {
        snprintf(error, error_size, "cannot load Open MPI's libmpi (%s); install openmpi-bin and libopenmpi-dev (make setup)", dlerror());
        return -1;
    }
    init_fn init = (init_fn)dlsym(lib, "MPI_Init");
    mpi.comm_rank = (comm_int_fn)dlsym(lib, "MPI_Comm_rank");
    mpi.comm_size = (comm_int_fn)dlsym(lib, "MPI_Comm_size");
    mpi.reduce = (reduce_fn)dlsym(lib, "MPI_Reduce");
    mpi.bcast = (bcast_fn)dlsym(lib, "MPI_Bcast");
    mpi.allgather = (allgather_fn)dlsym(lib, "MPI_Allgather");
    mpi.allgatherv = (allgatherv_fn)dlsym(lib, "MPI_Allgatherv");
    mpi.abort = (abort_fn)dlsym(lib, "MPI_Abort");
    mpi.finalize = (finalize_fn)dlsym(lib, "MPI_Finalize");
    mpi.world = dlsym(lib, "ompi_mpi_comm_world");
    mpi.float_type = dlsym(lib, "ompi_mpi_float");
    mpi.int_type = dlsym(lib, "ompi_mpi_int");
    mpi.byte_type = dlsym(lib, "ompi_mpi_byte");
    mpi.sum = dlsym(lib, "ompi_mpi_op_sum");
    if (!init || !mpi.comm_rank || !mpi.comm_size || !mpi.reduce || !mpi.bcast || !mpi.allgather || !mpi.allgatherv || !mpi.abort
        || !mpi.finalize || !mpi.world || !mpi.float_type || !mpi.int_type || !mpi.byte_type || !mpi.sum) {
        snprintf(error, error_size, "the libmpi found is not Open MPI's (a symbol is missing: %s)", dlerror());
        return -1;
    }
    int rc = init(NULL, NULL);
    if (rc != 0) {
        snprintf(error, error_size, "MPI_Init failed with error %d", rc);
        return -1;
    }
    return 0;
}

int grove_mpi_rank(void) {
    int r = 0;
    mpi.comm_rank(mpi.world, &r);
    return r;
}

int grove_mpi_size(void) {
    int n = 1;
    mpi.comm_size(mpi.world, &n);
    return n;
}

int grove_mpi_sum_floats(float *values, long count) {
    int root = grove_mpi_rank() == 0;
    // MPI counts are ints: a large model goes in chunks.
    const long chunk = 1L << 26;
    for (long start = 0; start < count; start += chunk) {
        int n = (int)(count - start < chunk ? count - start : chunk);
        int rc = mpi.reduce(root ? IN_PLACE : values + start, values + start, n, mpi.float_type, mpi.sum, 0, mpi.world);
        if (rc == 0) rc = mpi.bcast(values + start, n, mpi.float_type, 0, mpi.world);
        if (rc != 0) return rc;
    }
    return 0;
}

int grove_mpi_allgather_bytes(const void *send, int count, void *receive, const int *counts, const int *offsets) {
    return mpi.allgatherv(send, count, mpi.byte_type, receive, counts, offsets, mpi.byte_type, mpi.world);
}

int grove_mpi_allgather_int(int value, int *receive) {
    return mpi.allgather(&value, 1, mpi.int_type, receive, 1, mpi.int_type, mpi.world);
}

int grove_mpi_finalize(void) { return mpi.finalize(); }

void grove_mpi_abort(int code) { mpi.abort(mpi.world, code); }
