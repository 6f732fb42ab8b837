import GroveTensor

/// The model's matrices packed for the decode step's few-row products (`PanelPackedMatrix`):
/// each decode step reads every weight once, and the packed layout makes that read about
/// twice as fast. Built once per `generate` call, since training changes the weights
/// between calls; it holds a second copy of the matrices while it lives.
struct DecodeWeights {
    /// One decoder layer's projections.
    struct Layer {
        let q, k, v, o, gate, up, down: PanelPackedMatrix
    }

    let layers: [Layer]
    let lmHead: PanelPackedMatrix

    init(_ model: Transformer) {
        layers = model.layers.map { l in
            Layer(q: PanelPackedMatrix(l.qProj.weight), k: PanelPackedMatrix(l.kProj.weight), v: PanelPackedMatrix(l.vProj.weight),
                  o: PanelPackedMatrix(l.oProj.weight), gate: PanelPackedMatrix(l.gateProj.weight),
                  up: PanelPackedMatrix(l.upProj.weight), down: PanelPackedMatrix(l.downProj.weight))
        }
        lmHead = PanelPackedMatrix(model.lmHead)
    }
}
