/// A token added on top of the BPE vocabulary (special tokens such as `<|im_end|>`).
public struct AddedToken: Equatable {
    public let id: Int
    public let content: String
    public let special: Bool
    /// Whitespace on that side is swallowed into the token when it is matched.
    public let lstrip: Bool
    public let rstrip: Bool
}

/// Cuts text around added tokens before normalization and BPE, as `tokenizers` does:
/// at each position the longest added token that starts there wins.
struct AddedTokenSplitter {
    let tokens: [AddedToken]  // longest content first

    init(_ tokens: [AddedToken]) {
        self.tokens = tokens.sorted { $0.content.count > $1.content.count }
    }

    enum Piece { case text(Substring), token(AddedToken) }

    func split(_ text: String) -> [Piece] {
        guard !tokens.isEmpty else { return text.isEmpty ? [] : [.text(text[...])] }
        var pieces: [Piece] = []
        var start = text.startIndex, i = text.startIndex
        while i < text.endIndex {
            if let tok = tokens.first(where: { text[i...].hasPrefix($0.content) }) {
                var before = text[start..<i]
                if tok.lstrip { before = before[..<(before.lastIndex { !$0.isWhitespace }.map { before.index(after: $0) } ?? before.startIndex)] }
                if !before.isEmpty { pieces.append(.text(before)) }
                pieces.append(.token(tok))
                i = text.index(i, offsetBy: tok.content.count)
                if tok.rstrip { while i < text.endIndex, text[i].isWhitespace { i = text.index(after: i) } }
                start = i
            } else {
                i = text.index(after: i)
            }
        }
        if start < text.endIndex { pieces.append(.text(text[start...])) }
        return pieces
    }
}
