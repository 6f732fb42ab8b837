import ArgumentParser
import Foundation
import GroveRun
import GroveModel
import GroveTensor

/// `grove doctor`: which BLAS kernel is in use, how many threads, and how fast sgemm runs here.
struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Report the BLAS kernel, threads and a measured sgemm GFLOP/s.")

    @Option(help: "Matrix size n of the n×n×n sgemm benchmark.")
    var size = 1024

    @Option(help: "Comma-separated thread counts to measure.")
    var threads = "1,\(ProcessInfo.processInfo.activeProcessorCount)"

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        let blas = BLAS.shared
        let counts = threads.split(separator: ",").compactMap { Int($0) }
        let initial = Parallel.threads
        var results: [(Int, Double)] = []
        for n in counts {
            Parallel.threads = n
            results.append((n, SgemmBenchmark.gflops(size: size)))
        }
        Parallel.threads = initial
        // A decode group of the bench's big model: 8 sequences through its 512 → 1376 projection.
        let decode = SgemmBenchmark.decodeGflops(rows: Transformer.decodeGroupRows, k: 512, n: 1376)
        if json {
            let perThreads = results.map { "\"\($0.0)\": \(String(format: "%.1f", $0.1))" }.joined(separator: ", ")
            print("{\"blas_core\": \"\(blas.coreName)\", \"core_source\": \"\(blas.coreTypeSource)\", \"library\": \"\(blas.libraryPath)\", \"blas_threads\": \(initial), \"cores\": \(ProcessInfo.processInfo.activeProcessorCount), \"sgemm_size\": \(size), \"sgemm_gflops\": {\(perThreads)}, \"decode_kernel\": \"\(blas.skinnyISA)\", \"decode_gemm_gflops\": {\"panel\": \(String(format: "%.1f", decode.panel)), \"skinny\": \(String(format: "%.1f", decode.skinny)), \"blas\": \(String(format: "%.1f", decode.blas))}, \"grove\": \"\(GroveVersion.string)\"}")
            return
        }
        print("Grove \(GroveVersion.string)")
        print("BLAS library:   \(blas.libraryPath)")
        print("BLAS kernel:    \(blas.coreName) (\(blas.coreTypeSource))")
        print("BLAS threads:   \(initial) of \(ProcessInfo.processInfo.activeProcessorCount) cores")
        for (n, g) in results {
            print("sgemm \(size)³:    \(String(format: "%.1f", g)) GFLOP/s on \(n) thread\(n == 1 ? "" : "s")")
        }
        print("decode GEMM:    \(Transformer.decodeGroupRows)×512 · 512×1376 on 1 thread (a decode group): "
              + "\(String(format: "%.1f", decode.panel)) GFLOP/s in Grove's panel kernel (\(blas.skinnyISA)), "
              + "\(String(format: "%.1f", decode.skinny)) in its skinny kernel, \(String(format: "%.1f", decode.blas)) through BLAS")
        #if DEBUG
        print("note: this is a debug build; build with -c release for real speed")
        #endif
    }
}
