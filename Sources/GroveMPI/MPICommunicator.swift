import CGroveMPI
import Foundation
import GroveTrain

/// The ranks of an Open MPI job (`mpirun -np N grove run …`) as a `Communicator`. libmpi is
/// loaded when the first process of a job asks for it, so Grove builds and runs without MPI.
///
/// A failing MPI call ends the job: Open MPI's default error handler (MPI_ERRORS_ARE_FATAL)
/// aborts every rank, and mpirun names the rank that failed.
///
/// ```swift
/// let world: Communicator = MPICommunicator.launchedByMPI ? try MPICommunicator() : SingleProcess()
/// ```
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int

    /// Whether this process was started by Open MPI's mpirun (or its PMIx server), which sets these.
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil
    }

    /// Loads libmpi and joins the job (MPI_Init). One per process.
    public init() throws {
        var error = [CChar](repeating: 0, count: 512)
        guard grove_mpi_load(&error, error.count) == 0 else { throw MPIError(description: String(cString: error)) }
        rank = Int(grove_mpi_rank())
        size = Int(grove_mpi_size())
    }

    public func allReduceSum(_ values: UnsafeMutableBufferPointer<Float>) {
        _ = grove_mpi_sum_floats(values.baseAddress, values.count)
    }

    public func allGather(_ bytes: [UInt8]) -> [[UInt8]] {
        var counts = [Int32](repeating: 0, count: size)
        _ = grove_mpi_allgather_int(Int32(bytes.count), &counts)
        var offsets = [Int32](repeating: 0, count: size)
        for r in 1..<max(size, 1) { offsets[r] = offsets[r - 1] + counts[r - 1] }
        var all = [UInt8](repeating: 0, count: Int(counts.reduce(0, +)))
        _ = grove_mpi_allgather_bytes(bytes, Int32(bytes.count), &all, counts, offsets)
        return (0..<size).map { Array(all[Int(offsets[$0])..<Int(offsets[$0] + counts[$0])]) }
    }

    /// Leaves the job cleanly (MPI_Finalize), at the end of a run that succeeded on this rank.
    public func finish() { _ = grove_mpi_finalize() }

    /// Ends every rank of the job with `code`; mpirun reports this rank as the one that called it.
    public func abort(code: Int32) -> Never {
        grove_mpi_abort(code)
        exit(code)
    }
}

/// Open MPI could not be loaded or started.
public struct MPIError: Error, CustomStringConvertible {
    public let description: String
}
