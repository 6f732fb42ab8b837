/// GPT-2's byte ↔ unicode table: every byte gets a printable character, so byte-level BPE
/// can work on strings. Printable Latin-1 bytes map to themselves; the other 68 bytes map
/// to U+0100 and up, in byte order.
public enum ByteLevel {
    /// Character of each byte value 0…255.
    public static let byteToChar: [Character] = {
        var table = [Character](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable {
                table[b] = Character(Unicode.Scalar(UInt32(b))!)
            } else {
                table[b] = Character(Unicode.Scalar(next)!)
                next += 1
            }
        }
        return table
    }()

    /// Byte of each table character (each is one scalar).
    public static let scalarToByte: [Unicode.Scalar: UInt8] = {
        var map: [Unicode.Scalar: UInt8] = [:]
        for (b, c) in byteToChar.enumerated() { map[c.unicodeScalars.first!] = UInt8(b) }
        return map
    }()
}
