import GroveTensor

/// The model's matrices packed for the decode step's few-row products (`PanelPackedMatrix`):
/// each decode step reads every weight once, and the packed layout makes that read about
/// twice as fast. Built once per `generate` call, since training changes the weights
/// between calls; it holds a second copy of the matrices while it lives. An adapter that is on
/// is merged into the copies, W + s·B·A, so decode costs the same with LoRA as without.
/// Every projection of `DecoderLayer.projections` is packed (DeepSeek's routed experts are not:
/// each takes only the few rows routed to it).
struct DecodeWeights {
    /// Each projection's panel copy, by its weight tensor.
    let panels: [ObjectIdentifier: PanelPackedMatrix]
    /// Latent attention's kv_b_proj with its adapter merged (read per head when decoding from the latent cache).
    let mergedKVB: [ObjectIdentifier: Tensor]
    let lmHead: PanelPackedMatrix

    init(_ model: Transformer) {
        var panels: [ObjectIdentifier: PanelPackedMatrix] = [:], mergedKVB: [ObjectIdentifier: Tensor] = [:]
        for layer in model.layers {
            for (_, path) in layer.projections {
                let linear = layer[keyPath: path]
                panels[ObjectIdentifier(linear.weight)] = PanelPackedMatrix(model.adapterEnabled ? model.mergedWeight(linear) : linear.weight)
            }
            if case .latent(let l) = layer.attention, model.adapterEnabled, l.kvBProj.lora != nil {
                mergedKVB[ObjectIdentifier(l.kvBProj.weight)] = model.mergedWeight(l.kvBProj)
            }
        }
        self.panels = panels
        self.mergedKVB = mergedKVB
        lmHead = PanelPackedMatrix(model.lmHead)
    }
}

extension Transformer {
    /// A projection on its panel copy in a decode step (the adapter merged into it), else `project`.
    func project(_ linear: Linear, _ x: Tensor, packed: DecodeWeights?) -> Tensor {
        guard let panels = packed?.panels[ObjectIdentifier(linear.weight)] else { return project(linear, x) }
        let y = panels.product(x)
        return linear.bias.map { addBias(y, $0) } ?? y
    }
}
