import Foundation

/// Splits loops over rows across cores (attention heads, elementwise kernels).
///
/// BLAS runs its own threads inside sgemm; these loops run between GEMMs, so the two
/// never compete. Chunks are contiguous so each thread streams its own memory.
public enum Parallel {
    /// Worker count for Grove's own loops (defaults to the active processor count).
    nonisolated(unsafe) public static var threads = ProcessInfo.processInfo.activeProcessorCount

    /// Calls `body(range)` on disjoint chunks covering 0..<n; serial when the work is small.
    /// `grain` is the smallest number of items worth a thread.
    @inline(__always)
    public static func forEach(_ n: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        let workers = min(threads, max(1, n / max(grain, 1)))
        if workers <= 1 { body(0..<n); return }
        let chunk = (n + workers - 1) / workers
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let lo = w * chunk, hi = min(n, lo + chunk)
            if lo < hi { body(lo..<hi) }
        }
    }
}
