import Foundation

/// Measures cblas_sgemm throughput, the ceiling every training step is compared with.
public enum SgemmBenchmark {
    /// Best-of-five GFLOP/s of an n×n×n sgemm (2n³ flops) at the current BLAS thread count.
    public static func gflops(size n: Int, repeats: Int = 5) -> Double {
        var rng = SeededRandom(seed: 0)
        let a = Tensor.randn([n, n], rng: &rng), b = Tensor.randn([n, n], rng: &rng)
        let c = Tensor(zeros: [n, n])
        let blas = BLAS.shared
        let times = seconds(repeats: repeats) {
            blas.sgemm(.none, .none, m: n, n: n, k: n, a: a.data, lda: n, b: b.data, ldb: n, beta: 0, c: c.data, ldc: n)
        }
        return 2 * Double(n * n * n) / times[0] / 1e9
    }

    /// GFLOP/s of one decode-step product on one thread (what a decode group runs), `rows` × k
    /// times a [n, k] weight (A · Bᵀ): on the weight's panel copy (`PanelPackedMatrix`, what
    /// `generate` uses), in the skinny kernel on the weight as stored, and through OpenBLAS;
    /// median of `repeats`.
    public static func decodeGflops(rows: Int, k: Int, n: Int, repeats: Int = 200) -> (panel: Double, skinny: Double, blas: Double) {
        var rng = SeededRandom(seed: 0)
        let a = Tensor.randn([rows, k], rng: &rng), b = Tensor.randn([n, k], rng: &rng)
        let c = Tensor(zeros: [rows, n])
        let blas = BLAS.shared, panels = PanelPackedMatrix(b)
        func rate(_ run: () -> Void) -> Double { 2 * Double(rows * k * n) / seconds(repeats: repeats, run)[repeats / 2] / 1e9 }
        let panel = rate { _ = panels.product(a) }
        let skinny = rate { blas.skinny(m: rows, n: n, k: k, alpha: 1, a: a.data, lda: k, b: b.data, ldb: k, beta: 0, c: c.data, ldc: n, split: false) }
        let packed = rate { blas.packed(.none, .transpose, m: rows, n: n, k: k, alpha: 1, a: a.data, lda: k, b: b.data, ldb: k,
                                        beta: 0, c: c.data, ldc: n, split: false) }
        return (panel, skinny, packed)
    }

    /// Seconds of `repeats` calls of `run`, sorted, after one warm-up call (page faults, thread start-up).
    static func seconds(repeats: Int, _ run: () -> Void) -> [Double] {
        run()
        return (0..<repeats).map { _ -> Double in
            let start = DispatchTime.now().uptimeNanoseconds
            run()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }.sorted()
    }
}
