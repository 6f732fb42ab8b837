import Foundation

/// Measures cblas_sgemm throughput, the ceiling every training step is compared with.
public enum SgemmBenchmark {
    /// Best-of-five GFLOP/s of an n×n×n sgemm (2n³ flops) at the current BLAS thread count.
    public static func gflops(size n: Int, repeats: Int = 5) -> Double {
        var rng = SeededRandom(seed: 0)
        let a = Tensor.randn([n, n], rng: &rng), b = Tensor.randn([n, n], rng: &rng)
        let c = Tensor(zeros: [n, n])
        let blas = BLAS.shared
        func once() -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            blas.sgemm(.none, .none, m: n, n: n, k: n, a: a.data, lda: n, b: b.data, ldb: n, beta: 0, c: c.data, ldc: n)
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        _ = once()  // warm-up: page faults, thread start-up
        let best = (0..<repeats).map { _ in once() }.min()!
        return 2 * Double(n * n * n) / best / 1e9
    }
}
