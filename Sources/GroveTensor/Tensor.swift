import CGroveKernels
import Foundation

// Tensor: a float32 buffer with a shape, and the node of the autograd graph.
//
// Shape legend used across Grove's kernels:
//   B batch, T time, C channels, V vocab, L layers, NH heads, KVH kv heads,
//   HS head size, G group size, N = B*T rows.
//
// Storage is always contiguous, row-major. A view (`reshaped`) shares its parent's
// data and gradient buffers, so reshapes cost nothing in either direction.

/// Owns one aligned float32 allocation; shared by a tensor and its views.
public final class Storage {
    public let base: UnsafeMutablePointer<Float>
    public let count: Int

    /// Allocates `count` floats, 64-byte aligned (one AVX-512 line), zero-filled unless
    /// `zeroed` is false: for an op's output that its kernel overwrites entirely (zeroing
    /// it first was 4–7 % of a training step). Blocks come from an address range that holds
    /// tensor storage only (`grove_alloc`, heap.c), so a step reuses the previous step's pages
    /// instead of faulting its activations in from the kernel again.
    public init(count: Int, zeroed: Bool = true) {
        self.count = count
        base = grove_alloc(max(count, 1) * 4).bindMemory(to: Float.self, capacity: max(count, 1))
        // A large block (a gradient buffer, taken on the main thread between ops) is zeroed by
        // the workers, as other loops are; on fresh pages that is mostly the kernel faulting them in.
        if zeroed {
            let base = base
            Parallel.forEach(max(count, 1), grain: 1 << 18) { rows in
                (base + rows.lowerBound).initialize(repeating: 0, count: rows.count)
            }
        }
    }

    deinit { grove_free(base, max(count, 1) * 4) }
}

/// A float32 tensor with reverse-mode automatic differentiation.
///
/// Ops (see `Ops*.swift`) are free functions that compute their forward pass eagerly
/// and, when gradients are enabled and an input requires them, record a backward
/// closure on the output. `backward()` on a scalar runs those closures in reverse
/// topological order; each accumulates (`+=`) into its inputs' `grad` buffers.
///
/// ```swift
/// let w = Tensor.randn([4, 3], std: 0.1, rng: &rng, requiresGrad: true)
/// let x = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
/// let loss = sum(linear(x, w))
/// loss.backward()          // w.gradBuffer now holds d loss / d w
/// ```
public final class Tensor {
    /// Dimensions, outermost first.
    public let shape: [Int]
    /// Number of elements (product of `shape`).
    public let count: Int
    let storage: Storage
    let offset: Int
    /// The gradient buffer, allocated on first use (shared with views).
    var gradStorage: Storage?
    /// For a view in the graph: the tensor whose gradient buffer it shares, taken when the first
    /// gradient arrives (in the backward pass), not when the view is made.
    var gradientBase: Tensor?
    /// Whether `backward()` should produce a gradient for this tensor.
    public internal(set) var requiresGrad: Bool

    // Autograd graph: the inputs this tensor was computed from and how to send its
    // gradient back to them. Cleared after `backward()` so the graph's memory is freed.
    var parents: [Tensor] = []
    var backwardFn: ((Tensor) -> Void)?

    /// A zero-filled tensor.
    public init(zeros shape: [Int], requiresGrad: Bool = false) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.storage = Storage(count: count)
        self.offset = 0
        self.requiresGrad = requiresGrad
    }

    /// A tensor whose elements are left unset: only for an op whose kernel writes every one.
    init(uninitialized shape: [Int]) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.storage = Storage(count: count, zeroed: false)
        self.offset = 0
        self.requiresGrad = false
    }

    /// A tensor holding a copy of `values`.
    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false) {
        precondition(values.count == shape.reduce(1, *), "Tensor: \(values.count) values for shape \(shape)")
        self.init(zeros: shape, requiresGrad: requiresGrad)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    init(viewOf parent: Tensor, shape: [Int], offset: Int) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.storage = parent.storage
        self.offset = offset
        self.requiresGrad = false
    }

    /// Pointer to the first element. Valid while the tensor (or a view of it) lives.
    @inline(__always) public var data: UnsafeMutablePointer<Float> { storage.base + offset }

    /// The elements as an unsafe buffer, for kernels.
    @inline(__always) public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: data, count: count)
    }

    /// A copy of the elements.
    public var values: [Float] { Array(buffer) }

    /// The single element of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item: tensor has shape \(shape)")
        return data[0]
    }

    /// The gradient pointer, allocating a zeroed buffer on first use (a view's is its base's).
    public var grad: UnsafeMutablePointer<Float> {
        if gradStorage == nil {
            if let base = gradientBase {
                _ = base.grad
                gradStorage = base.gradStorage
            } else {
                gradStorage = Storage(count: storage.count)
            }
        }
        return gradStorage!.base + offset
    }

    /// The gradient as an array, or nil if none was accumulated.
    public var gradValues: [Float]? {
        guard let g = gradStorage else { return nil }
        return Array(UnsafeBufferPointer(start: g.base + offset, count: count))
    }

    /// Whether a gradient buffer exists (a gradient has arrived since the last `dropGrad`).
    public var hasGradient: Bool { gradStorage != nil }

    /// Sets the gradient to zero (keeping its buffer).
    public func zeroGrad() {
        if let g = gradStorage { (g.base + offset).update(repeating: 0, count: count) }
    }

    /// Drops the gradient buffer.
    public func dropGrad() { gradStorage = nil }

    /// Marks a leaf tensor (a parameter) as needing gradients.
    public func requireGrad(_ on: Bool = true) { requiresGrad = on }

    /// A view with another shape of the same number of elements; shares data and gradient.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var newShape = newShape
        if let i = newShape.firstIndex(of: -1) {
            newShape[i] = count / newShape.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
        }
        precondition(newShape.reduce(1, *) == count, "reshape \(shape) -> \(newShape)")
        return view(shape: newShape, offset: offset)
    }

    /// Rows `range` of the leading dimension, as a view: shares data and gradient, no copy.
    public func rows(_ range: Range<Int>) -> Tensor {
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[0], "rows \(range) of \(shape)")
        return view(shape: [range.count] + shape.dropFirst(), offset: offset + range.lowerBound * (count / max(shape[0], 1)))
    }

    /// A view of `shape` elements from `offset` of the same storage, in the graph when this
    /// tensor is: its gradient lands directly in this tensor's buffer.
    func view(shape: [Int], offset: Int) -> Tensor {
        let view = Tensor(viewOf: self, shape: shape, offset: offset)
        if requiresGrad && GradMode.isEnabled {
            // The buffer is shared once a gradient arrives: allocating it here would hold a
            // zeroed gradient for every reshaped activation through the whole forward pass.
            view.gradientBase = self
            view.requiresGrad = true
            view.parents = [self]
            view.backwardFn = { _ in }  // gradient already lands in the shared buffer
        }
        return view
    }

    /// A fresh tensor with a copy of the data, outside any graph.
    public func detached() -> Tensor {
        let t = Tensor(uninitialized: shape)
        t.data.update(from: data, count: count)
        return t
    }

    /// Copies `other`'s elements into this tensor (same count).
    public func copy(from other: Tensor) {
        precondition(other.count == count, "copy: \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }

    // MARK: Autograd

    /// Records how to propagate this (freshly computed) tensor's gradient to `inputs`: the way
    /// to add an op outside this module (the GRPO loss does). `fn` receives this tensor and must
    /// accumulate (`+=`) into its inputs' `grad`. Does nothing when gradients are disabled or no
    /// input requires them.
    @inline(__always)
    public func record(_ inputs: [Tensor], _ fn: @escaping (Tensor) -> Void) {
        guard GradMode.isEnabled, inputs.contains(where: { $0.requiresGrad }) else { return }
        requiresGrad = true
        parents = inputs
        backwardFn = fn
    }

    /// Back-propagates from this scalar (d self / d self = 1, or `seed` for a non-scalar),
    /// accumulating into every reachable tensor that requires gradients, then frees the graph.
    public func backward(seed: [Float]? = nil) {
        if let seed {
            precondition(seed.count == count, "backward seed count")
            seed.withUnsafeBufferPointer { grad.update(from: $0.baseAddress!, count: count) }
        } else {
            precondition(count == 1, "backward() without a seed needs a scalar, got \(shape)")
            grad[0] += 1
        }
        propagate()
    }

    /// Runs the graph's backward closures from this tensor, whose gradient is already set.
    func propagate() {
        // Iterative DFS post-order: the graph of a deep model would overflow recursion.
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (node, expanded) = stack.popLast() {
            if expanded { order.append(node); continue }
            if !visited.insert(ObjectIdentifier(node)).inserted { continue }
            stack.append((node, true))
            for p in node.parents where p.requiresGrad && !visited.contains(ObjectIdentifier(p)) {
                stack.append((p, false))
            }
        }
        // Reverse post-order, releasing as it goes: once a node has sent its gradient to its
        // inputs, its gradient buffer and the activations its backward captured are garbage.
        // Dropping them here (not after the whole pass) keeps peak memory near the forward's.
        while let node = order.popLast() {
            guard let fn = node.backwardFn else { continue }  // a leaf: keeps its gradient
            fn(node)
            node.backwardFn = nil
            node.parents = []
            node.gradientBase = nil
            node.gradStorage = nil
        }
    }
}

/// Activation checkpointing: `body(input)` computed without recording its graph, so that none of
/// its activations stay alive until the backward pass; only `input` is kept. In the backward pass
/// `body` runs again with recording on and the output's gradient is sent through that graph into
/// `parameters` and `input`: the same arithmetic as without checkpointing, so the same gradients,
/// for one more forward pass of `body`. `parameters` are the tensors `body` reads besides `input`
/// (the output is in the graph when any requires gradients). `recompute` brackets the second run
/// (the caller's state, such as a dropout generator, set back to what the first run saw).
public func checkpointed(_ input: Tensor, parameters: [Tensor], recompute: @escaping (() -> Tensor) -> Tensor = { $0() },
                         _ body: @escaping (Tensor) -> Tensor) -> Tensor {
    guard GradMode.isEnabled else { return body(input) }
    let output = GradMode.withoutGrad { body(input) }
    output.record([input] + parameters) { output in
        // The input's data, a leaf of the recomputed graph whose gradient lands in the input's buffer.
        let x = Tensor(viewOf: input, shape: input.shape, offset: input.offset)
        x.requiresGrad = input.requiresGrad
        x.gradientBase = input
        let y = GradMode.withGrad { recompute { body(x) } }
        precondition(y.offset == 0 && output.offset == 0 && y.storage.count == output.storage.count,
                     "checkpointed: the body's output must be a fresh tensor")
        _ = output.grad
        y.gradStorage = output.gradStorage
        y.propagate()
    }
    return output
}

/// Global switch for recording the autograd graph (off for inference and rollouts).
public enum GradMode {
    nonisolated(unsafe) public static var isEnabled = true

    /// Runs `body` with graph recording off, restoring the previous mode afterwards.
    public static func withoutGrad<R>(_ body: () throws -> R) rethrows -> R {
        let previous = isEnabled
        isEnabled = false
        defer { isEnabled = previous }
        return try body()
    }

    /// Runs `body` with graph recording on (a checkpointed recomputation inside a backward pass).
    public static func withGrad<R>(_ body: () throws -> R) rethrows -> R {
        let previous = isEnabled
        isEnabled = true
        defer { isEnabled = previous }
        return try body()
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = values.prefix(8).map { String(format: "%.4f", $0) }.joined(separator: ", ")
        return "Tensor(\(shape), [\(head)\(count > 8 ? ", …" : "")])"
    }
}
