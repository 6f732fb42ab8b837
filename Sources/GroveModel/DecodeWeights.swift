import GroveTensor

/// The model's matrices packed for the decode step's few-row products (`PanelPackedMatrix`):
/// each decode step reads every weight once, and the packed layout makes that read about
/// twice as fast. Built once per `generate` call, since training changes the weights
/// between calls; it holds a second copy of the matrices while it lives. An adapter that is on
/// is merged into the copies, W + s·B·A, so decode costs the same with LoRA as without. Only
/// grouped-attention, dense layers are packed; a DeepSeek layer decodes on its weights as they are.
struct DecodeWeights {
    /// One decoder layer's projections.
    struct Layer {
        let q, k, v, o, gate, up, down: PanelPackedMatrix
    }

    let layers: [Layer?]
    let lmHead: PanelPackedMatrix

    init(_ model: Transformer) {
        func pack(_ linear: Linear) -> PanelPackedMatrix {
            PanelPackedMatrix(model.adapterEnabled ? model.mergedWeight(linear) : linear.weight)
        }
        layers = model.layers.map { l in
            guard case .grouped(let a) = l.attention, case .dense(let m) = l.mlp else { return nil }
            return Layer(q: pack(a.qProj), k: pack(a.kProj), v: pack(a.vProj), o: pack(a.oProj),
                         gate: pack(m.gateProj), up: pack(m.upProj), down: pack(m.downProj))
        }
        lmHead = PanelPackedMatrix(model.lmHead)
    }
}
