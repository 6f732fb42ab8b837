import GroveTensor

/// The model's matrices packed for the decode step's few-row products (`PanelPackedMatrix`):
/// each decode step reads every weight once, and the packed layout makes that read about
/// twice as fast. Built once per `generate` call, since training changes the weights
/// between calls; it holds a second copy of the matrices while it lives.
struct DecodeWeights {
    /// Per layer, in the order `Transformer.block` reads them: q, k, v, o, gate, up, down.
    let layers: [[PanelPackedMatrix]]
    let lmHead: PanelPackedMatrix

    init(_ model: Transformer) {
        layers = model.layers.map { l in
            [l.qProj, l.kProj, l.vProj, l.oProj, l.gateProj, l.upProj, l.downProj].map { PanelPackedMatrix($0.weight) }
        }
        lmHead = PanelPackedMatrix(model.lmHead)
    }
}
