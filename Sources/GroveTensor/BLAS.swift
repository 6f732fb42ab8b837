import CGroveKernels
import Foundation

// OpenBLAS, loaded at run time.
//
// Debian's OpenBLAS 0.3.21 does not recognise recent CPUs and falls back to its
// 'Prescott' kernels (~33 GFLOP/s a core instead of ~160 with the SKYLAKEX ones).
// It picks its kernels once, in its load-time constructor, from the environment
// variable OPENBLAS_CORETYPE. A link-time dependency would run that constructor
// before any Swift code, so Grove opens the library itself with dlopen, after
// choosing the core type from the CPU's features. Every entry point (CLI, tests,
// library use) goes through `BLAS.shared`, so all get the fast kernels.
// A user's own OPENBLAS_CORETYPE is respected.
//
// Threads: OpenBLAS runs single-threaded and Grove splits each large sgemm across its
// own workers (`Parallel`), one contiguous block of C each. With OpenBLAS's thread pool
// beside Grove's, the two pools fought for the cores: OpenBLAS's idle workers spin in
// sched_yield between calls (a quarter of all cycles in a training step) while Grove's
// attention and elementwise loops wait for a core. One pool keeps every core busy with work.

/// Matrix layout flags for `BLAS.sgemm` (CBLAS values).
public enum Transpose: Int32, Sendable {
    case none = 111
    case transpose = 112
}

/// Errors of the numeric core.
public enum TensorError: Error, CustomStringConvertible {
    case blasUnavailable(String)
    case badOptimizerState(String)

    public var description: String {
        switch self {
        case .blasUnavailable(let why):
            return "OpenBLAS could not be loaded: \(why). Install it with `apt-get install libopenblas-dev` (or run `make setup`)."
        case .badOptimizerState(let why):
            return "the optimizer state does not fit this model: \(why)"
        }
    }
}

/// The process-wide OpenBLAS handle: kernel selection, threads and sgemm.
public final class BLAS: @unchecked Sendable {
    typealias SgemmFn = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Float,
                                        UnsafePointer<Float>?, Int32, UnsafePointer<Float>?, Int32,
                                        Float, UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias CorenameFn = @convention(c) () -> UnsafeMutablePointer<CChar>?
    typealias SetThreadsFn = @convention(c) (Int32) -> Void

    private let sgemmFn: SgemmFn
    /// The kernel family OpenBLAS reports (for example "SkylakeX" or "Prescott").
    public let coreName: String
    /// Where the core type came from: the user's environment, Grove's CPU detection, or OpenBLAS itself.
    public let coreTypeSource: String
    /// The library file that was opened.
    public let libraryPath: String

    /// The shared instance; loading happens on first use. Crashes with a clear
    /// message if OpenBLAS is not installed (use `BLAS.load()` to handle that).
    public static let shared: BLAS = {
        do { return try BLAS.load() } catch {
            fputs("grove: \(error)\n", stderr)
            exit(70)
        }
    }()

    /// Loads OpenBLAS after choosing its core type; throws if the library is missing.
    static func load() throws -> BLAS {
        setenv("OPENBLAS_NUM_THREADS", "1", 1)  // Grove's workers split the GEMMs (see above)
        var source = "environment (OPENBLAS_CORETYPE)"
        if getenv("OPENBLAS_CORETYPE") == nil {
            if let core = BLAS.fastestCoreType() {
                setenv("OPENBLAS_CORETYPE", core, 1)
                source = "detected from CPU flags"
            } else {
                source = "OpenBLAS's own detection"
            }
        }
        let candidates = ["libopenblas.so.0", "libopenblas.so", "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
                          "/usr/lib/aarch64-linux-gnu/libopenblas.so.0", "libopenblas.dylib"]
        var handle: UnsafeMutableRawPointer?
        var path = ""
        for c in candidates {
            if let h = dlopen(c, RTLD_NOW | RTLD_GLOBAL) { handle = h; path = c; break }
        }
        guard let handle else { throw TensorError.blasUnavailable(String(cString: dlerror())) }
        func symbol<F>(_ name: String, as: F.Type) throws -> F {
            guard let p = dlsym(handle, name) else { throw TensorError.blasUnavailable("\(path) has no \(name)") }
            return unsafeBitCast(p, to: F.self)
        }
        let corename = try symbol("openblas_get_corename", as: CorenameFn.self)
        // Also when the library was already in the process (loaded by someone else, before our setenv).
        try symbol("openblas_set_num_threads", as: SetThreadsFn.self)(1)
        return BLAS(sgemm: try symbol("cblas_sgemm", as: SgemmFn.self),
                    coreName: corename().map { String(cString: $0) } ?? "unknown",
                    source: source, path: path)
    }

    private init(sgemm: @escaping SgemmFn, coreName: String, source: String, path: String) {
        sgemmFn = sgemm
        self.coreName = coreName; coreTypeSource = source; libraryPath = path
    }

    /// The best OpenBLAS core type this x86-64 CPU supports, from /proc/cpuinfo flags;
    /// nil where OpenBLAS's own detection should stand (other CPUs, other systems).
    static func fastestCoreType() -> String? {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(separator: " ").map(String.init))
        if flags.contains("avx512f") && flags.contains("avx512bw") && flags.contains("avx512vl") { return "SKYLAKEX" }
        if flags.contains("avx2") && flags.contains("fma") { return "HASWELL" }
        return nil
    }

    /// Threads one sgemm uses: Grove's worker count (`Parallel.threads`); OpenBLAS itself runs on one.
    public var threads: Int { Parallel.threads }

    /// Below this many flops (2·M·N·K) a GEMM runs on one thread: splitting costs more than it saves.
    static let splitFlops = 1 << 22

    /// C = alpha · op(A) · op(B) + beta · C, row-major; op is chosen by the transpose flags,
    /// so transposed operands are never copied. A is M×K after op, B is K×N after op.
    ///
    /// A large product is split across `Parallel.threads` workers along the longer side of C,
    /// each computing its own block of rows (or columns) of C with a single-threaded sgemm.
    /// `split: false` keeps it on the calling thread (for callers already inside `Parallel`), as does `Parallel.serially`.
    @inline(__always)
    public func sgemm(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
                      alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                      b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, split: Bool = true) {
        let split = split && !Parallel.isSerial
        if m <= BLAS.skinnyRows && transA == .none && transB == .transpose {
            skinny(m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, split: split)
        } else {
            packed(transA, transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, split: split)
        }
    }

    /// `sgemm` through OpenBLAS, split over workers when large.
    func packed(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, split: Bool) {
        let workers = split && 2 * m * n * k >= BLAS.splitFlops ? min(Parallel.threads, max(m, n) / 16) : 1
        if workers <= 1 {
            sgemmFn(101, transA.rawValue, transB.rawValue, Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
            return
        }
        let alongRows = m >= n
        BLAS.blocks(of: alongRows ? m : n, workers: workers) { lo, hi in
            if alongRows {
                // Rows lo..<hi of op(A) and of C.
                let aBlock = transA == .none ? a + lo * lda : a + lo
                sgemmFn(101, transA.rawValue, transB.rawValue, Int32(hi - lo), Int32(n), Int32(k), alpha,
                        aBlock, Int32(lda), b, Int32(ldb), beta, c + lo * ldc, Int32(ldc))
            } else {
                // Columns lo..<hi of op(B) and of C.
                let bBlock = transB == .none ? b + lo : b + lo * ldb
                sgemmFn(101, transA.rawValue, transB.rawValue, Int32(m), Int32(hi - lo), Int32(k), alpha,
                        a, Int32(lda), bBlock, Int32(ldb), beta, c + lo, Int32(ldc))
            }
        }
    }

    /// Runs `body(lo, hi)` on `workers` threads, one contiguous block of 0..<extent each; blocks
    /// are multiples of 16 rows/columns (the kernels' register tiles), so the last may be short or empty.
    static func blocks(of extent: Int, workers: Int, _ body: (Int, Int) -> Void) {
        let chunk = ((extent + workers - 1) / workers + 15) / 16 * 16
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let lo = w * chunk, hi = min(extent, lo + chunk)
            if lo < hi { body(lo, hi) }
        }
    }

    /// Up to this many rows of A (sequences of a decode step), A · Bᵀ runs in Grove's skinny
    /// kernel instead of BLAS: BLAS packs all of B first, which for so few rows costs more than
    /// the multiply (`grove doctor` measures both on a decode-step shape).
    static let skinnyRows = 16

    /// The instruction set of the skinny decode kernel on this CPU ("avx512f", "avx2", "sse2").
    public var skinnyISA: String { String(cString: grove_skinny_isa()) }

    /// C = alpha · A · Bᵀ + beta · C for few rows, split over columns of C (blocks of 16).
    func skinny(m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, split: Bool) {
        let workers = split && 2 * m * n * k >= BLAS.splitFlops ? min(Parallel.threads, n / 16) : 1
        if workers <= 1 {
            grove_sgemm_skinny_nt(Int32(m), 0, Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
            return
        }
        BLAS.blocks(of: n, workers: workers) { lo, hi in
            grove_sgemm_skinny_nt(Int32(m), Int32(lo), Int32(hi), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
    }
}
