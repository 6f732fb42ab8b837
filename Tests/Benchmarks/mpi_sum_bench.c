// The time of Grove's data-parallel gradient sum (MPI_Reduce onto rank 0, then MPI_Bcast, as
// Sources/CGroveMPI/mpi_shim.c does) against one MPI_Allreduce, for a buffer of N floats:
//   mpicc -O2 Tests/Benchmarks/mpi_sum_bench.c -o /tmp/mpi_sum_bench
//   mpirun -np 2 /tmp/mpi_sum_bench 823730 200      # the quickstart's gradients, 200 times
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    long n = argc > 1 ? atol(argv[1]) : 823730;
    int iterations = argc > 2 ? atoi(argv[2]) : 100;
    float *v = malloc(n * sizeof(float));
    for (int allreduce = 0; allreduce < 2; allreduce++) {
        for (long i = 0; i < n; i++) v[i] = 1e-3f * (float)(i % 1000);
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        for (int k = 0; k < iterations; k++) {
            if (allreduce) {
                MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            } else {
                MPI_Reduce(rank == 0 ? MPI_IN_PLACE : v, v, (int)n, MPI_FLOAT, MPI_SUM, 0, MPI_COMM_WORLD);
                MPI_Bcast(v, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
            }
        }
        double ms = (MPI_Wtime() - t0) / iterations * 1e3;
        if (rank == 0) printf("%ld floats (%.1f MB): %.2f ms per %s\n", n, n * 4 / 1e6, ms, allreduce ? "MPI_Allreduce" : "MPI_Reduce + MPI_Bcast");
    }
    free(v);
    MPI_Finalize();
    return 0;
}
