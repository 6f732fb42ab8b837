// Open MPI's C API as Grove uses it, loaded at run time (dlopen) so that Grove builds and runs
// without MPI installed; only a process launched by mpirun loads libmpi.
#ifndef GROVE_MPI_H
#define GROVE_MPI_H

#include <stddef.h>

/// Loads libmpi and calls MPI_Init. Returns 0, or -1 with a message in `error`.
int grove_mpi_load(char *error, size_t error_size);
int grove_mpi_rank(void);
int grove_mpi_size(void);
/// Sums `count` floats over every rank, in place: reduced onto rank 0, then broadcast from it,
/// so every rank receives the very same bits. Returns MPI's error code (0: success).
int grove_mpi_sum_floats(float *values, long count);
/// Every rank's `count` bytes: `counts` and `offsets` (one per rank) say where rank r's land in `receive`.
int grove_mpi_allgather_bytes(const void *send, int count, void *receive, const int *counts, const int *offsets);
/// Every rank's one int, in rank order.
int grove_mpi_allgather_int(int value, int *receive);
int grove_mpi_finalize(void);
/// Ends every rank of the job (MPI_Abort on MPI_COMM_WORLD), naming this rank in mpirun's message.
void grove_mpi_abort(int code);

#endif
