import XCTest
@testable import GroveTensor

final class BLASTests: XCTestCase {
    /// Grove chooses OpenBLAS's kernels from the CPU flags before the library loads.
    func testFastKernelIsSelected() throws {
        let blas = BLAS.shared
        guard let wanted = BLAS.fastestCoreType() else { throw XCTSkip("no AVX2/AVX-512 kernel known for this CPU") }
        XCTAssertNotEqual(blas.coreName.lowercased(), "prescott")
        if blas.coreTypeSource.contains("detected") {
            XCTAssertEqual(blas.coreName.lowercased().replacingOccurrences(of: "x", with: ""),
                           wanted.lowercased().replacingOccurrences(of: "x", with: ""))
        }
    }

    /// matmul through sgemm against a plain triple loop, on odd sizes, sizes of 1 and every transpose.
    func testMatmulAgainstPlainLoops() {
        for (M, K, N) in [(1, 1, 1), (1, 7, 3), (5, 1, 4), (13, 17, 11), (33, 9, 65)] {
            for (tA, tB) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = randomTensor(tA ? [K, M] : [M, K], seed: 1), b = randomTensor(tB ? [N, K] : [K, N], seed: 2)
                let c = matmul(a, b, transposeA: tA, transposeB: tB)
                for i in 0..<M {
                    for j in 0..<N {
                        var s: Float = 0
                        for k in 0..<K {
                            s += (tA ? a.data[k * M + i] : a.data[i * K + k]) * (tB ? b.data[j * K + k] : b.data[k * N + j])
                        }
                        XCTAssertEqual(c.data[i * N + j], s, accuracy: 1e-4)
                    }
                }
            }
        }
    }

    /// One and several threads give the same attention output (threads split rows, never a sum).
    func testThreadCountDoesNotChangeResults() {
        let q = randomTensor([2, 9, 4, 8], seed: 3), k = randomTensor([2, 9, 2, 8], seed: 4), v = randomTensor([2, 9, 2, 8], seed: 5)
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 1
        let one = attention(q, k, v).values
        Parallel.threads = 4
        XCTAssertEqual(attention(q, k, v).values, one)
    }

    /// Causal query blocks (GEMMs cut at each block's last visible key) give the output and
    /// gradients of the whole T × S product, with padding and with cached keys (S > T).
    func testAttentionRowBlocksEqualTheFullProduct() {
        for (T, S) in [(70, 70), (37, 50)] {
            let q = randomTensor([2, T, 4, 8], seed: 6), k = randomTensor([2, S, 2, 8], seed: 7), v = randomTensor([2, S, 2, 8], seed: 8)
            for t in [q, k, v] { t.requireGrad() }
            let mask = (0..<2 * S).map { $0 != S && $0 != S + 1 }  // row 1 left-padded by two keys
            func run(_ rowBlock: Int) -> [[Float]] {
                for t in [q, k, v] { t.zeroGrad() }
                let out = attention(q, k, v, keyMask: mask, rowBlock: rowBlock)
                let weights = (0..<out.count).map { Float($0 % 7) - 3 }
                sum(mul(out, Tensor(weights, shape: out.shape))).backward()
                return [out.values, q.gradValues!, k.gradValues!, v.gradValues!]
            }
            let full = run(T), blocked = run(16)
            for (a, b) in zip(full, blocked) {
                for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-5 * max(1, abs(x))) }
            }
        }
    }

    /// A GEMM split across workers (blocks of rows of C, or of columns when C is wide) equals
    /// the same GEMM on one thread, for every transpose, with accumulation into C (beta 1).
    func testSplitGemmEqualsSingleThread() {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        for (M, K, N) in [(301, 157, 70), (45, 190, 517)] {  // 2·M·N·K above the split threshold; tall and wide C
            for (tA, tB) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = randomTensor(tA ? [K, M] : [M, K], seed: 1), b = randomTensor(tB ? [N, K] : [K, N], seed: 2)
                func run(threads: Int) -> [Float] {
                    Parallel.threads = threads
                    let c = randomTensor([M, N], seed: 3)
                    BLAS.shared.sgemm(tA ? .transpose : .none, tB ? .transpose : .none, m: M, n: N, k: K, alpha: 0.5,
                                      a: a.data, lda: tA ? M : K, b: b.data, ldb: tB ? K : N, beta: 1, c: c.data, ldc: N)
                    return c.values
                }
                XCTAssertGreaterThanOrEqual(2 * M * N * K, BLAS.splitFlops)
                let one = run(threads: 1), three = run(threads: 3)
                XCTAssertLessThan(zip(one, three).map { abs($0 - $1) }.max()!, 1e-4, "M \(M) K \(K) N \(N) tA \(tA) tB \(tB)")
            }
        }
    }

    /// The decode step's panel-packed product equals x·Wᵀ summed in Double, for row counts
    /// below, at and above the kernel's 8-row tile and widths that leave a partial panel.
    func testPanelPackedProductAgainstPlainLoops() {
        for (M, K, N) in [(1, 16, 4), (3, 37, 33), (8, 64, 96), (11, 129, 1029)] {
            let x = randomTensor([M, K], seed: 21), w = randomTensor([N, K], seed: 22)
            let y = PanelPackedMatrix(w).product(x)
            XCTAssertEqual(y.shape, [M, N])
            var worst = 0.0
            for i in 0..<M {
                for j in 0..<N {
                    var dot = 0.0
                    for k in 0..<K { dot += Double(x.data[i * K + k]) * Double(w.data[j * K + k]) }
                    worst = max(worst, abs(dot - Double(y.data[i * N + j])))
                }
            }
            XCTAssertLessThan(worst, 1e-4, "M \(M) K \(K) N \(N)")
        }
    }

    /// The skinny decode kernel (few rows of A times Bᵀ, no packing) against a double-precision
    /// loop: row counts 1…skinnyRows, K with and without a 16-float tail, N with and without a
    /// 4-column tail, padded leading dimensions, alpha and beta, on one and two threads.
    func testSkinnyKernelAgainstPlainLoops() {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        for (M, K, N) in [(1, 16, 4), (3, 37, 7), (7, 40, 9), (BLAS.skinnyRows, 129, 1029)] {
            let lda = K + 3, ldb = K + 5, ldc = N + 2
            let a = randomTensor([M, lda], seed: 11), b = randomTensor([N, ldb], seed: 12), c0 = randomTensor([M, ldc], seed: 13)
            for threads in [1, 2] {
                Parallel.threads = threads
                let c = Tensor(c0.values, shape: c0.shape)
                BLAS.shared.sgemm(.none, .transpose, m: M, n: N, k: K, alpha: 0.5, a: a.data, lda: lda, b: b.data, ldb: ldb,
                                  beta: 2, c: c.data, ldc: ldc)
                var worst = 0.0
                for i in 0..<M {
                    for j in 0..<ldc {
                        var expected = Double(c0.data[i * ldc + j])
                        if j < N {
                            var dot = 0.0
                            for k in 0..<K { dot += Double(a.data[i * lda + k]) * Double(b.data[j * ldb + k]) }
                            expected = 0.5 * dot + 2 * expected
                        }
                        worst = max(worst, abs(expected - Double(c.data[i * ldc + j])))
                    }
                }
                XCTAssertLessThan(worst, 1e-4, "M \(M) K \(K) N \(N) threads \(threads)")
            }
        }
        XCTAssertTrue(["avx512f", "avx2", "sse2"].contains(BLAS.shared.skinnyISA))
    }
}
