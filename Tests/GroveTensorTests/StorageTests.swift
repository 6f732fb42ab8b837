import CGroveKernels
@testable import GroveTensor
import XCTest

/// Tensor storage (heap.c): large blocks go back to a pool and are reused; a reused block
/// handed out as zeroed storage is zero again.
final class StorageTests: XCTestCase {
    func testLargeBlockIsReusedInItsSizeClassAndZeroedAgain() throws {
        let bytes = 40 << 20  // above glibc's 32 MiB mmap threshold: pooled
        let first = try XCTUnwrap(grove_alloc(bytes))
        XCTAssertEqual(Int(bitPattern: first) % 64, 0)
        memset(first, 0xff, bytes)  // dirty it, as a previous step's logits would
        grove_free(first, bytes)

        // A few KiB smaller is the same 2 MiB class: the freed block comes back.
        let floats = (bytes - 4096) / 4
        let storage = Storage(count: floats)
        XCTAssertEqual(UnsafeMutableRawPointer(storage.base), first)
        let values = UnsafeBufferPointer(start: storage.base, count: floats)
        XCTAssertEqual(values.firstIndex { $0 != 0 }, nil)
    }

    func testBlocksOfAnotherClassAreNotShared() throws {
        let small = 40 << 20, large = 48 << 20
        let first = try XCTUnwrap(grove_alloc(small))
        grove_free(first, small)
        let other = try XCTUnwrap(grove_alloc(large))  // must not get the 40 MiB block
        XCTAssertNotEqual(other, first)
        memset(other, 1, large)  // the whole block is writable
        grove_free(other, large)
    }
}
