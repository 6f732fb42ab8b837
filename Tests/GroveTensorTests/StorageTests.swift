import CGroveKernels
@testable import GroveTensor
import XCTest

/// Tensor storage (heap.c): blocks come from one reserved range, best fit; freed blocks are
/// reused and merged with their free neighbours; a large free run at the top goes back to the
/// kernel. The blocks here are hundreds of MiB of address space, larger than any free run
/// other tests leave, so each lands on top of the range; they are never written except where
/// a test says, so they cost no memory.
final class StorageTests: XCTestCase {
    let MiB = 1 << 20

    func testFreedBlockIsReusedAndHandedOutZeroedAgain() throws {
        let bytes = 100 * MiB + 100  // not a whole number of cache lines
        let first = try XCTUnwrap(grove_alloc(bytes))
        XCTAssertEqual(Int(bitPattern: first) % 64, 0)
        memset(first, 0xff, 1 << 16)  // dirty its start, as a previous step's activations would
        grove_free(first, bytes)

        let storage = Storage(count: bytes / 4)
        XCTAssertEqual(UnsafeMutableRawPointer(storage.base), first)
        let start = UnsafeBufferPointer(start: storage.base, count: (1 << 16) / 4)
        XCTAssertEqual(start.firstIndex { $0 != 0 }, nil)
    }

    func testBestFitAndMergingOfFreeNeighbours() throws {
        // f, a, b, c side by side on top; f stays in use, so a's run has no free run before it.
        let f = try XCTUnwrap(grove_alloc(320 * MiB))
        let a = try XCTUnwrap(grove_alloc(320 * MiB)), b = try XCTUnwrap(grove_alloc(320 * MiB))
        let c = try XCTUnwrap(grove_alloc(360 * MiB))
        XCTAssertEqual([a, b, c], [f + 320 * MiB, f + 640 * MiB, f + 960 * MiB])
        grove_free(a, 320 * MiB)
        grove_free(c, 360 * MiB)

        // Free runs now: a's 320 MiB and c's 360 MiB. Best fit for 310 MiB is a's run.
        let d = try XCTUnwrap(grove_alloc(310 * MiB))
        XCTAssertEqual(d, a)
        grove_free(d, 310 * MiB)

        // Freeing b joins a's run, b and c's run into one of 1,000 MiB from a.
        grove_free(b, 320 * MiB)
        let e = try XCTUnwrap(grove_alloc(1000 * MiB))
        XCTAssertEqual(e, a)
        grove_free(e, 1000 * MiB)
        grove_free(f, 320 * MiB)
    }

    /// Decode groups allocate tensors on several threads at once: blocks handed out concurrently
    /// never overlap (each thread fills its blocks with its own mark and finds it intact at free).
    func testConcurrentAllocationsDoNotOverlap() {
        let threads = 4
        let intact = UnsafeMutableBufferPointer<Bool>.allocate(capacity: threads)
        defer { intact.deallocate() }
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            var rng = SeededRandom(seed: UInt64(thread))
            var live: [(UnsafeMutablePointer<UInt32>, Int)] = []
            var ok = true
            for _ in 0..<20_000 {
                if live.count > 20 || (!live.isEmpty && rng.next() % 2 == 0) {
                    let (block, count) = live.remove(at: Int(rng.next() % UInt64(live.count)))
                    ok = ok && UnsafeBufferPointer(start: block, count: count).allSatisfy { $0 == UInt32(thread) }
                    grove_free(block, count * 4)
                } else {
                    let count = 1 + Int(rng.next() % 2_000)
                    let block = grove_alloc(count * 4)!.bindMemory(to: UInt32.self, capacity: count)
                    block.initialize(repeating: UInt32(thread), count: count)
                    live.append((block, count))
                }
            }
            for (block, count) in live {
                ok = ok && UnsafeBufferPointer(start: block, count: count).allSatisfy { $0 == UInt32(thread) }
                grove_free(block, count * 4)
            }
            intact[thread] = ok
        }
        XCTAssertEqual(Array(intact), [Bool](repeating: true, count: threads))
    }

    /// A large free run at the top is offered back to the kernel (MADV_FREE): its written page
    /// counts as lazily freed (`LazyFree` in /proc/self/smaps_rollup) until the kernel takes it or
    /// the block comes back, at the same address since the range's top came down to its start.
    func testLargeFreeRunAtTheTopIsOfferedBack() throws {
        func lazyFreeKiB() throws -> Int {
            let rollup = try String(contentsOfFile: "/proc/self/smaps_rollup", encoding: .utf8)
            let line = try XCTUnwrap(rollup.split(separator: "\n").first { $0.hasPrefix("LazyFree:") })
            return try XCTUnwrap(Int(line.split(separator: " ")[1]))
        }
        let bytes = 1536 * MiB
        let block = try XCTUnwrap(grove_alloc(bytes))
        block.storeBytes(of: 0xff, toByteOffset: 1024 * MiB, as: UInt8.self)
        let before = try lazyFreeKiB()
        grove_free(block, bytes)  // 1.5 GiB free at the top: more than the 1 GiB kept
        XCTAssertGreaterThanOrEqual(try lazyFreeKiB() - before, 4, "the written page is offered to the kernel")

        let again = try XCTUnwrap(grove_alloc(bytes))
        XCTAssertEqual(again, block)
        grove_free(again, bytes)
    }
}
