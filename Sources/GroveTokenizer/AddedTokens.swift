/// A token added on top of the BPE vocabulary (special tokens such as `<|im_end|>`).
public struct AddedToken: Equatable {
    public let id: Int
    public let content: String
    public let special: Bool
    /// Whitespace on that side is swallowed into the token when it is matched.
    public let lstrip: Bool
    public let rstrip: Bool
}

/// Cuts text around added tokens before normalization and BPE, as `tokenizers` does: at each
/// position the longest added token that starts there wins. Matching compares Unicode scalars,
/// so `<|im_end|>` is found even when a combining mark follows it (as a Character it would not be).
struct AddedTokenSplitter {
    /// Candidates by first scalar, longest first.
    let byFirst: [Unicode.Scalar: [(token: AddedToken, scalars: [Unicode.Scalar])]]

    init(_ tokens: [AddedToken]) {
        var table: [Unicode.Scalar: [(token: AddedToken, scalars: [Unicode.Scalar])]] = [:]
        for t in tokens {
            let scalars = Array(t.content.unicodeScalars)
            if let first = scalars.first { table[first, default: []].append((t, scalars)) }
        }
        byFirst = table.mapValues { $0.sorted { $0.scalars.count > $1.scalars.count } }
    }

    enum Piece { case text([Unicode.Scalar]), token(AddedToken) }

    func split(_ text: [Unicode.Scalar]) -> [Piece] {
        var pieces: [Piece] = []
        var start = 0, i = 0
        while i < text.count {
            let match = byFirst[text[i]]?.first { c in i + c.scalars.count <= text.count && text[i..<(i + c.scalars.count)].elementsEqual(c.scalars) }
            guard let (tok, scalars) = match else { i += 1; continue }
            var end = i
            if tok.lstrip { while end > start, isSpace(text[end - 1]) { end -= 1 } }
            if start < end { pieces.append(.text(Array(text[start..<end]))) }
            pieces.append(.token(tok))
            i += scalars.count
            if tok.rstrip { while i < text.count, isSpace(text[i]) { i += 1 } }
            start = i
        }
        if start < text.count { pieces.append(.text(Array(text[start...]))) }
        return pieces
    }
}
