import CGroveKernels
import Foundation

/// Splits loops across cores: GEMM blocks (`BLAS.sgemm`), attention heads, elementwise kernels.
///
/// The one thread pool of the process (OpenBLAS itself runs single-threaded, see BLAS.swift).
/// Chunks are contiguous so each thread streams its own memory.
public enum Parallel {
    /// Worker count: `GROVE_NUM_THREADS` if set, else the cores this process may use (its CPU
    /// affinity: under `mpirun`, which binds each rank to a core by default, one per rank).
    nonisolated(unsafe) public static var threads: Int = {
        if let v = getenv("GROVE_NUM_THREADS").flatMap({ Int(String(cString: $0)) }), v > 0 { return v }
        return Int(grove_usable_cpus())
    }()

    /// Marks threads that already run one shard of a parallel job (see `serially`).
    private static let serialKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// True on a thread inside `serially`: loops and GEMMs there stay on that thread.
    public static var isSerial: Bool { pthread_getspecific(serialKey) != nil }

    /// Runs `body` with every `forEach` and `BLAS.sgemm` inside it on the calling thread:
    /// for work that is itself one of several shards running in parallel (a group of
    /// sequences being decoded), where splitting each small op again only adds wake-ups.
    public static func serially<R>(_ body: () -> R) -> R {
        let outer = isSerial
        pthread_setspecific(serialKey, UnsafeRawPointer(bitPattern: 1))
        defer { if !outer { pthread_setspecific(serialKey, nil) } }
        return body()
    }

    /// Calls `body(range)` on disjoint chunks covering 0..<n; serial when the work is small
    /// or when called inside `serially`. `grain` is the smallest number of items worth a thread.
    @inline(__always)
    public static func forEach(_ n: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        let workers = isSerial ? 1 : min(threads, max(1, n / max(grain, 1)))
        if workers <= 1 { body(0..<n); return }
        let chunk = (n + workers - 1) / workers
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let lo = w * chunk, hi = min(n, lo + chunk)
            if lo < hi { body(lo..<hi) }
        }
    }
}
