import CGroveKernels

/// A weight matrix W [out, in] re-laid out for products with few rows, y = x·Wᵀ: panels of
/// 32 output columns, each stored as `in` rows of 32 floats (panel_gemm.c). A decode step
/// then streams W with unit stride and every multiply-add broadcasts one input value against
/// 32 weights, with no sums across vector lanes — what bounds the skinny kernel on W as it is.
///
/// It is a snapshot: built from W's values at `init`, so it is rebuilt whenever W changes
/// (the model packs its weights once per `generate` call). No gradient flows through it.
public final class PanelPackedMatrix {
    /// W's rows (output features) and columns (input features).
    public let rows: Int, columns: Int
    let panels: UnsafeMutablePointer<Float>
    var panelCount: Int { (rows + 31) / 32 }

    /// Packs `weight` [out, in], splitting the copy over the worker threads.
    public init(_ weight: Tensor) {
        precondition(weight.shape.count == 2, "PanelPackedMatrix: a 2-D weight, got \(weight.shape)")
        rows = weight.shape[0]; columns = weight.shape[1]
        // From the tensor heap (heap.c), like every activation: a training pass's freed pages
        // hold the copy, rather than fresh memory on top of them.
        panels = grove_alloc(PanelPackedMatrix.byteCount(rows: rows, columns: columns)).bindMemory(to: Float.self, capacity: (rows + 31) / 32 * 32 * columns)
        let (n, k, w, p) = (Int32(rows), Int32(columns), weight.data, panels)
        Parallel.forEach(panelCount) { range in
            grove_pack_panels(n, k, w, k, Int32(range.lowerBound), Int32(range.upperBound), p)
        }
    }

    deinit { grove_free(panels, PanelPackedMatrix.byteCount(rows: rows, columns: columns)) }

    /// Bytes of the panels: the rows rounded up to whole panels.
    private static func byteCount(rows: Int, columns: Int) -> Int { (rows + 31) / 32 * 32 * columns * 4 }

    /// x·Wᵀ for x [N, in] → [N, out], on the calling thread (a decode group is one shard of
    /// a parallel generation already).
    public func product(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == columns, "PanelPackedMatrix: input \(x.shape) for [\(rows), \(columns)]")
        let n = x.count / columns
        let out = Tensor(uninitialized: Array(x.shape.dropLast()) + [rows])
        grove_sgemm_panels(Int32(n), Int32(rows), Int32(columns), x.data, Int32(columns), panels, out.data, Int32(rows))
        return out
    }
}
