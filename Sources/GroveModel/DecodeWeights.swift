import GroveTensor

/// The model's matrices packed for the decode step's few-row products (`PanelPackedMatrix`):
/// each decode step reads every weight once, and the packed layout makes that read about
/// twice as fast. Built once per `generate` call, since training changes the weights
/// between calls; it holds a second copy of the matrices while it lives. An adapter that is on
/// is merged into the copies, W + s·B·A, so decode costs the same with LoRA as without.
struct DecodeWeights {
    /// One decoder layer's projections.
    struct Layer {
        let q, k, v, o, gate, up, down: PanelPackedMatrix
    }

    let layers: [Layer]
    let lmHead: PanelPackedMatrix

    init(_ model: Transformer) {
        func pack(_ linear: Linear) -> PanelPackedMatrix {
            PanelPackedMatrix(model.adapterEnabled ? model.mergedWeight(linear) : linear.weight)
        }
        layers = model.layers.map { l in
            Layer(q: pack(l.qProj), k: pack(l.kProj), v: pack(l.vProj), o: pack(l.oProj),
                  gate: pack(l.gateProj), up: pack(l.upProj), down: pack(l.downProj))
        }
        lmHead = PanelPackedMatrix(model.lmHead)
    }
}
